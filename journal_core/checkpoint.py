"""Checkpoints (SPEC §8): ``checkpoints/ckpt-<head_seq>.json``, self-contained.

A checkpoint holds the post-image of every entity at ``head_seq`` (tombstones too: their revs
live on), oversized payloads as refs. It counts only once a ``checkpoint_ref`` record with
its sha256 is in the journal. Loading one re-parses, validates every payload, and checks
the store id; verifying one also checks its hash against the newest ref and its blobs.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from typing import Any

import orjson

from . import clock, limits
from .blob import BlobStore
from .errors import BlobError, InvalidArgument, StoreCorrupt
from .fileio import FileIO
from .ids import FAMILIES
from .migrations import upgrade
from .replay import EntityState, State, is_redacted

CHECKPOINT_PATTERN = re.compile(rf"^ckpt-(\d{{{limits.segment_name_digits}}})\.json$")
CHECKPOINT_FORMAT = 1


class CheckpointInvalid(StoreCorrupt):
    """A checkpoint that does not parse, validate, match its ref, or close over its blobs."""


def checkpoint_name(head_seq: int) -> str:
    return f"ckpt-{head_seq:0{limits.segment_name_digits}d}.json"


def list_checkpoints(fileio: FileIO, checkpoints_dir: str) -> list[int]:
    """Head seqs of the checkpoint files present, ascending."""
    heads = []
    for name in fileio.listdir(checkpoints_dir):
        match = CHECKPOINT_PATTERN.fullmatch(name)
        if match:
            heads.append(int(match.group(1)))
    return sorted(heads)


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


def build_checkpoint(state: State, store_id: str) -> CheckpointFile:
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
    doc = {
        "format": CHECKPOINT_FORMAT, "store_id": store_id, "head_seq": state.head_seq,
        "created": clock.to_rfc3339(clock.utc_now()), "entities": entities,
        "imported": {
            store: {writer: seq_ranges(seqs) for writer, seqs in sorted(writers.items())}
            for store, writers in sorted(state.imported.items())
        },
    }
    data = orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
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


def load_checkpoint(data: bytes, store_id: str, state: State) -> int:
    """Fill ``state`` from a checkpoint; return its head_seq. Raises CheckpointInvalid."""
    try:
        doc = orjson.loads(data)
        if doc.get("format") != CHECKPOINT_FORMAT or doc.get("store_id") != store_id:
            raise CheckpointInvalid("checkpoint of another store or format")
        head_seq = int(doc["head_seq"])
        for family in FAMILIES:
            for item_id, row in doc["entities"].get(family, {}).items():
                entity = _entity(family, item_id, row)
                if entity.payload is None and entity.payload_ref is not None:
                    entity.payload = _resolved(state, family, entity.payload_ref)
                state.families[family][item_id] = entity
        for store, writers in doc.get("imported", {}).items():
            for writer, ranges in writers.items():
                state.imported.setdefault(store, {})[writer] = expand_ranges(ranges)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError,
            InvalidArgument) as exc:
        raise CheckpointInvalid(f"checkpoint does not load: {exc}") from exc
    state.head_seq = head_seq
    state.floor_seq = head_seq
    state.rebuild_claim_index()
    return head_seq


def _resolved(state: State, family: str, ref: dict[str, Any]) -> dict[str, Any] | None:
    """An oversized payload read from its blob, like replay does (None if unreadable)."""
    payload = state.resolve(ref)
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


def verify_checkpoint(
    checkpoints_dir: str, head_seq: int, fileio: FileIO, store_id: str,
    refs: dict[str, str], blobs: BlobStore,
) -> str | None:
    """None when the checkpoint is verified, else the reason it is not (SPEC §8)."""
    name = checkpoint_name(head_seq)
    data = fileio.read_file(os.path.join(checkpoints_dir, name))
    if data is None:
        return "missing"
    if name not in refs:
        return "no checkpoint_ref in the journal (orphan manifest)"
    if hashlib.sha256(data).hexdigest() != refs[name]:
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
