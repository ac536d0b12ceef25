"""The journal interface: records and seqs, nothing about files (docs/design.md, "The
journal").

A journal is an ordered, durable log of records. Every record has a store-global ``seq``;
the records one mutation wrote form a *txn group* (``txn = [first_seq, count]``), and a
reader only ever sees complete groups. Everything above this interface -- replay, the
write path, cursors, verbs, MCP -- speaks only these types. How records are framed,
where they live (segment files, a database table), how a torn tail is sealed, when a
segment rolls: all of that stays inside a backend.

A backend implements ``Journal``:

- ``transaction(actor, wait_s)``: the one way to write. It takes the store's lock (bounded
  wait) and yields a ``Transaction``: ``catch_up(follower)`` brings the follower to the
  tail -- settling first whatever the writer owes there (torn-tail and incomplete-txn
  notes) -- and ``append`` makes a batch of txn groups durable before it returns.
- ``follower(after_seq, hint)``: an incremental reader that yields the complete groups
  appended since its last ``poll`` (no lock: a read never waits for a writer).
- ``scan(after_seq, envelope_only)``: complete groups holding seqs above ``after_seq``,
  oldest first, lazily; ``envelope_only`` leaves payloads unparsed where it can.
- ``head_seq``, ``oldest_seq``, ``stats``: where the journal is.
- maintenance: ``redact`` (rewrite payloads, keeping seqs), ``archive_through`` (gc).

``tests/journal_core/test_journal_contract.py`` is the contract: one suite, run against
every backend.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from .counters import JournalCounters

Record = dict[str, Any]
FsyncMode = Literal["always", "never"]


@dataclass(slots=True)
class TxnGroup:
    """The records of one txn, complete, in seq order."""

    records: list[Record]

    @property
    def first_seq(self) -> int:
        return int(self.records[0]["seq"])

    @property
    def last_seq(self) -> int:
        return int(self.records[-1]["seq"])

    def __len__(self) -> int:
        return len(self.records)


@dataclass
class JournalStats:
    """What ``status`` and doctor show about a journal. ``parts`` are the backend's units of
    storage (segment files, or database partitions); ``bytes`` their size."""

    backend: str
    head_seq: int
    oldest_seq: int
    parts: int
    bytes: int
    active: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


class Follower(Protocol):
    """Follows the journal: each ``poll`` returns the complete groups appended since the
    last one. One per open store; its ``counters`` are the doctor counters of what it read."""

    counters: JournalCounters

    @property
    def head_seq(self) -> int:
        """The highest seq delivered so far (0 before the first)."""
        ...

    def poll(self, max_records: int | None = None) -> list[TxnGroup]:
        """New complete groups, oldest first; at most about ``max_records`` records (a
        group is never split). Never waits for the lock."""
        ...

    def caught_up(self) -> bool:
        """True when the last poll reached the end of what was committed."""
        ...

    def checkpoint_hint(self) -> dict[str, Any]:
        """An opaque position a checkpoint taken now records, so a later follower can start
        right after it (``Journal.follower(hint=...)``)."""
        ...


class Transaction(Protocol):
    """The lock is held for the life of the transaction; nobody else can append.
    ``catch_up`` comes first; then ``next_seq`` and ``checkpoint_due`` are known."""

    next_seq: int  # the seq the next appended record must carry
    checkpoint_due: bool  # the backend would like a checkpoint before the next append

    def catch_up(self, follower: Follower) -> list[TxnGroup]:
        """Tail validation: settle what the writer owes at the tail (torn-tail and
        incomplete-txn notes, made durable), bring ``follower`` to the end, and return the
        groups it had not delivered yet."""
        ...

    def cut_for_checkpoint(self) -> list[TxnGroup]:
        """Prepare for a checkpoint now (the local backend closes its active segment). The
        groups it appended for that (already durable) are returned: apply them, then take
        the checkpoint at the new head and append its ``checkpoint_ref`` first."""
        ...

    def start(self, first_seq: int, records: list[Record]) -> bool:
        """Begin an empty journal at ``first_seq`` with ``records`` as its first txn (a new
        store's genesis, or a journal restarted from a checkpoint), durably; False when it
        is not empty (another process started it first). Instead of ``catch_up``."""
        ...

    def append(self, groups: list[list[Record]]) -> None:
        """Make these txn groups durable, in order, with one write where the backend can.
        Their seqs must run from ``next_seq`` without a gap. Raises ``NotApplied`` (nothing
        written) or ``OutcomeUnknown`` (written, durability unknown); after a success the
        follower has moved past them without reading them back."""
        ...


class Journal(Protocol):
    """What the store needs from a journal backend."""

    read_only: bool

    def follower(self, after_seq: int = 0, hint: dict[str, Any] | None = None, *,
                 counters: JournalCounters | None = None) -> Follower:
        """A follower that will deliver the groups holding seqs above ``after_seq``;
        ``hint`` (from a checkpoint) lets it start there without a search; what it finds
        wrong on the way (skipped lines, duplicates) is counted in ``counters``."""
        ...

    def transaction(self, actor: str, wait_s: float) -> AbstractContextManager[Transaction]:
        """Take the lock (raises ``LockTimeout`` naming the holder) and yield the
        transaction. Leaving the block releases the lock."""
        ...

    def scan(self, after_seq: int = 0, *, envelope_only: bool = False,
             counters: JournalCounters | None = None) -> Iterator[TxnGroup]:
        """Complete groups holding seqs above ``after_seq``, oldest first, lazily (records
        at or below ``after_seq`` are left out). ``envelope_only``: payloads may be absent
        (``payload`` replaced by nothing), which is all a compact event needs."""
        ...

    def head_seq(self) -> int:
        """The highest committed seq, without the lock (a cheap read)."""
        ...

    def is_empty(self) -> bool:
        """No record was ever kept (a new store, or a clone that carries none)."""
        ...

    def records_at(self, seqs: set[int]) -> list[Record]:
        """The valid records at ``seqs``, archived ones included (redaction looks them up);
        each carries ``_segment``: where the backend keeps it (``stats().active`` names the
        part still appended to)."""
        ...

    def oldest_seq(self) -> int:
        """The lowest seq still kept (older ones were archived by gc)."""
        ...

    def stats(self) -> JournalStats: ...

    def lock_holder(self) -> dict[str, Any] | None:
        """Who holds the lock now, if anyone says so (pid, actor, since)."""
        ...

    def redact(self, seqs: set[int], rewrite: Callable[[Record, int | None], Record],
               actor: str) -> list[int]:
        """Replace the records at ``seqs`` with ``rewrite(record, width)`` (same seq, writer,
        txn), wherever they are kept, crash-safely; returns the seqs rewritten. ``width`` is
        the encoded size the new record must fit in, for a backend that rewrites bytes in
        place (None where size does not matter). Lock held."""
        ...

    def archive_through(self, seq: int, actor: str) -> list[str]:
        """Stop keeping records at or below ``seq`` (gc moves them aside, never deletes);
        returns what it moved. Lock held by the caller's transaction or taken here."""
        ...

    def close(self) -> None: ...
