"""Federation (SPEC §12): export a journal slice, import one, converge without a server.

A slice is JSON lines: a header (format, origin store id, seq range, counts, sha256 of the
body), then the entity records, each carrying its ``origin`` (the store, seq and writer that
first wrote it — kept when a record travels on through a third store), then the blobs they
reference. Import verifies the whole slice before applying anything, then applies it in
chunks, one lock hold and one txn per chunk, deduplicating by origin.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from . import limits
from .errors import InvalidArgument, RecordInvalid
from .reader import scan_groups
from .record import check_record

SLICE_FORMAT = "agentjournal-slice"
SLICE_VERSION = 1
Progress = Callable[[str, int, int], None]


class SliceRefused(InvalidArgument):
    """A slice that is damaged, truncated, foreign-format or otherwise not importable."""


@dataclass
class ImportResult:
    origin: str
    records: int = 0
    applied: int = 0
    skipped: int = 0
    chunks: int = 0
    conflicts: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"origin": self.origin, "records": self.records, "applied": self.applied,
                "skipped": self.skipped, "chunks": self.chunks, "conflicts": self.conflicts}


# -- export -----------------------------------------------------------------------------
def export_slice(store: Any, since_seq: int = 0) -> bytes:
    """Every entity record with seq > ``since_seq``, as one slice."""
    if isinstance(since_seq, bool) or not isinstance(since_seq, int) or since_seq < 0:
        raise InvalidArgument("--since must be a non-negative seq")
    store.refresh()
    head = store.head_seq
    lines: list[bytes] = []
    blobs: dict[str, bytes] = {}
    for record in _entity_records(store, since_seq, head):
        lines.append(orjson.dumps(_with_origin(record, store.store_id)))
        ref = record.get("payload_ref")
        if ref and ref["sha256"] not in blobs:
            blobs[ref["sha256"]] = store.blobs.get(ref)
    for sha, data in sorted(blobs.items()):
        lines.append(orjson.dumps({"blob": sha, "base64": base64.b64encode(data).decode()}))
    body = b"".join(line + b"\n" for line in lines)
    header = {
        "format": SLICE_FORMAT, "version": SLICE_VERSION, "origin": store.store_id,
        "since_seq": since_seq, "head_seq": head, "records": len(lines) - len(blobs),
        "blobs": len(blobs), "body_sha256": hashlib.sha256(body).hexdigest(),
    }
    return orjson.dumps(header) + b"\n" + body


def _entity_records(store: Any, since_seq: int, head: int) -> Iterator[dict[str, Any]]:
    segments = store.journal.segments()
    if not segments:
        return
    for group in scan_groups(store.journal, segments[0], 0):
        for record in group:
            if since_seq < record["seq"] <= head and record["item_type"] != "journal" \
                    and "entity_rev" in record:
                yield record


def _with_origin(record: dict[str, Any], store_id: str) -> dict[str, Any]:
    out = {k: v for k, v in record.items() if k not in ("seq", "txn", "writer")}
    out["origin"] = record.get("origin") or {
        "store": store_id, "seq": record["seq"], "writer": record["writer"]}
    return out


# -- import -----------------------------------------------------------------------------
@dataclass
class Slice:
    header: dict[str, Any]
    records: list[dict[str, Any]]
    blobs: dict[str, bytes]


def parse_slice(data: bytes) -> Slice:
    """Verify a slice completely (header, hash, every record, every blob) or refuse it."""
    header_line, newline, body = data.partition(b"\n")
    try:
        header = orjson.loads(header_line)
    except orjson.JSONDecodeError as exc:
        raise SliceRefused(
            f"not an agentjournal slice: the header does not parse ({exc})") from exc
    if not isinstance(header, dict) or header.get("format") != SLICE_FORMAT:
        raise SliceRefused("not an agentjournal slice: wrong or missing format in the header")
    if header.get("version") != SLICE_VERSION:
        raise SliceRefused(f"slice format version {header.get('version')!r} is not supported "
                           f"(this agentjournal reads version {SLICE_VERSION})")
    if not newline or hashlib.sha256(body).hexdigest() != header.get("body_sha256"):
        raise SliceRefused("the slice body does not match its sha256: it is truncated or "
                           "was altered; nothing was imported")
    records, blobs = _parse_body(body)
    if len(records) != header.get("records") or len(blobs) != header.get("blobs"):
        raise SliceRefused("the slice holds a different number of records or blobs than its "
                           "header says; nothing was imported")
    for record in records:
        ref = record.get("payload_ref")
        if ref and ref["sha256"] not in blobs:
            raise SliceRefused(f"record {record['origin']} references blob {ref['sha256']} "
                               "that the slice does not carry")
    return Slice(header, records, blobs)


def _parse_body(body: bytes) -> tuple[list[dict[str, Any]], dict[str, bytes]]:
    records: list[dict[str, Any]] = []
    blobs: dict[str, bytes] = {}
    for number, line in enumerate(body.split(b"\n"), start=2):
        if not line:
            continue
        try:
            item = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise SliceRefused(f"slice line {number} does not parse: {exc}") from exc
        if isinstance(item, dict) and "blob" in item:
            blobs[str(item["blob"])] = _blob(item, number)
        else:
            records.append(_slice_record(item, number))
    return records, blobs


def _blob(item: dict[str, Any], number: int) -> bytes:
    try:
        data = base64.b64decode(str(item["base64"]), validate=True)
    except (KeyError, ValueError) as exc:
        raise SliceRefused(f"slice line {number}: blob is not valid base64") from exc
    if hashlib.sha256(data).hexdigest() != item["blob"]:
        raise SliceRefused(f"slice line {number}: blob does not match its sha256")
    return data


def _slice_record(item: Any, number: int) -> dict[str, Any]:
    if not isinstance(item, dict) or not isinstance(item.get("origin"), dict):
        raise SliceRefused(f"slice line {number} is not an exported record")
    probe = {**item, "seq": item["origin"].get("seq"), "txn": [item["origin"].get("seq"), 1],
             "writer": item["origin"].get("writer")}
    try:
        check_record(probe)
    except RecordInvalid as exc:
        raise SliceRefused(f"slice line {number}: {exc}") from exc
    if "entity_rev" not in item:
        raise SliceRefused(f"slice line {number}: only entity records travel in a slice")
    return item


def import_slice(store: Any, data: bytes, *, chunk_records: int = limits.import_chunk_records,
                 progress: Progress | None = None) -> ImportResult:
    """Apply a verified slice in chunks (one lock hold and one txn each). Idempotent and
    resumable: records already here (by origin store, seq and writer) are skipped."""
    if chunk_records < 1:
        raise InvalidArgument("chunk size must be at least 1")
    parsed = parse_slice(data)
    result = ImportResult(origin=str(parsed.header["origin"]), records=len(parsed.records))
    for sha, blob in parsed.blobs.items():  # blobs land before any record that needs them
        stored = store.blobs.put(blob)
        if stored["sha256"] != sha:
            raise SliceRefused(f"blob {sha} changed while it was stored")
    total = len(parsed.records)
    for start in range(0, total, chunk_records):
        chunk = parsed.records[start:start + chunk_records]
        applied, skipped, conflicts = store.import_chunk(chunk)
        result.applied += applied
        result.skipped += skipped
        result.conflicts.extend(conflicts)
        result.chunks += 1
        if progress:
            progress("import", min(start + chunk_records, total), total)
    return result
