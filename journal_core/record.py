"""The record (docs/design.md, "The record"): envelope, action classes, codec.

A record is a plain dict. ``check_record`` validates it against the rules of its action
class; it is hand-written (the rules are few and the check runs on every line a reader
meets: a schema library cost ten times more here). A writer checks every record it did not
build itself (imports, hand-written notes) before it encodes it; records the store builds
are checked with cheap invariants only, since every field was validated on the way in.

Envelope keys are written first and the payload last, so a reader that needs only the
envelope (a compact event) can parse the bytes before ``,"payload`` and leave the payload
alone (``decode_envelope``).
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from . import limits
from .errors import InvalidArgument, PayloadTooLarge, RecordInvalid
from .ids import ITEM_ID_PATTERN, WRITER_PATTERN
from .vocabulary import (
    ENTITY_STATE_ACTIONS,
    EPHEMERAL_ACTIONS,
    FAMILY_PREFIXES,
    JOURNAL_META_ACTIONS,
    NOTE_KINDS,
    OBSERVABILITY_ACTIONS,
    TOMBSTONE_ACTIONS,
)

Record = dict[str, Any]
TS_PATTERN = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")
SHA256_PATTERN = re.compile(r"[0-9a-f]{64}")
STORE_ID_PATTERN = re.compile(r"st_[0-9a-f]{16}")
_TS_MATCH = TS_PATTERN.fullmatch
_WRITER_MATCH = WRITER_PATTERN.fullmatch
ENVELOPE_KEYS = frozenset({"v", "seq", "ts", "writer", "actor", "action", "item_type", "txn",
                           "summary", "request"})
ENTITY_KEYS = ENVELOPE_KEYS | {"item_id", "entity_rev", "payload", "payload_ref", "origin"}
TOMBSTONE_KEYS = ENVELOPE_KEYS | {"item_id", "entity_rev", "origin"}
EPHEMERAL_KEYS = ENVELOPE_KEYS | {"item_id", "entity_rev", "payload"}
META_KEYS = ENVELOPE_KEYS | {"payload"}
OBSERVABILITY_KEYS = ENVELOPE_KEYS | {"item_id"}
REQUEST_KEYS = frozenset({"id", "hash", "result"})
_META_REQUIRED: dict[str, dict[str, type | tuple[type, ...]]] = {
    "checkpoint_ref": {
        "file": str, "sha256": str, "head_seq": int, "entities": int, "bytes": int, "blobs": list,
    },
    "seq_repair": {"meta_next_seq": int, "tail_seq": int, "repaired_next_seq": int},
    "journal_note": {"kind": str},
}
PAYLOAD_MARKERS = (b',"payload":', b',"payload_ref":')


def _int(value: object, minimum: int = 1) -> bool:
    return type(value) is int and value >= minimum


def _envelope_ok(record: Record) -> bool:
    """The common case in one expression (every line a reader meets): a well-formed
    envelope. ``_check_envelope`` says what is wrong when this is False."""
    get = record.get
    seq, txn, ts, writer, actor = get("seq"), get("txn"), get("ts"), get("writer"), get("actor")
    return (type(get("v")) is int and get("v") == 1 and type(seq) is int
            and type(txn) is list and len(txn) == 2 and type(txn[0]) is int
            and type(txn[1]) is int and 1 <= txn[0] <= seq < txn[0] + txn[1]
            and txn[1] <= limits.txn_records_max
            and type(ts) is str and _TS_MATCH(ts) is not None
            and type(writer) is str and _WRITER_MATCH(writer) is not None
            and type(actor) is str and 1 <= len(actor) <= limits.actor_chars_max
            and ("summary" not in record or (type(record["summary"]) is str and len(
                record["summary"]) <= limits.summary_chars_max))
            and ("request" not in record or _request_ok(record["request"])))


def _check_envelope(record: Record) -> str | None:
    """The reason the envelope is broken, or None."""
    if _envelope_ok(record):
        return None
    if record.get("v") != 1 or type(record.get("v")) is not int:
        return "v: envelope version must be 1"
    seq, txn = record.get("seq"), record.get("txn")
    if not _int(seq):
        return "seq: a positive integer"
    ts = record.get("ts")
    if not isinstance(ts, str) or not TS_PATTERN.fullmatch(ts):
        return "ts: an RFC 3339 UTC timestamp"
    writer = record.get("writer")
    if not isinstance(writer, str) or not WRITER_PATTERN.fullmatch(writer):
        return "writer: w_<pid>-<12 hex>"
    actor = record.get("actor")
    if not isinstance(actor, str) or not 1 <= len(actor) <= limits.actor_chars_max:
        return f"actor: 1-{limits.actor_chars_max} characters"
    if (not isinstance(txn, list) or len(txn) != 2 or not _int(txn[0]) or not _int(txn[1])):
        return "txn: [first_seq, count]"
    if txn[1] > limits.txn_records_max or not txn[0] <= seq < txn[0] + txn[1]:
        return f"seq {seq} lies outside its txn {txn}"
    summary = record.get("summary")
    if summary is not None and (not isinstance(summary, str)
                                or len(summary) > limits.summary_chars_max):
        return f"summary: a string of at most {limits.summary_chars_max} characters"
    request = record.get("request")
    if request is not None and not _request_ok(request):
        return "request: {id, hash[, result]}"
    return None


def _request_ok(request: object) -> bool:
    if not isinstance(request, dict) or not set(request) <= REQUEST_KEYS:
        return False
    rid, digest = request.get("id"), request.get("hash")
    return (isinstance(rid, str) and 1 <= len(rid) <= limits.request_id_chars_max
            and isinstance(digest, str) and len(digest) <= 64
            and (request.get("result") is None or isinstance(request.get("result"), str)))


def _check_entity_id(record: Record) -> str | None:
    family, item_id = record.get("item_type"), record.get("item_id")
    if family not in FAMILY_PREFIXES:
        return f"item_type: one of {', '.join(FAMILY_PREFIXES)}"
    if not isinstance(item_id, str) or not ITEM_ID_PATTERN.fullmatch(item_id):
        return f"item_id: 1-{limits.item_id_chars_max} characters of [a-z0-9_]"
    if not item_id.startswith(FAMILY_PREFIXES[str(family)]):
        return f"item_id {item_id!r} lacks the {family} prefix"
    if not _int(record.get("entity_rev")):
        return "entity_rev: a positive integer"
    return None


def _check_origin(origin: object) -> str | None:
    if origin is None:
        return None
    if (not isinstance(origin, dict) or set(origin) != {"store", "seq", "writer"}
            or not isinstance(origin["store"], str)
            or not STORE_ID_PATTERN.fullmatch(origin["store"]) or not _int(origin["seq"])
            or not isinstance(origin["writer"], str)
            or not WRITER_PATTERN.fullmatch(origin["writer"])):
        return "origin: {store, seq, writer}"
    return None


def _check_class(record: Record) -> str | None:
    action = record.get("action")
    if action in ENTITY_STATE_ACTIONS:
        return _check_entity_state(record)
    if action in TOMBSTONE_ACTIONS:
        return (_extra(record, TOMBSTONE_KEYS) or _check_entity_id(record)
                or _check_origin(record.get("origin")))
    if action in EPHEMERAL_ACTIONS:
        if not isinstance(record.get("payload"), dict):
            return f"{action} needs a payload of ephemeral fields"
        return _extra(record, EPHEMERAL_KEYS) or _check_entity_id(record)
    if action in JOURNAL_META_ACTIONS:
        return _extra(record, META_KEYS) or _check_meta(record)
    if action in OBSERVABILITY_ACTIONS:
        if record.get("item_type") not in (*FAMILY_PREFIXES, "journal"):
            return "item_type: a family or journal"
        item_id = record.get("item_id")
        if item_id is not None and (not isinstance(item_id, str)
                                    or not ITEM_ID_PATTERN.fullmatch(item_id)):
            return "item_id: [a-z0-9_]"
        return _extra(record, OBSERVABILITY_KEYS)
    return f"action: unknown action {action!r}"


def _check_entity_state(record: Record) -> str | None:
    reason = _extra(record, ENTITY_KEYS) or _check_entity_id(record)
    if reason:
        return reason
    payload, ref = record.get("payload"), record.get("payload_ref")
    if (payload is None) == (ref is None):
        return f"{record['action']} needs exactly one of payload and payload_ref"
    if payload is not None and not isinstance(payload, dict):
        return "payload: an object"
    if ref is not None and (not isinstance(ref, dict) or set(ref) != {"sha256", "bytes"}
                            or not isinstance(ref["sha256"], str)
                            or not SHA256_PATTERN.fullmatch(ref["sha256"])
                            or not _int(ref["bytes"], 0)):
        return "payload_ref: {sha256, bytes}"
    return _check_origin(record.get("origin"))


def _check_meta(record: Record) -> str | None:
    if record.get("item_type") != "journal":
        return "item_type: journal-meta records are on the journal"
    payload, action = record.get("payload"), str(record["action"])
    if not isinstance(payload, dict):
        return "payload: an object"
    for key, kind in _META_REQUIRED[action].items():
        value = payload.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            return f"{action} payload needs {key!r}"
    if action == "journal_note" and payload["kind"] not in NOTE_KINDS:
        return f"unknown journal_note kind {payload['kind']!r}"
    return None


def _extra(record: Record, allowed: frozenset[str]) -> str | None:
    extra = set(record) - allowed
    return f"{sorted(extra)[0]}: not allowed in a {record.get('action')} record" if extra else None


def check_record(record: object) -> Record:
    """Validate a record against its action class; raise RecordInvalid with the reason."""
    if not isinstance(record, dict):
        raise RecordInvalid("a record is a JSON object")
    reason = _check_envelope(record) or _check_class(record)
    if reason:
        raise RecordInvalid(f"record seq={record.get('seq')!r}: {reason}")
    return record


def record_reason(record: object) -> str | None:
    """check_record as a value: the reason, or None when the record is valid."""
    if not isinstance(record, dict):
        return "not an object"
    return _check_envelope(record) or _check_class(record)


# -- encoding ---------------------------------------------------------------------------
def encode_record(record: Record) -> bytes:
    """Validate, then encode one record as one line (without the newline)."""
    check_record(record)
    return encode_built(record)


def encode_built(record: Record) -> bytes:
    """Encode a record the store built from validated parts (its invariants were checked
    where they were made), enforcing the size limits."""
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


def canonical(record: Record) -> Record:
    """The same record with its keys in the writer's order: envelope first, payload last."""
    out = {key: record[key] for key in CANONICAL_ORDER if key in record}
    for key, value in record.items():
        if key not in out:
            out[key] = value
    return out


