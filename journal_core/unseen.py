"""Unseen events and cursors (docs/design.md, "Cursors").

``read_unseen`` returns the records others wrote after the actor's cursor, oldest first,
and never moves the cursor (``ack`` does, or ``advance=True``). It reads the journal from
the cursor through the same scanner as replay, envelopes only unless payloads are asked
for: a compact event never parses the payload it does not return. Renewals (``renew``
records) are not events an agent needs: they count as seen but are not shown.
"""

from __future__ import annotations

from typing import Any

from . import limits
from .checkpoint import CheckpointInvalid, CheckpointStore, checkpoint_name, load_checkpoint
from .cursor import CursorStore
from .errors import InvalidArgument
from .ids import check_actor, check_family
from .journal import Journal, Record
from .replay import State, is_redacted
from .replica import Replica
from .vocabulary import EPHEMERAL_ACTIONS, FAMILIES


def wanted_families(item_types: list[str] | None) -> set[str] | None:
    return {check_family(t) if t != "journal" else t for t in item_types or []} or None


def matches(record: Record, actor: str, wanted: set[str] | None) -> bool:
    if record["actor"] == actor:
        return False
    if wanted is None:
        return record["item_type"] != "journal" and record["action"] not in EPHEMERAL_ACTIONS
    return bool(record["item_type"] in wanted)


def read_unseen(replica: Replica, cursors: CursorStore, checkpoints: CheckpointStore,
                store_id: str, actor: str, limit: int = 100,
                item_types: list[str] | None = None, *, payloads: bool = False,
                after: int | None = None) -> dict[str, Any]:
    check_actor(actor)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InvalidArgument("limit must be a positive integer")
    limit = min(limit, limits.unseen_events_max)
    wanted = wanted_families(item_types)
    replica.refresh()
    head = replica.head_seq
    last = cursors.get(actor) if after is None else after
    return unseen_page(replica.journal, checkpoints, store_id, actor, last, head, limit,
                       wanted, payloads=payloads)


def unseen_page(journal: Journal, checkpoints: CheckpointStore, store_id: str, actor: str,
                last: int, head: int, limit: int, wanted: set[str] | None, *,
                payloads: bool) -> dict[str, Any]:
    oldest = journal.oldest_seq()
    answer: dict[str, Any] = {"events": [], "last_seq": last, "next_seq": last + 1,
                              "head_seq": head, "has_more": False, "gap": False}
    if last + 1 < oldest:
        answer["gap"] = True
        answer["gap_summary"] = gap_summary(checkpoints, store_id, last, oldest)
    events: list[Record] = answer["events"]
    done = True
    for group in journal.scan(last, envelope_only=not payloads):
        for record in group.records:
            if record["seq"] > head:
                break
            if matches(record, actor, wanted):
                if len(events) == limit:
                    answer["has_more"] = True
                    done = False
                    break
                events.append(record)
            answer["last_seq"] = record["seq"]
        if not done or group.last_seq >= head:
            break
    if done:
        answer["last_seq"] = max(answer["last_seq"], head)  # everything up to head seen
    answer["next_seq"] = answer["last_seq"] + 1
    return answer


def gap_summary(checkpoints: CheckpointStore, store_id: str, last: int,
                oldest: int) -> dict[str, Any]:
    """What a reader whose history was archived missed, from the latest checkpoint: its
    head and the live entities per family and status."""
    summary: dict[str, Any] = {"missed_from_seq": last + 1, "oldest_kept_seq": oldest}
    heads = checkpoints.heads()
    if not heads:
        return summary
    scratch = State()
    try:
        load_checkpoint(checkpoints.read(heads[-1]) or b"", store_id, scratch)
    except CheckpointInvalid:
        return summary
    counts: dict[str, dict[str, int]] = {}
    for family in FAMILIES:
        for entity in scratch.live(family):
            payload = entity.payload or {}
            status = "redacted" if is_redacted(payload) and "status" not in payload \
                else str(payload.get("status", "live"))
            counts.setdefault(family, {}).setdefault(status, 0)
            counts[family][status] += 1
    summary.update({"checkpoint": checkpoint_name(heads[-1]), "checkpoint_head_seq": heads[-1],
                    "live": counts})
    return summary


def ack(replica: Replica, cursors: CursorStore, actor: str, up_to_seq: int) -> int:
    """Move the actor's cursor forward to ``up_to_seq`` (never backwards); the cursor."""
    check_actor(actor)
    if isinstance(up_to_seq, bool) or not isinstance(up_to_seq, int) or up_to_seq < 0:
        raise InvalidArgument("up_to_seq must be a non-negative integer")
    replica.refresh()
    if up_to_seq > replica.head_seq:
        raise InvalidArgument(
            f"up_to_seq {up_to_seq} is past the head of the journal ({replica.head_seq}); "
            "ack the last_seq that read_unseen returned"
        )
    return cursors.advance(actor, up_to_seq)
