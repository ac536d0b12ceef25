"""Entity families (docs/design.md, "Entities"): pydantic models, ephemeral fields, schema
versions, the shape replay relies on, and what redaction keeps.

Fields added after a family's schema version was first written are optional with a default,
so payloads written before them still validate at the same version.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from . import limits
from .errors import InvalidArgument
from .vocabulary import (
    CLAIM_STATUSES,
    HANDOFF_STATUSES,
    MEMORY_KINDS,
    MEMORY_STATUSES,
    PLAN_STATUSES,
    STEP_STATUSES,
    ClaimStatus,
    HandoffStatus,
    MemoryKind,
    MemoryStatus,
    PlanStatus,
    StepStatus,
)

Title = Annotated[str, Field(min_length=1, max_length=limits.title_chars_max)]
Text = Annotated[str, Field(max_length=limits.text_chars_max)]
Tag = Annotated[str, Field(min_length=1, max_length=limits.tag_chars_max)]
Tags = Annotated[list[Tag], Field(max_length=limits.tags_max)]
ActorName = Annotated[str, Field(min_length=1, max_length=limits.actor_chars_max)]
Timestamp = Annotated[str, Field(pattern=r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")]
StepRef = Annotated[str, Field(min_length=1, max_length=limits.step_ref_chars_max)]
REDACTED_TEXT = "[redacted]"


class Entity(BaseModel):
    """Common shape. ``FAMILY`` names the family, ``EPHEMERAL`` the fields whose changes
    emit no entity record (a ``renew`` record, no rev bump), ``SCHEMA_VERSION`` the version
    written today."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    FAMILY: ClassVar[str]
    SCHEMA_VERSION: ClassVar[int] = 1
    EPHEMERAL: ClassVar[frozenset[str]] = frozenset()
    # Fields added after the family was first written: left out of a payload while they
    # hold their default, so payloads keep the shape they always had.
    OMIT_AT_DEFAULT: ClassVar[dict[str, Any]] = {"redacted": None}

    schema_version: int
    id: str
    created_at: Timestamp
    created_by: ActorName
    redacted: dict[str, Any] | None = None  # set by doctor --redact: {by, at}

    @field_validator("schema_version")
    @classmethod
    def _current_version(cls, value: int) -> int:
        if value != cls.SCHEMA_VERSION:
            raise ValueError(f"schema_version {value} is not {cls.SCHEMA_VERSION}")
        return value

    def dump(self) -> dict[str, Any]:
        out = self.model_dump(mode="json", by_alias=True, exclude_none=False)
        for key, default in self.OMIT_AT_DEFAULT.items():
            if key in out and out[key] == default:
                del out[key]
        if "steps" in out:
            for step in out["steps"]:
                if not step.get("after"):
                    step.pop("after", None)
        return out


