"""Opening a store (docs/design.md, "Opening and rebuild").

A cold open builds the replica from the newest checkpoint whose sha256 a ``checkpoint_ref``
in the journal names, then the journal after it; it falls back to older checkpoints, then
to a full replay. It writes nothing.

A store whose journal is empty but that holds checkpoints or projections (a clone of a
store that tracked them in git; the machine files were never committed) *restarts* its
journal from them: the newest checkpoint that loads, then every projection newer than it
(backfilled). The whole state is built in memory first; only once that succeeded is
anything written (the first segment, a store_marker note, the backfill records).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .checkpoint import (
    CheckpointFile,
    CheckpointInvalid,
    CheckpointStore,
    checkpoint_name,
    load_checkpoint,
)
from .counters import JournalCounters
from .errors import InvalidArgument, StoreCorrupt
from .journal import Journal, Record
from .migrations import upgrade
from .mutation import Change
from .projection import Projections
from .replay import State
from .replica import Replica
from .vocabulary import FAMILIES

Resolve = Callable[[dict[str, Any]], dict[str, Any]]
Fallback = Callable[[str, str, dict[str, Any]], dict[str, Any] | None]


@dataclass
class Opened:
    replica: Replica
    checkpoint: str | None  # the checkpoint it started from
    fallbacks: list[str] = field(default_factory=list)  # why newer checkpoints were passed over
    missing_blobs: list[str] = field(default_factory=list)  # content missing after the open


def new_state(store_id: str, resolve: Resolve | None,
              fallback: Fallback | None = None) -> State:
    return State(counters=JournalCounters(), resolve_ref=resolve, local_origin=store_id,
                 fallback=fallback)


def open_replica(journal: Journal, checkpoints: CheckpointStore, store_id: str,
                 resolve: Resolve | None, fallback: Fallback | None = None) -> Opened:
    """The state as checkpoint + journal give it. Touches no file."""
    fallbacks: list[str] = []
    for head in reversed(checkpoints.heads()):
        opened = _from_checkpoint(journal, checkpoints, head, store_id, resolve, fallback,
                                  fallbacks)
        if opened is not None:
            opened.fallbacks = fallbacks
            return opened
    if journal.oldest_seq() > 1:
        raise StoreCorrupt(
            f"the journal before seq {journal.oldest_seq()} is archived and no checkpoint "
            f"verifies: {'; '.join(fallbacks) or 'none found'}"
        )
    state = new_state(store_id, resolve, fallback)
    follower = journal.follower(0, None, counters=state.counters)
    replica = Replica(journal, state, follower)
    replica.apply(follower.poll(), own=False)
    return Opened(replica, None, fallbacks)


def _from_checkpoint(journal: Journal, checkpoints: CheckpointStore, head: int,
                     store_id: str, resolve: Resolve | None, fallback: Fallback | None,
                     fallbacks: list[str]) -> Opened | None:
    name = checkpoint_name(head)
    data = checkpoints.read(head) or b""
    state = new_state(store_id, resolve, fallback)
    try:
        loaded = load_checkpoint(data, store_id, state, fallback)
    except CheckpointInvalid as exc:
        fallbacks.append(f"{name}: {exc}")
        return None
    follower = journal.follower(head, loaded.hint, counters=state.counters)
    replica = Replica(journal, state, follower)
    replica.apply(follower.poll(), own=False)
    if hashlib.sha256(data).hexdigest() not in state.checkpoint_refs.get(name, set()):
        fallbacks.append(f"{name}: sha256 does not match a checkpoint_ref in the journal")
        replica.close()
        return None
    return Opened(replica, name, [], loaded.missing_blobs)


# -- a journal that starts again ------------------------------------------------------------------
@dataclass
class Restart:
    """What a store with an empty journal restarts from, built in memory."""

    state: State
    checkpoint: CheckpointFile | None
    changes: list[Change]
    notes: list[tuple[str, dict[str, Any], str]]
    missing_blobs: list[str]


def plan_restart(checkpoints: CheckpointStore, projections: Projections | None,
                 store_id: str, resolve: Resolve | None,
                 fallback: Fallback | None) -> Restart:
    """The newest checkpoint that loads (else nothing), then the projections newer than it."""
    fallbacks = []
    for head in reversed(checkpoints.heads()):
        name = checkpoint_name(head)
        data = checkpoints.read(head) or b""
        state = new_state(store_id, resolve)
        try:
            loaded = load_checkpoint(data, store_id, state, fallback)
        except CheckpointInvalid as exc:
            fallbacks.append(f"{name}: {exc}")
            continue
        made = CheckpointFile(name, head, data, hashlib.sha256(data).hexdigest(),
                              sum(len(state.live(f)) for f in FAMILIES), [])
        notes = [("journal_note", {"kind": "store_marker", "restarted_from": name},
                  f"journal restarted from {name}")]
        changes = backfill_changes(projections, state)
        return Restart(state, made, changes, notes, loaded.missing_blobs)
    state = new_state(store_id, resolve)
    notes = [("journal_note", {"kind": "store_marker", "restarted_from": "state/"},
              "journal restarted from projections (backfill)")]
    return Restart(state, None, backfill_changes(projections, state), notes, [])


def backfill_changes(projections: Projections | None, state: State) -> list[Change]:
    """Projections newer than the state (or unknown to it), as backfill records."""
    if projections is None:
        return []
    changes = []
    for family in FAMILIES:
        for item_id in projections.ids(family):
            found = projections.read(family, item_id)
            payload = (found.doc or {}).get("payload")
            if found.rev is None or not isinstance(payload, dict):
                continue
            known = state.entity(family, item_id)
            if known is not None and known.rev >= found.rev:
                continue
            try:
                payload = upgrade(family, payload)
                if payload.get("id") != item_id:
                    continue  # a projection whose payload names another entity: not ours
            except InvalidArgument:
                continue  # doctor reports projections it cannot read
            changes.append(Change("record", family, item_id, "backfill", found.rev, payload,
                                  "backfilled from its projection"))
    return changes


def checkpoint_records(checkpoint: CheckpointFile | None) -> list[dict[str, Any]]:
    return [checkpoint.ref_payload()] if checkpoint is not None else []


__all__ = ["Opened", "Restart", "backfill_changes", "new_state", "open_replica",
           "plan_restart"]
Records = list[Record]
