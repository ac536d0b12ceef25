"""A second, trivial backend, in memory: the proof that the journal interface is a seam.

``SharedLog`` plays the database: several ``MemoryJournal`` handles on one log are several
processes on one store. A txn is appended whole (there is no torn tail in memory), under a
lock with a bounded wait. ``MemoryBackend`` adds dict-backed blobs, checkpoints and cursors,
so a whole ``Store`` runs on it (``Store(backend=MemoryBackend(log))``).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson

from journal_core import JournalCounters, LockTimeout, StoreCorrupt
from journal_core.errors import BlobError
from journal_core.journal import JournalStats, Record, TxnGroup
from journal_core.record import check_record


@dataclass
class SharedLog:
    records: list[Record] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    holder: dict[str, Any] | None = None
    archived_through: int = 0
    blobs: dict[str, bytes] = field(default_factory=dict)
    checkpoints: dict[int, bytes] = field(default_factory=dict)
    cursors: dict[str, int] = field(default_factory=dict)
    info: dict[str, Any] | None = None
    partial: list[Record] = field(default_factory=list)  # a txn a crashed writer left short

    def groups(self, after_seq: int) -> list[TxnGroup]:
        """Complete groups holding seqs above ``after_seq``, in order."""
        out: list[TxnGroup] = []
        index = 0
        while index < len(self.records):
            first = self.records[index]
            count = int(first["txn"][1])
            group = self.records[index: index + count]
            index += count
            if group[-1]["seq"] > max(after_seq, self.archived_through):
                out.append(TxnGroup([r for r in group if r["seq"] > after_seq]))
        return out


class MemoryFollower:
    def __init__(self, log: SharedLog, after_seq: int,
                 counters: JournalCounters | None = None) -> None:
        self.log = log
        self.position = after_seq
        self.counters = counters or JournalCounters()
        self._caught_up = False

    @property
    def head_seq(self) -> int:
        return self.position

    def poll(self, max_records: int | None = None) -> list[TxnGroup]:
        groups = self.log.groups(self.position)
        if max_records is not None:
            taken, total = [], 0
            for group in groups:
                if total >= max_records:
                    break
                taken.append(group)
                total += len(group)
            groups = taken
        if groups:
            self.position = groups[-1].last_seq
        self._caught_up = not self.log.groups(self.position)
        return groups

    def caught_up(self) -> bool:
        return self._caught_up

    def checkpoint_hint(self) -> dict[str, Any]:
        return {"backend": "memory", "after": self.position}


class MemoryTransaction:
    def __init__(self, log: SharedLog) -> None:
        self.log = log
        self.next_seq = 0
        self.checkpoint_due = False
        self.follower: MemoryFollower | None = None

    def catch_up(self, follower: MemoryFollower) -> list[TxnGroup]:
        self.follower = follower
        groups = follower.poll()
        self.next_seq = (self.log.records[-1]["seq"] if self.log.records else 0) + 1
        return groups

    def start(self, first_seq: int, records: list[Record]) -> bool:
        if self.log.records:
            return False
        self.log.records.extend(orjson.loads(orjson.dumps(r)) for r in records)
        return True

    def cut_for_checkpoint(self) -> list[TxnGroup]:
        self.checkpoint_due = False
        return []

    def append(self, groups: list[list[Record]]) -> None:
        flat = [r for g in groups for r in g]
        if not flat:
            return
        if flat[0]["seq"] != self.next_seq:
            raise StoreCorrupt(f"a batch must start at seq {self.next_seq}")
        for record in flat:
            check_record({k: v for k, v in record.items() if not k.startswith("_")})
        self.log.records.extend(orjson.loads(orjson.dumps(r)) for r in flat)
        self.next_seq = flat[-1]["seq"] + 1
        assert self.follower is not None
        self.follower.position = flat[-1]["seq"]


class MemoryJournal:
    read_only = False

    def __init__(self, log: SharedLog) -> None:
        self.log = log

    def follower(self, after_seq: int = 0, hint: dict[str, Any] | None = None, *,
                 counters: JournalCounters | None = None) -> MemoryFollower:
        return MemoryFollower(self.log, after_seq, counters)

    @contextmanager
    def transaction(self, actor: str, wait_s: float) -> Iterator[MemoryTransaction]:
        if not self.log.lock.acquire(timeout=max(wait_s, 0)):
            raise LockTimeout(wait_s, self.log.holder)
        self.log.holder = {"actor": actor, "since": time.time()}
        try:
            yield MemoryTransaction(self.log)
        finally:
            self.log.holder = None
            self.log.lock.release()

    def scan(self, after_seq: int = 0, *, envelope_only: bool = False,
             counters: JournalCounters | None = None) -> Iterator[TxnGroup]:
        yield from self.log.groups(after_seq)

    def head_seq(self) -> int:
        return int(self.log.records[-1]["seq"]) if self.log.records else 0

    def is_empty(self) -> bool:
        return not self.log.records

    def oldest_seq(self) -> int:
        kept = [r["seq"] for r in self.log.records if r["seq"] > self.log.archived_through]
        return int(kept[0]) if kept else self.log.archived_through + 1

    def stats(self) -> JournalStats:
        return JournalStats("memory", self.head_seq(), self.oldest_seq(), 1,
                            len(orjson.dumps(self.log.records)), "memory")

    def lock_holder(self) -> dict[str, Any] | None:
        return self.log.holder

    def redact(self, seqs: set[int], rewrite: Callable[[Record, int | None], Record],
               actor: str) -> list[int]:
        done = []
        for index, record in enumerate(self.log.records):
            if record["seq"] in seqs:
                self.log.records[index] = rewrite(record, None)
                done.append(int(record["seq"]))
        return done

    def archive_through(self, seq: int, actor: str) -> list[str]:
        self.log.archived_through = max(self.log.archived_through, seq)
        return [f"records through seq {seq}"]

    def records_at(self, seqs: set[int]) -> list[Record]:
        return [{**r, "_segment": "memory"} for r in self.log.records if r["seq"] in seqs]

    def close(self) -> None:
        return None


class MemoryBlobs:
    def __init__(self, log: SharedLog) -> None:
        self.log = log

    def put(self, data: bytes) -> dict[str, Any]:
        sha = hashlib.sha256(data).hexdigest()
        self.log.blobs[sha] = data
        return {"sha256": sha, "bytes": len(data)}

    def get(self, ref: dict[str, Any]) -> bytes:
        data = self.log.blobs.get(str(ref.get("sha256")))
        if data is None:
            raise BlobError(f"blob {ref.get('sha256')} is missing")
        return data

    def get_payload(self, ref: dict[str, Any]) -> dict[str, Any]:
        payload = orjson.loads(self.get(ref))
        if not isinstance(payload, dict):
            raise BlobError("a blob that is not a payload")
        return payload

    def exists(self, ref: dict[str, Any]) -> bool:
        return str(ref.get("sha256")) in self.log.blobs

    @staticmethod
    def matches(ref: dict[str, Any], data: bytes) -> bool:
        return hashlib.sha256(data).hexdigest() == ref.get("sha256")

    def archive(self, sha256: str) -> None:
        self.log.blobs.pop(sha256, None)

    def remove(self, sha256: str) -> None:
        self.log.blobs.pop(sha256, None)

    def all_hashes(self) -> list[str]:
        return sorted(self.log.blobs)


class MemoryCheckpoints:
    def __init__(self, log: SharedLog) -> None:
        self.log = log

    def heads(self) -> list[int]:
        return sorted(self.log.checkpoints)

    def read(self, head: int) -> bytes | None:
        return self.log.checkpoints.get(head)

    def write(self, head: int, data: bytes) -> None:
        self.log.checkpoints[head] = data

    def archive(self, head: int) -> bool:
        return self.log.checkpoints.pop(head, None) is not None

    def describe(self, head: int) -> str:
        return f"checkpoint at seq {head}"


class MemoryCursors:
    def __init__(self, log: SharedLog) -> None:
        self.log = log
        self._lock = threading.Lock()

    def get(self, actor: str) -> int:
        return self.log.cursors.get(actor, 0)

    def advance(self, actor: str, last_seq: int) -> int:
        with self._lock:
            current = self.log.cursors.get(actor, 0)
            if last_seq > current:
                self.log.cursors[actor] = current = last_seq
            return current


class MemoryBackend:
    """A whole store in memory: Store(backend=MemoryBackend(log))."""

    name = "memory"
    where = "memory:"
    read_only = False
    read_only_reason = None
    projections = None
    projector = None

    def __init__(self, log: SharedLog) -> None:
        self.log = log
        self.journal = MemoryJournal(log)
        self.blobs = MemoryBlobs(log)
        self.checkpoints = MemoryCheckpoints(log)
        self.cursors = MemoryCursors(log)

    def store_info(self) -> dict[str, Any] | None:
        return self.log.info

    def prepare(self) -> None:
        return None

    def create(self, info: dict[str, Any]) -> None:
        self.log.info = info

    def close(self) -> None:
        return None