class Step(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Annotated[str, Field(pattern=r"^s[0-9]{1,4}$")]
    title: Title
    status: StepStatus = "todo"
    claim_id: str | None = None
    result: Text | None = None
    after: Annotated[list[StepRef], Field(max_length=limits.step_blockers_max)] = []


class Plan(Entity):
    FAMILY = "plan"
    SCHEMA_VERSION = 2
    OMIT_AT_DEFAULT: ClassVar[dict[str, Any]] = {"redacted": None, "priority": 0}

    title: Title
    goal: Text = ""
    status: PlanStatus = "active"
    steps: Annotated[list[Step], Field(max_length=limits.plan_steps_max)] = []
    owner: ActorName | None = None
    tags: Tags = []
    priority: Annotated[int, Field(ge=limits.plan_priority_min, le=limits.plan_priority_max)] = 0


class Claim(Entity):
    FAMILY = "claim"
    EPHEMERAL = frozenset({"expires_at", "renewed_at"})
    OMIT_AT_DEFAULT: ClassVar[dict[str, Any]] = {
        "redacted": None, "targets": None, "fence": None, "keepalive": False,
        "keepalive_until": None, "previous_holder": None, "taken_over_by": None,
        "taken_over_at": None, "reason": None,
    }

    target: Annotated[str, Field(min_length=1, max_length=limits.claim_target_chars_max)]
    targets: Annotated[list[str], Field(max_length=limits.claim_targets_max)] | None = None
    holder: ActorName
    status: ClaimStatus = "active"
    ttl_s: Annotated[int, Field(ge=limits.claim_ttl_s_min, le=limits.claim_ttl_s_max)]
    expires_at: Timestamp
    renewed_at: Timestamp | None = None
    note: Text | None = None
    result: Text | None = None
    fence: int | None = None  # the seq that granted it: higher for every new claim on a target
    keepalive: bool = False  # renewed by the holder's other mutations
    keepalive_until: Timestamp | None = None  # ... but not past this (max_s)
    previous_holder: ActorName | None = None  # whose expired claim this one took over
    taken_over_by: ActorName | None = None  # set on an expired claim when it was taken over
    taken_over_at: Timestamp | None = None
    reason: Text | None = None  # why a person released it


class Memory(Entity):
    FAMILY = "memory"

    kind: MemoryKind
    title: Title
    body: Text = ""
    tags: Tags = []
    status: MemoryStatus = "active"
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
    OMIT_AT_DEFAULT: ClassVar[dict[str, Any]] = {
        "redacted": None, "answered_by": None, "answered_at": None, "answer_note": None,
    }

    sender: ActorName = Field(alias="from")
    to: ActorName
    summary: Annotated[str, Field(min_length=1, max_length=limits.summary_chars_max)]
    context: str = ""
    thread: Annotated[str, Field(max_length=limits.title_chars_max)] | None = None
    status: HandoffStatus = "open"
    answered_by: ActorName | None = None
    answered_at: Timestamp | None = None
    answer_note: Text | None = None


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


# -- the shape replay relies on ---------------------------------------------------------
_SHAPE: dict[str, dict[str, tuple[str, ...] | type]] = {
    "plan": {"status": PLAN_STATUSES, "steps": list, "title": str},
    "claim": {"status": CLAIM_STATUSES, "target": str, "holder": str, "expires_at": str,
              "ttl_s": int},
    "memory": {"status": MEMORY_STATUSES, "kind": MEMORY_KINDS, "title": str},
    "message": {"from": str, "to": str},
    "handoff": {"status": HANDOFF_STATUSES, "from": str, "to": str},
}


def check_shape(family: str, payload: dict[str, Any], item_id: str) -> None:
    """The fields the engine itself reads, of the right kind, and the id of the record:
    cheap enough for every record a reader replays. (Full validation is the writer's, and
    doctor's: a payload with the right shape that breaks a model rule is reported there.)"""
    if payload.get("schema_version") != MODELS[family].SCHEMA_VERSION:
        raise InvalidArgument(f"{family} payload has schema_version "
                              f"{payload.get('schema_version')!r}")
    if payload.get("id") != item_id:
        raise InvalidArgument(f"{family} payload says id {payload.get('id')!r}, its record "
                              f"{item_id!r}")
    for key, rule in _SHAPE[family].items():
        value = payload.get(key)
        if isinstance(rule, tuple):
            if value not in rule:
                raise InvalidArgument(f"{family} {key} {value!r} is not one of {rule}")
        elif not isinstance(value, rule) or isinstance(value, bool):
            raise InvalidArgument(f"{family} {key} must be a {rule.__name__}")
    if family == "plan":
        for step in payload["steps"]:
            if not isinstance(step, dict) or not isinstance(step.get("id"), str) \
                    or step.get("status") not in STEP_STATUSES:
                raise InvalidArgument(f"plan {item_id} has a step of the wrong shape")
    if family == "claim" and payload.get("targets") is not None and (
            not isinstance(payload["targets"], list)
            or not all(isinstance(t, str) for t in payload["targets"])):
        raise InvalidArgument(f"claim {item_id} targets must be a list of strings")


# -- redaction: secrets go, coordination stays -------------------------------------------------
def redact_payload(family: str, payload: dict[str, Any],
                   marker: dict[str, Any]) -> dict[str, Any]:
    """The payload with its free text replaced and its coordination fields kept (who holds
    what, until when; a plan's steps and their states), so every process answers the same
    about claims before and after a redaction. Stays valid for its model."""
    out = dict(payload)
    out["redacted"] = dict(marker.get("redacted", marker))
    if family == "plan":
        out.update(title=REDACTED_TEXT, goal="", tags=[])
        out["steps"] = [{**step, "title": REDACTED_TEXT, "result": None}
                        for step in payload.get("steps") or [] if isinstance(step, dict)]
    elif family == "claim":
        out.update(note=None, result=None, reason=None)
    elif family == "memory":
        out.update(title=REDACTED_TEXT, body="", tags=[], reason=None)
    elif family == "message":
        out.update(body=REDACTED_TEXT, thread=None)
    elif family == "handoff":
        out.update(summary=REDACTED_TEXT, context="", answer_note=None, thread=None)
    return out
