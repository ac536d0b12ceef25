"""Reads of entities (docs/design.md, "Reading"): views from the replica, never from files.

A read first catches the replica up with the journal (no store lock: it never waits for a
writer anywhere), then answers from memory. ``stale`` is true only when the catch-up could
not reach the end of the journal (it is bounded, so a read after a huge import answers at
once, from a little behind, and says so).
"""

from __future__ import annotations

from typing import Any

from .replay import CONTENT_MISSING_KEY, EntityState
from .replica import Replica


def view(entity: EntityState, *, stale: bool) -> dict[str, Any]:
    """One entity as a read answers it: ``item_type, item_id, entity_rev, seq, entity,
    stale``; an entity whose blob is gone says ``content_missing`` instead of inventing a
    payload."""
    payload: dict[str, Any]
    if entity.payload is not None:
        payload = entity.payload
    else:
        payload = {CONTENT_MISSING_KEY: True, "id": entity.item_id,
                   "payload_ref": entity.payload_ref,
                   "note": "content missing: its blob is not in this store and no projection "
                           "holds the same content (`agentjournal doctor` reports it)"}
    return {
        "item_type": entity.family, "item_id": entity.item_id, "entity_rev": entity.rev,
        "seq": entity.seq, "entity": payload, "stale": stale,
    }


def entity_view(replica: Replica, family: str, item_id: str) -> dict[str, Any] | None:
    stale = replica.refresh()
    with replica.state_lock:
        entity = replica.state.entity(family, item_id)
        if entity is None or entity.deleted:
            return None
        return view(entity, stale=stale)


def family_views(replica: Replica, family: str) -> tuple[list[dict[str, Any]], bool]:
    stale = replica.refresh()
    with replica.state_lock:
        return [view(e, stale=stale) for e in replica.state.live(family)], stale
