"""Pydantic models of the MCP surface (SPEC §11): the argument types of the tools and the
structured output each tool declares (its ``outputSchema``).

Outputs are compact on purpose: they land in an agent's context. Rows name an entity and say
enough to decide whether to ``get`` it; optional fields are left out when empty.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from journal_core import limits

# An optional value is ``T | Nothing``: its schema says T (not "T or null"), which keeps
# tools/list small; ``None`` still validates, and outputs leave such fields out when empty.
# Optional arguments carry no length limits in their schema: the store checks them and its
# messages say what the limit is (a union's validation error would not read as well).
Nothing = SkipJsonSchema[None]

# -- argument types -------------------------------------------------------------------
ItemType = Literal["plan", "claim", "memory", "message", "handoff"]
EventType = Literal["plan", "claim", "memory", "message", "handoff", "journal"]
MemoryKind = Literal["decision", "constraint", "trap", "pattern", "fact", "note"]
PlanStatus = Literal["draft", "active", "done", "abandoned"]
StepStatus = Literal["todo", "blocked", "done"]

Actor = Annotated[
    str | Nothing,
    Field(description="Who acts, e.g. 'claude-code#2' (default: server --actor, else the "
          "client's name)."),
]
ItemId = Annotated[str, Field(description="An entity id, e.g. pln_1a2b3c4d5e6f7a8b.",
                              max_length=limits.item_id_chars_max)]
Title = Annotated[str, Field(max_length=limits.title_chars_max)]
Text = Annotated[str, Field(max_length=limits.text_chars_max)]
Ttl = Annotated[int, Field(ge=limits.claim_ttl_s_min, le=limits.claim_ttl_s_max,
                           description="Seconds the claim lasts unless renewed.")]


class StepUpdate(BaseModel):
    """A change to one step of a plan."""

    model_config = ConfigDict(extra="forbid")

    id: Annotated[str, Field(description="Step id, e.g. s2.", max_length=8)]
    status: StepStatus | Nothing = None
    title: str | Nothing = None
    result: str | Nothing = None


# -- outputs --------------------------------------------------------------------------
class Out(BaseModel):
    # Base of every tool output. Docstrings of output models would become schema text in
    # tools/list: comments instead.
    model_config = ConfigDict(populate_by_name=True)


class Event(Out):
    seq: int
    ts: str | Nothing = None
    actor: str
    action: str
    item_type: str
    item_id: str | Nothing = None
    entity_rev: int | Nothing = None
    summary: str | Nothing = None
    payload: dict[str, Any] | Nothing = None


class BriefEvent(Out):
    # The briefing's event: the item id's prefix names its type.
    seq: int
    actor: str
    action: str
    item_id: str | Nothing = None
    summary: str | Nothing = None


class ClaimBrief(Out):
    id: str
    target: str
    expires_at: str | Nothing = None


class PlanBrief(Out):
    id: str
    title: str
    open_steps: list[str] = Field(description="'<step id> [<status>] <title>' per open step.")
    open_steps_total: int | Nothing = None


class MemoryBrief(Out):
    id: str
    kind: str | Nothing = None
    title: str


class WorkResult(Out):
    actor: str
    head_seq: int
    last_seq: int = Field(description="Your cursor: events up to here are acknowledged.")
    unseen_count: int
    unseen_count_is_lower_bound: bool | Nothing = None
    unseen: list[BriefEvent] = Field(description="The newest unseen events (at most 10).")
    my_claims: list[ClaimBrief]
    plans: list[PlanBrief]
    plans_open_total: int
    memory: list[MemoryBrief]
    memory_total: int


class UnseenResult(Out):
    events: list[Event]
    last_seq: int = Field(description="Pass to ack(up_to_seq=...) once you have read them.")
    next_seq: int
    head_seq: int
    has_more: bool
    gap: bool
    gap_summary: dict[str, Any] | Nothing = None


class AckResult(Out):
    actor: str
    last_seq: int


class EntityResult(Out):
    item_type: str
    item_id: str
    entity_rev: int
    seq: int = Field(description="Seq of the entity's newest record.")
    stale: bool = Field(description="True when served from a projection the journal is "
                        "ahead of (the store was busy).")
    entity: dict[str, Any]


class Row(Out):
    id: str
    seq: int
    title: str
    status: str | Nothing = None
    kind: str | Nothing = None
    owner: str | Nothing = None
    holder: str | Nothing = None
    expires_at: str | Nothing = None
    steps: str | Nothing = None
    sender: str | Nothing = Field(default=None, alias="from")
    to: str | Nothing = None
    thread: str | Nothing = None


class ListResult(Out):
    items: list[Row]
    next: str | Nothing = Field(
        default=None, description="Pass as `after` for the next page; absent on the last page.")
    stale: bool


class Hit(Out):
    id: str
    type: str
    title: str
    snippet: str
    status: str | Nothing = None


class SearchResult(Out):
    hits: list[Hit]


class Segments(Out):
    count: int
    bytes: int
    active: str | Nothing = None


class Checkpoint(Out):
    file: str
    head_seq: int
    bytes: int


class StatusResult(Out):
    store: str
    store_id: str
    head_seq: int
    segments: Segments
    checkpoint: Checkpoint | Nothing = None
    origins: dict[str, int] = Field(description="Stores imported from: newest seq of each.")
    live: dict[str, int] = Field(description="Live entities per family.")
    counters: dict[str, int] = Field(description="Doctor counters (SPEC §12).")
