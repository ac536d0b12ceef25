"""The journal as a feed of compact events, filtered by actor, family and action: a page of
the newest events (and older pages), and the events after a seq (what a live feed pushes).

Pages read the journal backwards in windows, at most ``events_scan_seqs_max`` seqs per
page: a filter that matches rarely answers a short page and an ``older`` cursor instead of
reading the whole journal at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import limits
from .errors import InvalidArgument
from .ids import check_actor
from .journal import Record
from .queries import compact_event
from .store import Store
from .vocabulary import ALL_ACTIONS, FAMILIES

EVENT_FAMILIES = (*FAMILIES, "journal")


@dataclass(frozen=True)
class EventFilter:
    """Which events a feed shows; ``None`` lets everything through."""

    actor: str | None = None
    family: str | None = None
    action: str | None = None

    def __post_init__(self) -> None:
        if self.actor is not None:
            check_actor(self.actor)
        if self.family is not None and self.family not in EVENT_FAMILIES:
            raise InvalidArgument(f"unknown family {self.family!r}: one of "
                                  f"{', '.join(EVENT_FAMILIES)}")
        if self.action is not None and self.action not in ALL_ACTIONS:
            raise InvalidArgument(f"unknown action {self.action!r}: one of "
                                  f"{', '.join(sorted(ALL_ACTIONS))}")

    def matches(self, record: Record) -> bool:
        return ((self.actor is None or record.get("actor") == self.actor)
                and (self.family is None or record.get("item_type") == self.family)
                and (self.action is None or record.get("action") == self.action))


@dataclass
class EventPage:
    events: list[dict[str, Any]]  # compact events, newest first
    older: int | None  # pass as ``before`` for the next (older) page; None: no older events
    head_seq: int


def events_before(store: Store, before: int | None = None,
                  limit: int = limits.events_page_max,
                  where: EventFilter | None = None) -> EventPage:
    """The newest events with ``seq < before`` (default: up to the head) that pass
    ``where``, newest first."""
    if before is not None and (isinstance(before, bool) or not isinstance(before, int)
                               or before < 1):
        raise InvalidArgument("before must be a positive whole number (a seq)")
    limit = max(1, min(limit, limits.events_page_max))
    where = where or EventFilter()
    store.refresh()
    head = store.head_seq
    top = head if before is None else min(before - 1, head)
    oldest = max(1, store.journal.oldest_seq())
    window = max(limit, limits.events_window_seqs_min)
    found: list[Record] = []
    scanned = 0
    while top >= oldest and len(found) <= limit and scanned < limits.events_scan_seqs_max:
        low = max(oldest, top - window + 1)
        found.extend(reversed(_window(store, low, top, where)))
        scanned += top - low + 1
        top = low - 1
    if len(found) > limit:
        older: int | None = int(found[limit - 1]["seq"])
    else:
        older = top + 1 if top >= oldest else None
    return EventPage([compact_event(r) for r in found[:limit]], older, head)


def _window(store: Store, low: int, high: int, where: EventFilter) -> list[Record]:
    """The records with ``low <= seq <= high`` that pass ``where``, oldest first."""
    out: list[Record] = []
    for group in store.journal.scan(low - 1, envelope_only=True):
        for record in group.records:
            if record["seq"] > high:
                return out
            if where.matches(record):
                out.append(record)
        if group.last_seq >= high:
            break
    return out


def events_after(store: Store, after: int, where: EventFilter | None = None,
                 limit: int = limits.records_page_max) -> tuple[list[dict[str, Any]], int]:
    """Events with ``seq > after`` that pass ``where``, oldest first, and the last seq read
    (the next call's ``after``, which moves on even when nothing passed the filter)."""
    where = where or EventFilter()
    records = store.records_after(after, limit)
    last = int(records[-1]["seq"]) if records else after
    return [compact_event(r) for r in records if where.matches(r)], last


__all__ = ["EVENT_FAMILIES", "EventFilter", "EventPage", "events_after", "events_before"]
