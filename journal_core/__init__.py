"""journal_core: the agentjournal store. No MCP in here; ``server`` uses only this API.

    from journal_core import Store, verbs
    store = Store(".agentjournal")
    key, _ = store.mutate("claude-code#1", lambda m: verbs.claim(m, "file:src/app.py"))
    store.entity_view(*key)
    store.read_unseen("cursor#2", limit=50)
"""

from . import doctor, federation, limits, queries, verbs
from .counters import JournalCounters
from .entities import MODELS, Claim, Entity, Handoff, Memory, Message, Plan, Step
from .errors import (
    BlobError,
    ClaimConflict,
    Conflict,
    InvalidArgument,
    LockTimeout,
    NotFound,
    PayloadTooLarge,
    RecordInvalid,
    StoreCorrupt,
    StoreError,
    StoreIOError,
    UserError,
)
from .fileio import FaultPlan, FileIO, SimulatedCrash
from .ids import FAMILIES, writer_id
from .mutation import Mutation
from .store import Committed, Store, StoreConfig, open_store

__all__ = [
    "FAMILIES",
    "MODELS",
    "BlobError",
    "Claim",
    "ClaimConflict",
    "Committed",
    "Conflict",
    "Entity",
    "FaultPlan",
    "FileIO",
    "Handoff",
    "InvalidArgument",
    "JournalCounters",
    "LockTimeout",
    "Memory",
    "Message",
    "Mutation",
    "NotFound",
    "PayloadTooLarge",
    "Plan",
    "RecordInvalid",
    "SimulatedCrash",
    "Step",
    "Store",
    "StoreConfig",
    "StoreCorrupt",
    "StoreError",
    "StoreIOError",
    "UserError",
    "doctor",
    "federation",
    "limits",
    "open_store",
    "queries",
    "verbs",
    "writer_id",
]
