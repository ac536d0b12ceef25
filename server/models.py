"""Argument types of the MCP tools.

Schemas land in every client's context (``tools/list``), so they are lean: an optional
argument is ``T | Nothing`` (its schema says T, not "T or null"), descriptions are short, and
limits the store checks itself are not repeated here (its messages name them). Results are
not described by output schemas -- each tool returns its JSON as structured content and as
text; docs/tools.md shows a real answer of every tool.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from journal_core import limits
from journal_core.vocabulary import (
    EventFamily,
    Family,
    HandoffAnswer,
    MemoryKind,
    PlanStatus,
    StepSettableStatus,
)

Nothing = SkipJsonSchema[None]

ItemType = Family
EventType = EventFamily
Actor = str | Nothing  # explained once, in the server's instructions
RequestId = Annotated[str | Nothing, Field(description="Makes a retry safe.")]
ItemId = Annotated[str, Field(max_length=limits.item_id_chars_max)]
Title = Annotated[str, Field(max_length=limits.title_chars_max)]
Text = Annotated[str, Field(max_length=limits.text_chars_max)]
Ttl = Annotated[int, Field(ge=limits.claim_ttl_s_min, le=limits.claim_ttl_s_max,
                           description="Seconds it lasts unless renewed.")]
Fence = Annotated[int | Nothing, Field(description="Refused unless it is the claim's.")]


class StepSpec(BaseModel):
    """A new step: its title and the steps it waits for."""

    model_config = ConfigDict(extra="forbid")

    title: Title
    after: list[str] | Nothing = Field(default=None,
                                       description="'s1', or '<plan_id>/<step_id>'.")


class StepUpdate(BaseModel):
    """A change to one step of a plan."""

    model_config = ConfigDict(extra="forbid")

    id: Annotated[str, Field(max_length=8)]
    status: StepSettableStatus | Nothing = None
    title: str | Nothing = None
    result: str | Nothing = None
    after: list[str] | Nothing = None


__all__ = [
    "Actor", "EventType", "Fence", "HandoffAnswer", "ItemId", "ItemType", "Literal",
    "MemoryKind", "Nothing", "PlanStatus", "RequestId", "StepSpec", "StepUpdate", "Text",
    "Title", "Ttl",
]
