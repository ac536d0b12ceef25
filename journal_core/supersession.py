"""Memory items and what they replaced: a page of items (``queries.list_items``) with, for
each one that superseded another, the chain of older items back to the first, newest
first (at most ``supersession_chain_max`` links).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import limits
from .errors import InvalidArgument, NotFound
from .queries import clip, list_items
from .store import Store


@dataclass(frozen=True)
class Link:
    id: str
    title: str
    status: str
    created_at: str
    created_by: str


@dataclass
class MemoryPage:
    items: list[dict[str, Any]]  # list_items rows, each with "chain": [Link, ...]
    next: str | None
    chains: dict[str, list[Link]] = field(default_factory=dict)


def chain(store: Store, memory_id: str) -> list[Link]:
    """The items ``memory_id`` superseded, directly or through others, newest first."""
    out: list[Link] = []
    seen = {memory_id}
    current = _payload(store, memory_id)
    while current is not None and len(out) < limits.supersession_chain_max:
        older_id = current.get("supersedes")
        if not older_id or older_id in seen:
            break
        seen.add(older_id)
        current = _payload(store, str(older_id))
        if current is None:
            break
        out.append(Link(str(older_id), clip(current.get("title"), limits.row_title_chars_max),
                        str(current.get("status")), str(current.get("created_at")),
                        str(current.get("created_by"))))
    return out


def _payload(store: Store, memory_id: str) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = store.entity_view("memory", memory_id)["entity"]
    except (NotFound, InvalidArgument):
        return None
    return found


def memory_page(store: Store, kind: str | None = None, status: str | None = None,
                after: str | None = None, limit: int = 50) -> MemoryPage:
    """One page of memory items, newest first, with their superseded chains."""
    page = list_items(store, "memory", status=status, limit=limit, after=after, kind=kind)
    chains = {}
    for row in page["items"]:
        found = chain(store, str(row["id"]))
        if found:
            chains[str(row["id"])] = found
    return MemoryPage(page["items"], page["next"], chains)


__all__ = ["Link", "MemoryPage", "chain", "memory_page"]
