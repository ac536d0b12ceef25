"""Entity families (SPEC §10): pydantic models, ephemeral fields, schema versions."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from . import limits
from .errors import InvalidArgument

Title = Annotated[str, Field(min_length=1, max_length=limits.title_chars_max)]
Text = Annotated[str, Field(max_length=limits.text_chars_max)]
Tag = Annotated[str, Field(min_length=1, max_length=limits.tag_chars_max)]
Tags = Annotated[list[Tag], Field(max_length=limits.tags_max)]
ActorName = Annotated[str, Field(min_length=1, max_length=limits.actor_chars_max)]
Timestamp = Annotated[str, Field(pattern=r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")]


class Entity(BaseModel):
    """Common shape. ``FAMILY`` names the family, ``EPHEMERAL`` the fields whose changes
    emit no record (SPEC §6.3), ``SCHEMA_VERSION`` the version written today."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    FAMILY: ClassVar[str]
    SCHEMA_VERSION: ClassVar[int] = 1
    EPHEMERAL: ClassVar[frozenset[str]] = frozenset()

    schema_version: int
    id: str
    created_at: Timestamp
    created_by: ActorName

    @field_validator("schema_version")
    @classmethod
    def _current_version(cls, value: int) -> int:
        if value != cls.SCHEMA_VERSION:
            raise ValueError(f"schema_version {value} is not {cls.SCHEMA_VERSION}")
        return value

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


class Step(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Annotated[str, Field(pattern=r"^s[0-9]{1,4}$")]
    title: Title
    status: Literal["todo", "claimed", "done", "blocked"] = "todo"
    claim_id: str | None = None
    result: Text | None = None


class Plan(Entity):
    FAMILY = "plan"
    SCHEMA_VERSION = 2

    title: Title
    goal: Text = ""
    status: Literal["draft", "active", "done", "abandoned"] = "active"
    steps: Annotated[list[Step], Field(max_length=limits.plan_steps_max)] = []
    owner: ActorName | None = None
    tags: Tags = []


class Claim(Entity):
    FAMILY = "claim"
    EPHEMERAL = frozenset({"expires_at", "renewed_at"})

    target: Annotated[str, Field(min_length=1, max_length=limits.claim_target_chars_max)]
    holder: ActorName
    status: Literal["active", "released", "completed", "expired"] = "active"
    ttl_s: Annotated[int, Field(ge=limits.claim_ttl_s_min, le=limits.claim_ttl_s_max)]
    expires_at: Timestamp
    renewed_at: Timestamp | None = None
    note: Text | None = None
    result: Text | None = None


class Memory(Entity):
    FAMILY = "memory"

    kind: Literal["decision", "constraint", "trap", "pattern", "fact", "note"]
    title: Title
    body: Text = ""
    tags: Tags = []
    status: Literal["active", "superseded", "archived"] = "active"
    supersedes: str | None = None
    superseded_by: str | None = None
    reason: Text | None = None


class Message(Entity):
    FAMILY = "message"

    sender: ActorName = Field(alias="from")
    to: ActorName
    thread: Annotated[str, Field(max_length=limits.title_chars_max)] | None = None
    body: Text


class Handoff(Entity):
    FAMILY = "handoff"

    sender: ActorName = Field(alias="from")
    to: ActorName
    summary: Annotated[str, Field(min_length=1, max_length=limits.summary_chars_max)]
    context: str = ""
    thread: Annotated[str, Field(max_length=limits.title_chars_max)] | None = None
    status: Literal["open", "accepted", "rejected"] = "open"


E = TypeVar("E", bound=BaseModel)

MODELS: dict[str, type[Entity]] = {
    model.FAMILY: model for model in (Plan, Claim, Memory, Message, Handoff)
}


def model_for(family: str) -> type[Entity]:
    try:
        return MODELS[family]
    except KeyError:
        raise InvalidArgument(f"unknown item type {family!r}") from None


def mask_ephemeral(family: str, payload: dict[str, Any]) -> dict[str, Any]:
    ephemeral = MODELS[family].EPHEMERAL
    if not ephemeral:
        return payload
    return {key: value for key, value in payload.items() if key not in ephemeral}


def validate_payload(family: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Validate a current-version payload; return its canonical dict. Raises InvalidArgument."""
    return build(model_for(family), payload).dump()


def build(model: type[E], fields: dict[str, Any]) -> E:
    """A validated entity; a bad field (too many tags, a thread too long, text that is not
    unicode) is an InvalidArgument naming it, never a bare pydantic error."""
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        what = getattr(model, "FAMILY", model.__name__.lower())
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or what
        raise InvalidArgument(f"invalid {what}: {where}: {first['msg']}") from exc
