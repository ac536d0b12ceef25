"""The words of the store, in one place: families, id prefixes, statuses, kinds, actions.

Entity models, the record codec, queries and the MCP models all import these, so a status
or an action exists once.
"""

from __future__ import annotations

from typing import Literal

FAMILY_PREFIXES: dict[str, str] = {
    "plan": "pln_",
    "claim": "clm_",
    "memory": "mem_",
    "message": "msg_",
    "handoff": "hnd_",
}
FAMILIES: tuple[str, ...] = tuple(FAMILY_PREFIXES)
Family = Literal["plan", "claim", "memory", "message", "handoff"]
EventFamily = Literal["plan", "claim", "memory", "message", "handoff", "journal"]

PLAN_STATUSES = ("draft", "active", "done", "abandoned")
STEP_STATUSES = ("todo", "claimed", "done", "blocked")
STEP_SETTABLE_STATUSES = ("todo", "blocked", "done")
CLAIM_STATUSES = ("active", "released", "completed", "expired")
MEMORY_STATUSES = ("active", "superseded", "archived")
MEMORY_KINDS = ("decision", "constraint", "trap", "pattern", "fact", "note")
HANDOFF_STATUSES = ("open", "accepted", "rejected")
HANDOFF_ANSWERS = ("accept", "reject")

PlanStatus = Literal["draft", "active", "done", "abandoned"]
StepStatus = Literal["todo", "claimed", "done", "blocked"]
StepSettableStatus = Literal["todo", "blocked", "done"]
ClaimStatus = Literal["active", "released", "completed", "expired"]
MemoryStatus = Literal["active", "superseded", "archived"]
MemoryKind = Literal["decision", "constraint", "trap", "pattern", "fact", "note"]
HandoffStatus = Literal["open", "accepted", "rejected"]
HandoffAnswer = Literal["accept", "reject"]

# The status filter each family accepts (messages have none).
STATUSES: dict[str, tuple[str, ...]] = {
    "plan": PLAN_STATUSES,
    "claim": CLAIM_STATUSES,
    "memory": MEMORY_STATUSES,
    "message": (),
    "handoff": HANDOFF_STATUSES,
}

# Record action classes (docs/design.md, "The record").
ENTITY_STATE_ACTIONS = frozenset(
    {"create", "update", "claim", "release_claim", "complete", "accept", "reject", "backfill"}
)
TOMBSTONE_ACTIONS = frozenset({"delete"})
EPHEMERAL_ACTIONS = frozenset({"renew"})  # ephemeral fields of one rev; no rev bump
JOURNAL_META_ACTIONS = frozenset({"checkpoint_ref", "journal_note", "seq_repair"})
OBSERVABILITY_ACTIONS = frozenset({"session_start", "session_end", "progress"})
ALL_ACTIONS = (ENTITY_STATE_ACTIONS | TOMBSTONE_ACTIONS | EPHEMERAL_ACTIONS
               | JOURNAL_META_ACTIONS | OBSERVABILITY_ACTIONS)

NOTE_KINDS = frozenset({
    "torn_tail_adjudicated", "incomplete_txn", "genesis", "redaction", "store_marker",
    "import_conflict", "segment_roll",
})

# Claim targets.
STEP_TARGET_PREFIX = "step:"
FILE_TARGET_PREFIX = "file:"
NEXT_TARGET = "next"
