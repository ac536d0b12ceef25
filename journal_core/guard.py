"""Which of these repository paths another actor holds (the git guard asks this before a
commit or a push; docs/design.md, "Staying in touch").

The overlap rules are the file claims' (paths.py): a path is held when an active, unexpired
file claim of someone else covers it -- the exact file, a folder above it, or a glob that
matches it. Read-only: no lock, nothing written.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from . import limits
from .claim_index import claim_targets
from .errors import InvalidArgument, NotFound
from .queries import claim_status, claims_on_paths, seconds_left

if TYPE_CHECKING:
    from .store import Store


@dataclass(frozen=True)
class Hold:
    """``path`` is covered by ``claim_id`` of ``holder`` (its target ``target``)."""

    path: str
    claim_id: str
    holder: str
    target: str
    expires_at: str
    left_s: int


def held_by_others(store: Store, paths: list[str], actor: str | None) -> list[Hold]:
    """Every path of ``paths`` that an active claim of someone other than ``actor`` covers,
    one Hold per path (the first claim found). ``actor`` None: every claim is another's.
    Paths that are no valid file target (absolute, '..') are left out: git never names
    them."""
    if len(paths) > limits.guard_paths_max:
        raise InvalidArgument(f"{len(paths)} paths to check; the guard checks at most "
                              f"{limits.guard_paths_max} at once")
    now = store.now()
    holds: list[Hold] = []
    for path in dict.fromkeys(paths):
        try:
            found = claims_on_paths(store, [path])
        except InvalidArgument:
            continue
        for claim_id in sorted(found):
            hold = _hold(store, path, claim_id, actor, now)
            if hold is not None:
                holds.append(hold)
                break
    return holds


def _hold(store: Store, path: str, claim_id: str, actor: str | None,
          now: datetime) -> Hold | None:
    try:
        claim = store.entity_view("claim", claim_id)["entity"]
    except NotFound:
        return None
    if claim.get("holder") == actor or claim_status(claim, now) != "active":
        return None
    targets = claim_targets(claim)
    shown = targets[0] if len(targets) == 1 else f"{targets[0]} (+{len(targets) - 1})"
    return Hold(path, claim_id, str(claim.get("holder")), shown, str(claim.get("expires_at")),
                seconds_left(claim, now))


__all__ = ["Hold", "held_by_others"]