CANONICAL_ORDER = ("v", "seq", "ts", "writer", "actor", "action", "item_type", "item_id",
                   "entity_rev", "txn", "request", "origin", "summary", "payload_ref",
                   "payload")


def payload_bytes(payload: dict[str, Any]) -> bytes:
    return _dumps(payload, None, option=orjson.OPT_SORT_KEYS)


def _dumps(value: dict[str, Any], record: dict[str, Any] | None, option: int = 0) -> bytes:
    """orjson.dumps; text it cannot encode (a lone surrogate) is an InvalidArgument."""
    try:
        return orjson.dumps(value, option=option)
    except orjson.JSONEncodeError as exc:
        what = f"{record.get('item_type')} {record.get('item_id')}" if record else "payload"
        raise InvalidArgument(f"{what} holds text that is not valid unicode: {exc}") from exc


# -- decoding ---------------------------------------------------------------------------
def decode_line(line: bytes) -> Record:
    """Parse and validate one line; raise RecordInvalid for anything that is not a record."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise RecordInvalid(f"not JSON: {exc}") from exc
    return check_record(obj)


def parse_line(line: bytes) -> Record | None:
    """decode_line as a value: the record, or None for a line that is not one."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if type(obj) is not dict or _check_envelope(obj) or _check_class(obj):
        return None
    return obj


def decode_envelope(line: bytes) -> Record | None:
    """The envelope of a line written in canonical order, without parsing its payload (the
    record comes back without ``payload``/``payload_ref``); None when the line does not
    have that shape (the caller then parses it whole). Only for lines already known to be
    valid records: it does not look at the payload."""
    for marker in PAYLOAD_MARKERS:
        at = line.find(marker)
        if at > 0:
            break
    else:
        return None
    try:
        head = orjson.loads(line[:at] + b"}")
    except orjson.JSONDecodeError:
        return None
    if type(head) is not dict or "txn" not in head or "item_type" not in head:
        return None
    if head["item_type"] == "journal":
        return None  # journal notes are small, and readers act on their payloads
    if "entity_rev" not in head and head.get("action") not in OBSERVABILITY_ACTIONS:
        return None
    return head if _check_envelope(head) is None else None
