"""journal_core: the agentjournal store. No MCP in here; ``agentjournal`` uses only this API.

    from journal_core import Store, verbs
    store = Store(".agentjournal")
    key, _ = store.mutate("claude-code#1", lambda m: verbs.claim(m, "file:src/app.py"))
    store.entity_view(*key)
    store.read_unseen("cursor#2", limit=50)
"""

from . import (
    board,
    claim_overview,
    doctor,
    events,
    federation,
    health,
    limits,
    queries,
    revisions,
    supersession,
    verbs,
    waiting,
)
from .commit import Committed
from .counters import JournalCounters
from .entities import MODELS, Claim, Entity, Handoff, Memory, Message, Plan, Step
from .errors import (
    BlobError,
    ClaimConflict,
    Conflict,
    InvalidArgument,
    JournalReplaced,
    LockTimeout,
    NotApplied,
    NotFound,
    OutcomeUnknown,
    PayloadTooLarge,
    ReadOnlyStore,
    RecordInvalid,
    RequestReused,
    StoreCorrupt,
    StoreError,
    StoreIOError,
    StoreNotFound,
    StoreUnavailable,
    SymlinkRefused,
    UserError,
)
from .fileio import FaultPlan, FileIO, SimulatedCrash
from .ids import FAMILIES, writer_id
from .mutation import Mutation
from .store import Store, StoreConfig, open_store

__all__ = [
    "FAMILIES", "MODELS", "BlobError", "Claim", "ClaimConflict", "Committed", "Conflict",
    "Entity", "FaultPlan", "FileIO", "Handoff", "InvalidArgument", "JournalCounters",
    "JournalReplaced", "LockTimeout", "Memory", "Message", "Mutation", "NotApplied",
    "NotFound", "OutcomeUnknown", "PayloadTooLarge", "Plan", "ReadOnlyStore", "RecordInvalid",
    "RequestReused", "SimulatedCrash", "Step", "Store", "StoreConfig", "StoreCorrupt",
    "StoreError", "StoreIOError", "StoreNotFound", "StoreUnavailable", "SymlinkRefused",
    "UserError", "board",
    "claim_overview", "doctor", "events", "federation", "health", "limits", "open_store",
    "queries", "revisions", "supersession", "verbs", "waiting", "writer_id",
]
