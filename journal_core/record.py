"""The record (SPEC §3): envelope, action classes, codec.

A record is a plain dict on the hot path; ``check_record`` validates it against the pydantic
models below before it is written and again after it is read back.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from . import limits
from .errors import InvalidArgument, PayloadTooLarge, RecordInvalid
from .ids import FAMILY_PREFIXES, ITEM_ID_PATTERN, WRITER_PATTERN

ENTITY_STATE_ACTIONS = frozenset(
    {"create", "update", "claim", "release_claim", "complete", "accept", "reject", "backfill"}
)
TOMBSTONE_ACTIONS = frozenset({"delete"})
JOURNAL_META_ACTIONS = frozenset({"checkpoint_ref", "journal_note", "seq_repair"})
OBSERVABILITY_ACTIONS = frozenset({"session_start", "session_end", "progress"})
NOTE_KINDS = frozenset(
    {"torn_tail_adjudicated", "incomplete_txn", "genesis", "redaction", "store_marker",
     "import_conflict"}
)

TS_PATTERN = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$"
Family = Literal["plan", "claim", "memory", "message", "handoff"]
PositiveInt = Annotated[int, Field(ge=1)]
ItemId = Annotated[str, Field(pattern=ITEM_ID_PATTERN.pattern)]
Actor = Annotated[str, Field(min_length=1, max_length=limits.actor_chars_max)]


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    v: Literal[1]
    seq: PositiveInt
    ts: Annotated[str, Field(pattern=TS_PATTERN)]
    writer: Annotated[str, Field(pattern=WRITER_PATTERN.pattern)]
    actor: Actor
    txn: Annotated[list[PositiveInt], Field(min_length=2, max_length=2)]
    summary: Annotated[str, Field(max_length=limits.summary_chars_max)] | None = None

    @model_validator(mode="after")
    def _seq_inside_txn(self) -> _Envelope:
        first, count = self.txn
        if count > limits.txn_records_max or not first <= self.seq < first + count:
            raise ValueError(f"seq {self.seq} lies outside its txn {list(self.txn)}")
        return self


class Origin(BaseModel):
    """Where an imported record was first written: its origin store, seq and writer."""

    model_config = ConfigDict(extra="forbid", strict=True)
    store: Annotated[str, Field(pattern=r"^st_[0-9a-f]{16}$")]
    seq: PositiveInt
    writer: Annotated[str, Field(pattern=WRITER_PATTERN.pattern)]


class PayloadRef(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    bytes: Annotated[int, Field(ge=0)]


class EntityStateRecord(_Envelope):
    action: Literal[
        "create", "update", "claim", "release_claim", "complete", "accept", "reject", "backfill"
    ]
    item_type: Family
    item_id: ItemId
    entity_rev: PositiveInt
    payload: dict[str, Any] | None = None
    payload_ref: PayloadRef | None = None
    origin: Origin | None = None

    @model_validator(mode="after")
    def _payload_or_ref(self) -> EntityStateRecord:
        if (self.payload is None) == (self.payload_ref is None):
            raise ValueError(f"{self.action} needs exactly one of payload and payload_ref")
        if not self.item_id.startswith(FAMILY_PREFIXES[self.item_type]):
            raise ValueError(f"item_id {self.item_id!r} lacks the {self.item_type} prefix")
        return self


class TombstoneRecord(_Envelope):
    action: Literal["delete"]
    item_type: Family
    item_id: ItemId
    entity_rev: PositiveInt
    origin: Origin | None = None


class JournalMetaRecord(_Envelope):
    action: Literal["checkpoint_ref", "journal_note", "seq_repair"]
    item_type: Literal["journal"]
    payload: dict[str, Any]

    @model_validator(mode="after")
    def _meta_schema(self) -> JournalMetaRecord:
        _check_meta_payload(self.action, self.payload)
        return self


class ObservabilityRecord(_Envelope):
    action: Literal["session_start", "session_end", "progress"]
    item_type: Family | Literal["journal"]
    item_id: ItemId | None = None


_ANY_RECORD = TypeAdapter(
    Annotated[
        EntityStateRecord | TombstoneRecord | JournalMetaRecord | ObservabilityRecord,
        Field(discriminator="action"),
    ]
)

_META_REQUIRED: dict[str, dict[str, type | tuple[type, ...]]] = {
    "checkpoint_ref": {
        "file": str, "sha256": str, "head_seq": int, "entities": int, "bytes": int, "blobs": list,
    },
    "seq_repair": {"meta_next_seq": int, "tail_seq": int, "repaired_next_seq": int},
    "journal_note": {"kind": str},
}


def _check_meta_payload(action: str, payload: dict[str, Any]) -> None:
    for key, kind in _META_REQUIRED[action].items():
        if not isinstance(payload.get(key), kind):
            raise ValueError(f"{action} payload needs {key!r} of type {kind}")
    if action == "journal_note" and payload["kind"] not in NOTE_KINDS:
        raise ValueError(f"unknown journal_note kind {payload['kind']!r}")


def check_record(record: object) -> dict[str, Any]:
    """Validate a record dict against its action class; raise RecordInvalid with the reason."""
    if not isinstance(record, dict):
        raise RecordInvalid("a record is a JSON object")
    try:
        _ANY_RECORD.validate_python(record)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise RecordInvalid(f"record seq={record.get('seq')!r}: {where}: {first['msg']}") from exc
    return record


def encode_record(record: dict[str, Any]) -> bytes:
    """Validate, then encode one record as one line (without the newline)."""
    check_record(record)
    if record["item_type"] == "journal" and "payload" in record:
        size = len(payload_bytes(record["payload"]))
        if size > limits.payload_inline_bytes_max:  # journal-meta records take no blob
            raise PayloadTooLarge(
                f"{record['action']} payload is {size} bytes; a journal-meta payload may hold "
                f"at most {limits.payload_inline_bytes_max} bytes"
            )
    line = _dumps(record, record)
    if len(line) > limits.record_line_bytes_max:
        raise PayloadTooLarge(
            f"record for {record.get('item_type')} {record.get('item_id')} is {len(line)} bytes; "
            f"a journal line may hold at most {limits.record_line_bytes_max} bytes"
        )
    return line


def decode_line(line: bytes) -> dict[str, Any]:
    """Parse and validate one line; raise RecordInvalid for anything that is not a record."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise RecordInvalid(f"not JSON: {exc}") from exc
    return check_record(obj)


def payload_bytes(payload: dict[str, Any]) -> bytes:
    return _dumps(payload, None, option=orjson.OPT_SORT_KEYS)


def _dumps(value: dict[str, Any], record: dict[str, Any] | None, option: int = 0) -> bytes:
    """orjson.dumps; text it cannot encode (a lone surrogate) is an InvalidArgument."""
    try:
        return orjson.dumps(value, option=option)
    except orjson.JSONEncodeError as exc:
        what = f"{record.get('item_type')} {record.get('item_id')}" if record else "payload"
        raise InvalidArgument(f"{what} holds text that is not valid unicode: {exc}") from exc


SEQ_PREFIX = re.compile(rb'^\{"v":1,"seq":(\d+),')


def peek_seq(line: bytes) -> int | None:
    """The seq of a line written by this codec, without parsing it (None if unknown)."""
    match = SEQ_PREFIX.match(line)
    return int(match.group(1)) if match else None


def record_class(action: str) -> str:
    if action in ENTITY_STATE_ACTIONS:
        return "entity-state"
    if action in TOMBSTONE_ACTIONS:
        return "tombstone"
    if action in JOURNAL_META_ACTIONS:
        return "journal-meta"
    return "observability"
