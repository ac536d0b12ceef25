"""Applying imported records (docs/design.md, "Federation"): under the lock, one txn per
chunk.

Records another store exported keep their ``origin`` (store, seq, writer); here they get
local seqs. What is already here (by origin) is skipped; an ``(item_id, entity_rev)`` that
another origin also wrote is a conflict: reported (a ``journal_note import_conflict``) and
resolved by last-writer-wins on ``(entity_rev, origin)``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from . import clock
from .commit import meta_record
from .ids import writer_id
from .journal import Record
from .record import canonical, check_record
from .replay import State

STORE_ACTOR = "agentjournal"


def triage(state: State, store_id: str,
           chunk: list[Record]) -> tuple[list[Record], list[dict[str, Any]]]:
    """Drop what is already here; name every (item_id, entity_rev) that another origin
    also wrote (a conflict)."""
    fresh: list[Record] = []
    conflicts: list[dict[str, Any]] = []
    seen: set[tuple[str, int, str]] = set()
    chunk_revs: dict[tuple[str, str, int], list[str]] = {}
    for record in chunk:
        origin = record["origin"]
        key = (origin["store"], origin["seq"], origin["writer"])
        if origin["store"] == store_id or key in seen or state.has_imported(origin):
            continue
        seen.add(key)
        rev_key = (record["item_type"], record["item_id"], record["entity_rev"])
        others = state.rev_conflicts(*rev_key, origin["store"])
        others += [o for o in chunk_revs.get(rev_key, []) if o != origin["store"]]
        chunk_revs.setdefault(rev_key, []).append(origin["store"])
        if others:
            conflicts.append({
                "item_type": rev_key[0], "item_id": rev_key[1], "entity_rev": rev_key[2],
                "local_origins": sorted(set(others)), "incoming_origin": origin["store"],
                "incoming_seq": origin["seq"],
            })
        fresh.append(record)
    return fresh, conflicts


def chunk_records(fresh: list[Record], conflicts: list[dict[str, Any]], first: int,
                  now: datetime) -> list[Record]:
    """One txn: the conflict notes, then the imported records, with local seqs."""
    count = len(conflicts) + len(fresh)
    records = [
        meta_record(first + i, (first, count), STORE_ACTOR, "journal_note",
                    {"kind": "import_conflict", **conflict},
                    f"conflict on {conflict['item_id']} rev {conflict['entity_rev']}", now)
        for i, conflict in enumerate(conflicts)
    ]
    writer = writer_id()
    for i, incoming in enumerate(fresh, start=len(conflicts)):
        record = canonical({**incoming, "seq": first + i, "txn": [first, count],
                            "writer": writer})
        records.append(check_record(record))
    return records


def kept(state: State, conflicts: list[dict[str, Any]], store_id: str) -> None:
    for conflict in conflicts:
        entity = state.entity(conflict["item_type"], conflict["item_id"])
        if entity is not None:
            conflict["kept_rev"] = entity.rev
            conflict["kept_origin"] = entity.origin or store_id


def now_text() -> str:
    return clock.to_rfc3339(clock.utc_now())
