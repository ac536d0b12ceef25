"""Federation (docs/design.md, "Federation"): export a journal slice, import one, converge
without a server.

A slice is JSON lines: a header (format, origin store id, seq range, counts, sha256 of the
body), then the entity records, each carrying its ``origin`` (the store, seq and writer that
first wrote it -- kept when a record travels on through a third store), then the blobs they
reference. Both directions stream: export spools the body to a temporary file while it
hashes it; import reads the slice three times from a file (verify everything; store the
blobs; apply records in chunks), so memory stays flat whatever the slice's size.

A slice is not signed (anyone can recompute its sha256), so import checks what it would
otherwise trust: every payload validates fully and names the record's own id, and an
imported claim cannot expire later than its record's time plus its ttl. Any violation
refuses the whole slice, with nothing applied.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import orjson

from . import clock, limits
from .errors import InvalidArgument, RecordInvalid
from .migrations import upgrade
from .record import check_record
from .store import Store
from .vocabulary import ENTITY_STATE_ACTIONS, TOMBSTONE_ACTIONS

SLICE_FORMAT = "agentjournal-slice"
SLICE_VERSION = 1
Progress = Callable[[str, int, int], None]
EXPORTED_ACTIONS = ENTITY_STATE_ACTIONS | TOMBSTONE_ACTIONS
STRIPPED_KEYS = ("seq", "txn", "writer", "request")


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
def check_since(since_seq: object) -> int:
    if isinstance(since_seq, bool) or not isinstance(since_seq, int) or since_seq < 0:
        raise InvalidArgument("--since must be a non-negative seq")
    return since_seq


def write_slice(store: Store, out: IO[bytes], since_seq: int = 0,
                progress: Progress | None = None) -> dict[str, Any]:
    """Write every entity record with seq > ``since_seq`` to ``out`` as one slice; returns
    its header. Memory stays flat: the body is spooled while it is hashed."""
    check_since(since_seq)
    store.refresh()
    head = store.head_seq
    if since_seq > head:
        raise InvalidArgument(f"--since {since_seq} is past the head of the journal ({head}): "
                              "there is nothing after it to export")
    digest = hashlib.sha256()
    records = 0
    blobs: list[str] = []
    with tempfile.TemporaryFile(prefix="agentjournal-slice-") as body:
        for record in _entity_records(store, since_seq, head, progress):
            line = orjson.dumps(_with_origin(record, store.store_id)) + b"\n"
            body.write(line)
            digest.update(line)
            records += 1
            ref = record.get("payload_ref")
            if ref and ref["sha256"] not in blobs:
                blobs.append(ref["sha256"])
        for sha in sorted(blobs):
            data = store.blobs.get({"sha256": sha})
            line = orjson.dumps({"blob": sha, "base64": base64.b64encode(data).decode()}) + b"\n"
            body.write(line)
            digest.update(line)
        header = {
            "format": SLICE_FORMAT, "version": SLICE_VERSION, "origin": store.store_id,
            "since_seq": since_seq, "head_seq": head, "records": records,
            "blobs": len(blobs), "body_sha256": digest.hexdigest(),
        }
        out.write(orjson.dumps(header) + b"\n")
        body.seek(0)
        shutil.copyfileobj(body, out, limits.slice_copy_bytes)
    return header


def export_slice(store: Store, since_seq: int = 0) -> bytes:
    """A whole slice in memory (small stores, tests); ``write_slice`` streams."""
    with tempfile.TemporaryFile() as out:
        write_slice(store, out, since_seq)
        out.seek(0)
        return out.read()


def _entity_records(store: Store, since_seq: int, head: int,
                    progress: Progress | None) -> Iterator[dict[str, Any]]:
    done = 0
    for group in store.journal.scan(since_seq):
        for record in group.records:
            if record["seq"] > head:
                return
            if record["action"] in EXPORTED_ACTIONS and record["item_type"] != "journal":
                yield record
        done = group.last_seq
        if progress and done % limits.progress_every_records < len(group):
            progress("export", done - since_seq, head - since_seq)
    if progress:
        progress("export", head - since_seq, head - since_seq)


def _with_origin(record: dict[str, Any], store_id: str) -> dict[str, Any]:
    out = {k: v for k, v in record.items() if k not in STRIPPED_KEYS}
    out["origin"] = record.get("origin") or {
        "store": store_id, "seq": record["seq"], "writer": record["writer"]}
    return out


# -- import -----------------------------------------------------------------------------
@dataclass
class Checked:
    header: dict[str, Any]
    records: int
    blobs: int


def parse_slice(data: bytes) -> Checked:
    """Verify a slice held in memory (tests and small slices)."""
    with tempfile.TemporaryFile() as spool:
        spool.write(data)
        spool.seek(0)
        return check_slice(spool)


def check_slice(slice_file: IO[bytes], progress: Progress | None = None) -> Checked:
    """Verify a slice completely -- header, hash, every record (identity and bounds
    included), every blob -- or refuse it. Reads the file once, keeps nothing."""
    slice_file.seek(0)
    header = _header(slice_file.readline())
    digest = hashlib.sha256()
    records = 0
    referenced: set[str] = set()
    carried: set[str] = set()
    number = 1
    for line in slice_file:
        number += 1
        digest.update(line)
        item = _line(line, number)
        if item is None:
            continue
        if "blob" in item:
            _blob(item, number)
            carried.add(str(item["blob"]))
        else:
            record = _slice_record(item, number)
            records += 1
            if record.get("payload_ref"):
                referenced.add(record["payload_ref"]["sha256"])
        if progress and number % limits.progress_every_records == 0:
            progress("verify slice", records, int(header.get("records") or 0))
    if digest.hexdigest() != header.get("body_sha256"):
        raise SliceRefused("the slice body does not match its sha256: it is truncated or was "
                           "altered; nothing was imported")
    if records != header.get("records") or len(carried) != header.get("blobs"):
        raise SliceRefused("the slice holds a different number of records or blobs than its "
                           "header says; nothing was imported")
    missing = sorted(referenced - carried)
    if missing:
        raise SliceRefused(f"a record references blob {missing[0]} that the slice does not "
                           "carry; nothing was imported")
    return Checked(header, records, len(carried))


def _header(line: bytes) -> dict[str, Any]:
    try:
        header = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise SliceRefused(
            f"not an agentjournal slice: the header does not parse ({exc})") from exc
    if not isinstance(header, dict) or header.get("format") != SLICE_FORMAT:
        raise SliceRefused("not an agentjournal slice: wrong or missing format in the header")
    if header.get("version") != SLICE_VERSION:
        raise SliceRefused(f"slice format version {header.get('version')!r} is not supported "
                           f"(this agentjournal reads version {SLICE_VERSION})")
    return header


def _line(line: bytes, number: int) -> dict[str, Any] | None:
    text = line.strip()
    if not text:
        return None
    try:
        item = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise SliceRefused(f"slice line {number} does not parse: {exc}") from exc
    if not isinstance(item, dict):
        raise SliceRefused(f"slice line {number} is not an object")
    return item


def _blob(item: dict[str, Any], number: int) -> bytes:
    try:
        data = base64.b64decode(str(item["base64"]), validate=True)
    except (KeyError, ValueError) as exc:
        raise SliceRefused(f"slice line {number}: blob is not valid base64") from exc
    if hashlib.sha256(data).hexdigest() != item["blob"]:
        raise SliceRefused(f"slice line {number}: blob does not match its sha256")
    return data


def _slice_record(item: dict[str, Any], number: int) -> dict[str, Any]:
    if not isinstance(item.get("origin"), dict):
        raise SliceRefused(f"slice line {number} is not an exported record")
    origin = item["origin"]
    probe = {**item, "seq": origin.get("seq"), "txn": [origin.get("seq"), 1],
             "writer": origin.get("writer")}
    try:
        check_record(probe)
    except RecordInvalid as exc:
        raise SliceRefused(f"slice line {number}: {exc}") from exc
    if item["action"] not in EXPORTED_ACTIONS:
        raise SliceRefused(f"slice line {number}: only entity records travel in a slice")
    payload = item.get("payload")
    if payload is not None:
        _check_payload(item, payload, number)
    return item


def _check_payload(item: dict[str, Any], payload: dict[str, Any], number: int) -> None:
    """What a slice could lie about: the entity's identity, and a claim's hold."""
    family = str(item["item_type"])
    try:
        upgraded = upgrade(family, payload)
    except InvalidArgument as exc:
        raise SliceRefused(f"slice line {number}: {family} {item['item_id']}: {exc}") from exc
    if upgraded.get("id") != item["item_id"]:
        raise SliceRefused(f"slice line {number}: the payload's id {upgraded.get('id')!r} is "
                           f"not the record's item_id {item['item_id']!r}; nothing was imported")
    if family == "claim":
        _check_claim_hold(item, upgraded, number)


def _check_claim_hold(item: dict[str, Any], claim: dict[str, Any], number: int) -> None:
    try:
        written = clock.parse_rfc3339(str(item["ts"]))
        expires = clock.parse_rfc3339(str(claim["expires_at"]))
    except ValueError as exc:
        raise SliceRefused(f"slice line {number}: claim {item['item_id']}: {exc}") from exc
    latest = clock.plus_seconds(written, int(claim["ttl_s"]) + limits.import_clock_skew_s)
    if expires > latest:
        raise SliceRefused(
            f"slice line {number}: claim {item['item_id']} has expires_at {claim['expires_at']}, "
            f"later than its record's time ({item['ts']}) plus its ttl_s ({claim['ttl_s']}); "
            "nothing was imported")


def _records(slice_file: IO[bytes]) -> Iterator[dict[str, Any]]:
    slice_file.seek(0)
    slice_file.readline()
    for number, line in enumerate(slice_file, start=2):
        item = _line(line, number)
        if item is not None and "blob" not in item:
            yield item


def _blobs(slice_file: IO[bytes]) -> Iterator[tuple[str, bytes]]:
    slice_file.seek(0)
    slice_file.readline()
    for number, line in enumerate(slice_file, start=2):
        item = _line(line, number)
        if item is not None and "blob" in item:
            yield str(item["blob"]), _blob(item, number)


def import_file(store: Store, slice_file: IO[bytes], *,
                chunk_records: int = limits.import_chunk_records,
                progress: Progress | None = None) -> ImportResult:
    """Apply a slice in chunks (one lock hold and one txn each), after verifying all of it.
    Idempotent and resumable: records already here (by origin store, seq and writer) are
    skipped."""
    if chunk_records < 1:
        raise InvalidArgument("chunk size must be at least 1")
    checked = check_slice(slice_file, progress)
    result = ImportResult(origin=str(checked.header["origin"]), records=checked.records)
    for sha, blob in _blobs(slice_file):  # blobs land before any record that needs them
        stored = store.blobs.put(blob)
        if stored["sha256"] != sha:
            raise SliceRefused(f"blob {sha} changed while it was stored")
    chunk: list[dict[str, Any]] = []
    done = 0
    for record in _records(slice_file):
        chunk.append(record)
        if len(chunk) >= chunk_records:
            done += _apply(store, chunk, result)
            chunk = []
            if progress:
                progress("import", done, checked.records)
    if chunk:
        done += _apply(store, chunk, result)
    if progress:
        progress("import", done, checked.records)
    return result


def _apply(store: Store, chunk: list[dict[str, Any]], result: ImportResult) -> int:
    applied, skipped, conflicts = store.import_chunk(chunk)
    result.applied += applied
    result.skipped += skipped
    result.conflicts.extend(conflicts)
    result.chunks += 1
    return len(chunk)


def import_slice(store: Store, data: bytes, *, chunk_records: int = limits.import_chunk_records,
                 progress: Progress | None = None) -> ImportResult:
    """A slice held in memory (tests); ``import_file`` streams from a file."""
    with tempfile.TemporaryFile() as spool:
        spool.write(data)
        return import_file(store, spool, chunk_records=chunk_records, progress=progress)


def spool_stdin(stream: IO[bytes]) -> IO[bytes]:
    """A seekable copy of a stream (import reads a slice more than once)."""
    spool = tempfile.TemporaryFile(prefix="agentjournal-import-")  # noqa: SIM115 (returned)
    shutil.copyfileobj(stream, spool, limits.slice_copy_bytes)
    spool.seek(0)
    return spool


__all__ = ["ImportResult", "SliceRefused", "check_slice", "export_slice", "import_file",
           "import_slice", "parse_slice", "spool_stdin", "write_slice"]

