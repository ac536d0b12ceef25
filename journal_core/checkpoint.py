"""Checkpoints (docs/design.md, "Checkpoints"): the post-image of every entity at a seq.

A checkpoint holds every entity at ``head_seq`` (tombstones too: their revs live on; an
oversized payload as its ref), the origins imported from, the recent request ids (so a
retry is recognized after a cold open) and the journal position right after it (a hint).
It counts only once a ``checkpoint_ref`` record with its sha256 is in the journal; a file
is verified when *any* ref in the journal names its sha256 (a rewrite -- redaction -- appends
the new ref before it replaces the file, so a crash between the two leaves a file that
still verifies).

``CheckpointStore`` is where checkpoints live (local: ``events/checkpoints/ckpt-<head>.json``;
another backend: a table). This module is the one place that builds, loads and verifies one.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from . import clock, limits
from .blob import BlobStore
from .errors import BlobError, InvalidArgument, StoreCorrupt
from .fileio import FileIO
from .migrations import upgrade
from .replay import EntityState, RequestEntry, State, is_redacted
from .vocabulary import FAMILIES

CHECKPOINT_PATTERN = re.compile(rf"^ckpt-(\d{{{limits.segment_name_digits}}})\.json$")
CHECKPOINT_FORMAT = 1
DUMP_OPTIONS = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS


class CheckpointInvalid(StoreCorrupt):
    """A checkpoint that does not parse, validate, match its ref, or close over its blobs."""


def checkpoint_name(head_seq: int) -> str:
    return f"ckpt-{head_seq:0{limits.segment_name_digits}d}.json"


def parse_checkpoint_name(name: str) -> int | None:
    match = CHECKPOINT_PATTERN.fullmatch(name)
    return int(match.group(1)) if match else None


class CheckpointStore(Protocol):
    def heads(self) -> list[int]: ...
    def read(self, head: int) -> bytes | None: ...
    def write(self, head: int, data: bytes) -> None: ...
    def archive(self, head: int) -> bool: ...
    def describe(self, head: int) -> str: ...


class LocalCheckpoints:
    """``events/checkpoints/`` (and, when the store tracks checkpoints in git, a copy of each
    in the tracked folder)."""

    def __init__(self, folder: str, fileio: FileIO, archive: str,
                 mirror: str | None = None) -> None:
        self.folder = folder
        self.fileio = fileio
        self.archive_folder = archive
        self.mirror = mirror

    def heads(self) -> list[int]:
        found = (parse_checkpoint_name(n) for n in self.fileio.listdir(self.folder))
        return sorted(head for head in found if head is not None)

    def path(self, head: int) -> str:
        return os.path.join(self.folder, checkpoint_name(head))

    def read(self, head: int) -> bytes | None:
        return self.fileio.read_file(self.path(head))

    def write(self, head: int, data: bytes) -> None:
        self.fileio.mkdir(self.folder)
        self.fileio.write_atomic(self.path(head), data, durable=True)
        if self.mirror is not None:
            self.fileio.mkdir(self.mirror)
            self.fileio.write_atomic(os.path.join(self.mirror, checkpoint_name(head)), data,
                                     durable=False)

    def archive(self, head: int) -> bool:
        if self.fileio.size(self.path(head)) < 0:
            return False
        self.fileio.mkdir(self.archive_folder)
        archived = os.path.join(self.archive_folder, checkpoint_name(head))
        self.fileio.rename(self.path(head), archived)
        self.fileio.fsync_dir(self.archive_folder)
        self.fileio.fsync_dir(self.folder)
        if self.mirror is not None:
            self.fileio.unlink(os.path.join(self.mirror, checkpoint_name(head)))
        return True

    def describe(self, head: int) -> str:
        return checkpoint_name(head)


@dataclass
class CheckpointFile:
    name: str
    head_seq: int
    data: bytes
    sha256: str
    entities: int
    blobs: list[str]

    def ref_payload(self) -> dict[str, Any]:
        return {
            "file": self.name, "sha256": self.sha256, "head_seq": self.head_seq,
            "entities": self.entities, "bytes": len(self.data), "blobs": self.blobs,
        }


# -- building -----------------------------------------------------------------------------
def build_checkpoint(state: State, store_id: str, hint: dict[str, Any] | None) -> CheckpointFile:
    entities: dict[str, dict[str, Any]] = {}
    blobs: set[str] = set()
    live = 0
    for family in FAMILIES:
        rows: dict[str, Any] = {}
        for item_id, entity in sorted(state.families[family].items()):
            rows[item_id] = _row(entity)
            if entity.payload_ref is not None:
                blobs.add(str(entity.payload_ref["sha256"]))
            live += 0 if entity.deleted else 1
        entities[family] = rows
    doc: dict[str, Any] = {
        "format": CHECKPOINT_FORMAT, "store_id": store_id, "head_seq": state.head_seq,
        "created": clock.to_rfc3339(clock.utc_now()), "entities": entities,
        "imported": {
            store: {writer: seq_ranges(seqs) for writer, seqs in sorted(writers.items())}
            for store, writers in sorted(state.imported.items())
        },
        "requests": [[actor, rid, e.first_seq, e.count, e.digest, e.result, e.ts]
                     for (actor, rid), e in state.requests.items()],
    }
    if hint is not None:
        doc["journal_position"] = hint
    data = orjson.dumps(doc, option=DUMP_OPTIONS) + b"\n"
    return CheckpointFile(
        checkpoint_name(state.head_seq), state.head_seq, data,
        hashlib.sha256(data).hexdigest(), live, sorted(blobs),
    )


def seq_ranges(seqs: set[int]) -> list[list[int]]:
    """{1,2,3,7} -> [[1,3],[7,7]]: imported origin seqs, compactly."""
    ranges: list[list[int]] = []
    for seq in sorted(seqs):
        if ranges and seq == ranges[-1][1] + 1:
            ranges[-1][1] = seq
        else:
            ranges.append([seq, seq])
    return ranges


def expand_ranges(ranges: list[list[int]]) -> set[int]:
    return {seq for first, last in ranges for seq in range(int(first), int(last) + 1)}


def _row(entity: EntityState) -> dict[str, Any]:
    row: dict[str, Any] = {
        "rev": entity.rev, "seq": entity.seq, "writer": entity.writer, "actor": entity.actor,
        "action": entity.action, "ts": entity.ts,
    }
    if entity.payload_ref is not None:
        row["payload_ref"] = entity.payload_ref
    elif entity.payload is not None:
        row["payload"] = entity.payload
    if entity.origin is not None:
        row["origin"] = entity.origin
    if entity.rev_origins is not None:
        row["rev_origins"] = {str(rev): list(o) for rev, o in sorted(entity.rev_origins.items())}
    return row


# -- loading ------------------------------------------------------------------------------
PayloadFallback = Callable[[str, str, dict[str, Any]], dict[str, Any] | None]


@dataclass
class Loaded:
    head_seq: int
    hint: dict[str, Any] | None
    missing_blobs: list[str]  # entities whose blob is gone and had no usable fallback


def load_checkpoint(data: bytes, store_id: str, state: State,
                    fallback: PayloadFallback | None = None) -> Loaded:
    """Fill ``state`` from a checkpoint. Raises CheckpointInvalid. A payload whose blob is
    missing comes from ``fallback`` (the projection, when its sha256 matches the ref), else
    the entity keeps only its ref (served marked "content missing")."""
    missing: list[str] = []
    try:
        doc = orjson.loads(data)
        if doc.get("format") != CHECKPOINT_FORMAT or doc.get("store_id") != store_id:
            raise CheckpointInvalid("checkpoint of another store or format")
        head_seq = int(doc["head_seq"])
        for family in FAMILIES:
            for item_id, row in doc["entities"].get(family, {}).items():
                entity = _entity(family, item_id, row)
                if entity.payload is None and entity.payload_ref is not None:
                    entity.payload = _resolved(state, family, item_id, entity.payload_ref,
                                               fallback)
                    if entity.payload is None:
                        missing.append(f"{family}/{item_id}")
                state.families[family][item_id] = entity
        for store, writers in doc.get("imported", {}).items():
            for writer, ranges in writers.items():
                state.imported.setdefault(store, {})[writer] = expand_ranges(ranges)
        state.requests = OrderedDict(
            ((str(a), str(r)), RequestEntry(int(f), int(c), str(d), res, str(ts)))
            for a, r, f, c, d, res, ts in doc.get("requests", [])
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError,
            InvalidArgument) as exc:
        raise CheckpointInvalid(f"checkpoint does not load: {exc}") from exc
    state.head_seq = head_seq
    state.floor_seq = head_seq
    state.rebuild_claim_index()
    hint = doc.get("journal_position")
    return Loaded(head_seq, hint if isinstance(hint, dict) else None, missing)


def _resolved(state: State, family: str, item_id: str, ref: dict[str, Any],
              fallback: PayloadFallback | None) -> dict[str, Any] | None:
    """An oversized payload read from its blob, like replay does; else the fallback."""
    if fallback is not None and state.fallback is None:
        state.fallback = fallback
    payload = state.resolve(ref, family, item_id)
    if payload is None or is_redacted(payload):
        return payload
    return upgrade(family, payload)


def _entity(family: str, item_id: str, row: dict[str, Any]) -> EntityState:
    payload = row.get("payload")
    if payload is not None and not is_redacted(payload):
        payload = upgrade(family, payload)
    rev_origins = row.get("rev_origins")
    return EntityState(
        family, item_id, int(row["rev"]), int(row["seq"]), str(row["writer"]),
        str(row["actor"]), str(row["action"]), str(row["ts"]), payload, row.get("payload_ref"),
        row.get("origin"),
        None if rev_origins is None
        else {int(rev): tuple(origins) for rev, origins in rev_origins.items()},
    )


def read_doc(data: bytes) -> dict[str, Any]:
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise CheckpointInvalid(f"checkpoint does not parse: {exc}") from exc
    if not isinstance(doc, dict):
        raise CheckpointInvalid("checkpoint is not an object")
    return doc


def dump_doc(doc: dict[str, Any]) -> bytes:
    return orjson.dumps(doc, option=DUMP_OPTIONS) + b"\n"


def verify_checkpoint(checkpoints: CheckpointStore, head_seq: int, store_id: str,
                      refs: dict[str, set[str]], blobs: BlobStore) -> str | None:
    """None when the checkpoint is verified, else the reason it is not."""
    name = checkpoint_name(head_seq)
    data = checkpoints.read(head_seq)
    if data is None:
        return "missing"
    if name not in refs:
        return "no checkpoint_ref in the journal (orphan manifest)"
    if hashlib.sha256(data).hexdigest() not in refs[name]:
        return "sha256 does not match its checkpoint_ref"
    scratch = State()
    try:
        load_checkpoint(data, store_id, scratch)
    except CheckpointInvalid as exc:
        return str(exc)
    for family in FAMILIES:
        for entity in scratch.families[family].values():
            if entity.payload_ref is not None:
                try:
                    blobs.get(entity.payload_ref)
                except BlobError as exc:
                    return f"blob closure broken: {exc}"
    return None
