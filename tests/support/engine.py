"""Helpers of the engine tests (tests/journal_core/): an injected clock,
hand-written records, whole-store byte images and the records of a journal in file order.

A plain module beside the tests (pytest puts this folder on sys.path), imported by name.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from journal_core import RecordInvalid, Store
from journal_core.record import decode_line, encode_record
from support.reliability import REPO, child_env

Record = dict[str, Any]

START = datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)
TS = "2031-05-06T07:08:09.000000Z"
# Two writers that are not this process. WRITER_B sorts after WRITER_A, so a reader that
# sorted by (seq, writer) instead of following file order would apply them the other way.
WRITER_A = "w_1001-aaaaaaaaaaaa"
WRITER_B = "w_2002-bbbbbbbbbbbb"


class Clock:
    """An injected ``now`` for Store(now=...): moves only when a test says so."""

    def __init__(self, start: datetime = START) -> None:
        self.moment = start

    def __call__(self) -> datetime:
        return self.moment

    def advance(self, seconds: float) -> None:
        self.moment += timedelta(seconds=seconds)


def script_env() -> dict[str, str]:
    """The environment of a child that runs one of these test files as a script: this
    checkout and both helper folders importable."""
    env = child_env()
    folders = [str(REPO / "tests"), str(REPO / "tests" / "journal_core")]  # support, tests
    env["PYTHONPATH"] = os.pathsep.join([env["PYTHONPATH"], *folders])
    return env


# -- hand-written records -------------------------------------------------------------------
def memory_payload(item_id: str, title: str, created_by: str = "ann") -> dict[str, Any]:
    return {
        "schema_version": 1,
        "id": item_id,
        "created_at": TS,
        "created_by": created_by,
        "kind": "note",
        "title": title,
        "body": "",
        "tags": [],
        "status": "active",
        "supersedes": None,
        "superseded_by": None,
        "reason": None,
    }


def memory_record(
    seq: int,
    writer: str,
    item_id: str,
    rev: int,
    title: str,
    *,
    txn: tuple[int, int] | None = None,
    actor: str = "ann",
) -> Record:
    """An entity-state record of a memory item, as a writer would build it."""
    first, count = txn or (seq, 1)
    return {
        "v": 1,
        "seq": seq,
        "ts": TS,
        "writer": writer,
        "actor": actor,
        "action": "create" if rev == 1 else "update",
        "item_type": "memory",
        "item_id": item_id,
        "entity_rev": rev,
        "txn": [first, count],
        "payload": memory_payload(item_id, title, actor),
    }


def line_of(record: Record) -> bytes:
    """The record's line (validated by the codec, without its newline)."""
    return encode_record(record)


def framed(*lines: bytes) -> bytes:
    """Lines as a writer appends them: ``\\n`` + line + ``\\n`` each."""
    return b"".join(b"\n" + line + b"\n" for line in lines)


def active_segment(root: Path) -> Path:
    events = root / "events"
    return events / sorted(name for name in os.listdir(events) if name.startswith("seg-"))[-1]


def append_bytes(root: Path, data: bytes) -> None:
    with open(active_segment(root), "ab") as handle:
        handle.write(data)


# -- reading what is on disk -------------------------------------------------------------------
def journal_records(root: Path) -> list[Record]:
    """Every valid, terminated line of every segment, in file order (bad lines and a
    final line without its newline left out)."""
    records = []
    events = root / "events"
    for name in sorted(n for n in os.listdir(events) if n.startswith("seg-")):
        *terminated, _unterminated = (events / name).read_bytes().split(b"\n")
        for raw in terminated:
            if not raw.strip():
                continue
            try:
                records.append(decode_line(raw))
            except RecordInvalid:
                continue
    return records


def store_image(root: Path) -> dict[str, bytes]:
    """Every file under the store root and its bytes, except the lock files: taking a lock
    rewrites its holder note (who waits names the holder), which is not store data."""
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.name not in ("lock", "projections.lock")
    }


def projection(root: Path, family: str, item_id: str) -> dict[str, Any] | None:
    path = root / "state" / family / f"{item_id}.json"
    return orjson.loads(path.read_bytes()) if path.exists() else None


def entity_image(store: Store) -> dict[tuple[str, str], tuple[int, dict[str, Any] | None]]:
    """The journal's view of every entity (tombstones included): (rev, payload)."""
    return {
        (family, item_id): (entity.rev, entity.payload)
        for family, entities in store.state.families.items()
        for item_id, entity in entities.items()
    }
