"""The local journal backend: segment files in ``events/``, one flock (docs/design.md,
"The local backend").

Everything about files lives here and only here: segment names, framing (each record is
written as ``\\n`` + line + ``\\n``, one ``os.write`` per batch to an ``O_APPEND`` fd, then
``fsync``), the ``#`` seal of a torn tail, rolls, byte positions, archive/ and the
byte-preserving rewrite of redaction.

A roll (``cut_for_checkpoint``) appends a ``journal_note segment_roll`` naming the next
segment as the last record of the active one, then creates the next segment (named by the
first seq it will hold) and fsyncs the folder. Followers that read the note move on to that
segment, so nobody has to list the folder to find the active segment; a writer that finds
the note but not the segment (a crash mid-roll) creates it.

Every fd the journal holds is checked for identity before it is trusted under the lock:
the segment at its path must be the file we hold open. If it is not (``git clean``, a
restore from backup), the transaction refuses to append (``JournalReplaced``), so an
acknowledged write never lands in an unlinked file.
"""

from __future__ import annotations

import bisect
import os
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from . import clock, limits
from .counters import JournalCounters
from .errors import (
    JournalReplaced,
    NotApplied,
    OutcomeUnknown,
    StoreCorrupt,
    StoreIOError,
)
from .fileio import FileIO
from .ids import writer_id
from .journal import Follower, FsyncMode, JournalStats, Record, TxnGroup
from .lock import StoreLock
from .record import encode_built, parse_line
from .scanner import Fragment, PendingRun, Scanner, split_lines
from .segment import list_segments, parse_segment_name, segment_for_seq, segment_name

STORE_ACTOR = "agentjournal"
SEAL = b"#"
Position = tuple[int, int]  # (segment, byte offset)


def require(condition: bool, message: str) -> None:
    """An invariant check that survives ``python -O``."""
    if not condition:
        raise StoreCorrupt(f"invariant violated: {message}")


def journal_record(seq: int, txn: tuple[int, int], action: str, payload: dict[str, Any],
                   summary: str) -> Record:
    """A journal-meta record written by the journal itself (its notes)."""
    return {
        "v": limits.ENVELOPE_VERSION, "seq": seq, "ts": clock.to_rfc3339(clock.utc_now()),
        "writer": writer_id(), "actor": STORE_ACTOR, "action": action, "item_type": "journal",
        "txn": [txn[0], txn[1]], "summary": summary, "payload": payload,
    }


def frame(lines: list[bytes]) -> bytes:
    return b"".join(b"\n" + line + b"\n" for line in lines)


class LocalJournal:
    """Segment files on the local file system, guarded by one flock."""

    def __init__(self, events_dir: str, lock_path: str, fileio: FileIO,
                 fsync: FsyncMode = "always",
                 segment_bytes_max: int = limits.segment_bytes_max_default) -> None:
        self.events_dir = events_dir
        self.archive_dir = os.path.join(events_dir, "archive")
        self.fileio = fileio
        self.fsync_mode = fsync
        self.segment_bytes_max = segment_bytes_max
        self.lock = StoreLock(lock_path, fileio, create=True)
        self.read_only = self.lock.read_only
        self._index: list[tuple[int, int, int]] = []  # (first seq of a group, segment, offset)
        self._paths: dict[int, str] = {}
        self._append: _Open | None = None  # the O_APPEND fd of the active segment
        self._followers: weakref.WeakSet[LocalFollower] = weakref.WeakSet()  # closed with us
        self._bad: dict[int, list[tuple[int, int]]] = {}  # segment -> [(start, end)] seen bad

    def close(self) -> None:
        """Close every fd this journal opened: the lock's, the append fd, its followers'."""
        self.close_append()
        for follower in list(self._followers):
            follower.close()
        self.lock.close()

    def close_append(self) -> None:
        if self._append is not None:
            self.fileio.close(self._append.fd)
            self._append = None

    # -- layout -------------------------------------------------------------------------
    def path(self, segment: int) -> str:
        found = self._paths.get(segment)
        if found is None:  # a few names, asked for several times by every transaction
            found = self._paths[segment] = os.path.join(self.events_dir, segment_name(segment))
        return found

    def archive_path(self, segment: int) -> str:
        return os.path.join(self.archive_dir, segment_name(segment))

    def segments(self) -> list[int]:
        return list_segments(self.fileio.listdir(self.events_dir))

    def archived_segments(self) -> list[int]:
        return list_segments(self.fileio.listdir(self.archive_dir))

    def create_segment(self, first_seq: int) -> None:
        self.fileio.create_exclusive(self.path(first_seq))
        self.fileio.fsync_dir(self.events_dir)

    # -- reading ------------------------------------------------------------------------
    def follower(self, after_seq: int = 0, hint: dict[str, Any] | None = None, *,
                 counters: JournalCounters | None = None) -> LocalFollower:
        segments = self.segments()
        start = _hinted_start(hint, segments, after_seq)
        if start is None:
            found = segment_for_seq(segments, after_seq + 1) if segments else None
            start = (found if found is not None else (segments[0] if segments else 1), 0)
        follower = LocalFollower(self, start, after_seq, shared_index=True, counters=counters)
        self._followers.add(follower)
        return follower

    def is_empty(self) -> bool:
        return not self.segments() and not self.archived_segments()

    @contextmanager
    def lock_held(self, actor: str, wait_s: float = limits.lock_wait_s_default,
                  ) -> Iterator[None]:
        self.lock.acquire(actor, wait_s)
        try:
            yield
        finally:
            self.lock.release()

    def scan(self, after_seq: int = 0, *, envelope_only: bool = False,
             counters: JournalCounters | None = None) -> Iterator[TxnGroup]:
        """Complete groups holding seqs above ``after_seq``, lazily, chunk by chunk."""
        start = self._position_for(after_seq + 1)
        if start is None:
            return
        follower = LocalFollower(self, start, after_seq, shared_index=False,
                                 envelope_only=envelope_only, counters=counters)
        # Small first reads that double while the consumer keeps pulling: a reader that
        # wants one page decodes about that page, not a whole chunk of the segment.
        follower.chunk_bytes = limits.scan_first_chunk_bytes
        budget = limits.scan_first_records
        try:
            while True:
                groups = follower.poll(budget)
                follower.chunk_bytes = min(follower.chunk_bytes * 2,
                                           limits.segment_read_chunk_bytes)
                budget = min(budget * 2, limits.scan_chunk_records)
                for group in groups:
                    if group.last_seq > after_seq:
                        if group.first_seq <= after_seq:
                            group = TxnGroup([r for r in group.records if r["seq"] > after_seq])
                        yield group
                if not groups and follower.caught_up():
                    return
        finally:
            follower.close()

    def _position_for(self, seq: int) -> Position | None:
        """Where to start reading for ``seq``: the nearest index entry at or before it (a
        group start), else the start of the segment that holds it."""
        index = self._index
        at = bisect.bisect_right(index, (seq, 1 << 62, 1 << 62)) - 1
        segments = self.segments()
        if not segments:
            return None
        if at >= 0 and index[at][1] in segments:
            return index[at][1], index[at][2]
        found = segment_for_seq(segments, seq)
        return (found if found is not None else segments[0]), 0

    def remember(self, seq: int, segment: int, offset: int) -> None:
        """An index entry: the group starting at ``seq`` lies at (segment, offset)."""
        index = self._index
        if not index or seq > index[-1][0]:
            index.append((seq, segment, offset))  # the store's follower, at the head
            return
        at = bisect.bisect_left(index, (seq, -1, -1))
        if at < len(index) and index[at][0] == seq:
            return
        # A scan behind the head (a reader paging through old events): the next page of
        # that reader starts near its cursor instead of at the start of the segment.
        index.insert(at, (seq, segment, offset))

    def note_bad(self, segment: int, start: int, end: int) -> None:
        self._bad.setdefault(segment, []).append((start, end))

    def known_bad(self, segment: int, offset: int) -> bool:
        ranges = self._bad.get(segment)
        if not ranges:
            return False
        return any(start <= offset < end for start, end in ranges)

    def head_seq(self) -> int:
        follower = self.follower(self._index[-1][0] - 1 if self._index else 0)
        try:
            follower.poll()
            return follower.head_seq
        finally:
            follower.close()

    def oldest_seq(self) -> int:
        segments = self.segments()
        return segments[0] if segments else 1

    def stats(self) -> JournalStats:
        segments = self.segments()
        sizes = [max(0, self.fileio.size(self.path(s))) for s in segments]
        return JournalStats(
            backend="local", head_seq=0, oldest_seq=segments[0] if segments else 1,
            parts=len(segments), bytes=sum(sizes),
            active=segment_name(segments[-1]) if segments else None,
            detail={"archived": len(self.archived_segments()), "path": self.events_dir},
        )

    def lock_holder(self) -> dict[str, Any] | None:
        return self.lock.read_holder()

    # -- writing ------------------------------------------------------------------------
    @contextmanager
    def transaction(self, actor: str, wait_s: float) -> Iterator[LocalTransaction]:
        self.lock.acquire(actor, wait_s)
        try:
            yield LocalTransaction(self)
        finally:
            self.lock.release()

    # -- maintenance (lock held) ------------------------------------------------------------
    def records_at(self, seqs: set[int]) -> list[Record]:
        """The valid records at ``seqs`` wherever they are kept (archive/ included), each
        with ``_segment``: the name of the segment that holds it."""
        found = []
        paths = ([(s, self.path(s)) for s in self.segments()]
                 + [(s, self.archive_path(s)) for s in self.archived_segments()])
        for segment, path in paths:
            lines, _ = split_lines(self.fileio.read_file(path) or b"")
            for line in lines:
                record = parse_line(line.raw)
                if record is not None and record["seq"] in seqs:
                    found.append({**record, "_segment": segment_name(segment)})
        return found

    def redact(self, seqs: set[int], rewrite: Callable[[Record, int | None], Record],
               actor: str) -> list[int]:
        """Rewrite the lines of ``seqs`` in place, at the same length (padded with spaces),
        segment by segment, each atomically (temp, fsync, rename, fsync folder). Offsets
        never move, so positions and the index stay true. ``rewrite(record, width)`` must
        return a record that encodes in ``width`` bytes."""
        require(self.lock.held, "redact holds the store lock")
        done: list[int] = []
        paths = ([self.path(s) for s in self.segments()]
                 + [self.archive_path(s) for s in self.archived_segments()])
        for path in paths:
            data = self.fileio.read_file(path) or b""
            out, hit = _rewrite_lines(data, seqs, rewrite)
            if hit:
                self.fileio.write_atomic(path, out)
                done += hit
        return sorted(done)

    def archive_through(self, seq: int, actor: str) -> list[str]:
        """Move every segment whose records are all at or below ``seq`` to archive/ (never
        the active one); nothing is deleted."""
        require(self.lock.held, "gc holds the store lock")
        segments = self.segments()
        moved = []
        for index, segment in enumerate(segments[:-1]):
            if segments[index + 1] - 1 <= seq:
                self.fileio.mkdir(self.archive_dir)
                self.fileio.rename(self.path(segment), self.archive_path(segment))
                self.fileio.fsync_dir(self.archive_dir)
                self.fileio.fsync_dir(self.events_dir)
                moved.append(segment_name(segment))
        return moved

    def read_segment_bytes(self, segment: int, offset: int, size: int) -> bytes:
        data = self.fileio.read_range(self.path(segment), offset, size)
        return data


def _hinted_start(hint: dict[str, Any] | None, segments: list[int],
                  after_seq: int) -> Position | None:
    """A checkpoint's position, when it still names a kept segment starting after it."""
    if not hint or hint.get("backend") != "local":
        return None
    segment, offset = hint.get("segment"), hint.get("offset")
    if not isinstance(segment, int) or not isinstance(offset, int) or segment not in segments:
        return None
    if offset == 0 and segment != after_seq + 1:
        return None  # a roll's segment starts right after the checkpoint's head
    return segment, offset


def _rewrite_lines(data: bytes, seqs: set[int],
                   rewrite: Callable[[Record, int | None], Record]) -> tuple[bytes, list[int]]:
    out = bytearray(data)
    hit: list[int] = []
    lines, _ = split_lines(data)
    for line in lines:
        record = parse_line(line.raw)
        if record is None or record["seq"] not in seqs:
            continue
        width = line.end - line.start
        new = encode_built(rewrite(record, width))
        if len(new) > width:
            raise StoreCorrupt(f"seq {record['seq']}: the rewritten record is longer than "
                               "the original; it cannot be rewritten in place")
        out[line.start:line.end] = new + b" " * (width - len(new))
        hit.append(int(record["seq"]))
    return bytes(out), hit


@dataclass
class _Open:
    """A segment fd held open, with the identity it had when opened."""

    segment: int
    fd: int
    identity: tuple[int, int]


class LocalFollower:
    """Follows the segments from a position, through one Scanner (the store's replay)."""

    def __init__(self, journal: LocalJournal, start: Position, after_seq: int, *,
                 shared_index: bool, envelope_only: bool = False,
                 counters: JournalCounters | None = None) -> None:
        self.journal = journal
        self.counters = counters or JournalCounters()
        self.scanner = Scanner(self.counters, floor_seq=after_seq, envelope_only=envelope_only,
                               known_bad=journal.known_bad if envelope_only else None)
        self.segment, self.offset = start
        self.after_seq = after_seq
        self._head = after_seq
        self._shared_index = shared_index
        self._open: _Open | None = None
        self._roll_to: int | None = None  # the next segment named by a segment_roll note
        self._sealed = False  # the current segment is known to be followed by another
        self._caught_up = False
        self._groups_since_index = limits.sparse_index_every_records  # index the first one
        self._bad_shared = 0
        self.chunk_bytes = limits.segment_read_chunk_bytes  # a read with max_records
        self.segments = journal.segments()

    @property
    def head_seq(self) -> int:
        return self._head

    def caught_up(self) -> bool:
        return self._caught_up

    def checkpoint_hint(self) -> dict[str, Any]:
        return {"backend": "local", "segment": self.segment, "offset": self.offset}

    @property
    def pending_fragment(self) -> Fragment | None:
        return self.scanner.pending_fragment

    @property
    def pending_run(self) -> PendingRun | None:
        return self.scanner.pending_run

    def tail_seq(self) -> int:
        return max(self.scanner.tail_seq(), self._head)

    # -- reading ------------------------------------------------------------------------
    def poll(self, max_records: int | None = None) -> list[TxnGroup]:
        """Complete groups appended since the last poll (lock-free). With ``max_records``
        it reads chunk by chunk and stops once it has that many."""
        out: list[TxnGroup] = []
        records = 0
        self._caught_up = False
        chunk = (self.chunk_bytes if max_records is not None
                 else limits.segment_read_all_bytes_max)
        while True:
            opened = self._fd()
            if opened is None:
                if self._advance_segment():
                    continue
                self._caught_up = True
                return out
            path = self.journal.path(self.segment)
            size = self.journal.fileio.fd_size(opened.fd, path)
            if size > self.offset:
                length = min(size - self.offset, chunk)
                more = self.offset + length < size
                data = self.journal.fileio.pread(opened.fd, length, self.offset, path)
                end = "more" if more else ("sealed" if self._is_sealed() else "tail")
                fed = self.scanner.feed(self.segment, self.offset, data, end=end)
                records += self._take(fed.groups, out)
                self._share_bad()
                self.offset += fed.consumed
                if more and fed.consumed == 0:
                    if chunk >= limits.segment_read_all_bytes_max:
                        raise StoreCorrupt(f"{path} at {self.offset}: a txn larger than "
                                           f"{chunk} bytes")
                    chunk *= 2  # one txn spans the whole chunk: read more at once
                    continue
                if max_records is not None and records >= max_records:
                    return out
                if more:
                    continue
            if not self._advance_segment():
                self._caught_up = True
                return out

    def _share_bad(self) -> None:
        """Bad lines found by the store's follower, shared so envelope-only scans skip them."""
        if not self._shared_index:
            return
        found = self.scanner.bad_ranges
        for part, start, stop in found[self._bad_shared:]:
            self.journal.note_bad(part, start, stop)
        self._bad_shared = len(found)

    def _take(self, fed: list[tuple[TxnGroup, int]], out: list[TxnGroup]) -> int:
        """Deliver these groups; how many records they hold."""
        records = 0
        for group, offset in fed:
            out.append(group)
            records += len(group)
            self._head = max(self._head, group.last_seq)
            self._watch_roll(group)
            self._index_group(group.first_seq, len(group), offset)
        return records

    def _index_group(self, first_seq: int, count: int, offset: int) -> None:
        self._groups_since_index += count
        if self._groups_since_index >= limits.sparse_index_every_records:
            self.journal.remember(first_seq, self.segment, offset)
            self._groups_since_index = 0

    def _watch_roll(self, group: TxnGroup) -> None:
        for record in group.records:
            if record["action"] == "journal_note" and \
                    record["payload"].get("kind") == "segment_roll":
                nxt = parse_segment_name(str(record["payload"].get("next")))
                if nxt is not None:
                    self._roll_to = nxt

    def _is_sealed(self) -> bool:
        """Is a later segment known to follow this one? (Then its end is final.)"""
        if self._roll_to is not None or self._sealed:
            return True
        self._sealed = any(s > self.segment for s in self.segments)
        return self._sealed

    def _advance_segment(self) -> bool:
        """Move to the next segment when this one is finished; False when it is the last."""
        nxt: int | None = None
        if self._roll_to is not None:
            if self.journal.fileio.size(self.journal.path(self._roll_to)) >= 0 or \
                    self._roll_to in self.journal.archived_segments():
                nxt = self._roll_to
        else:
            later = [s for s in self.segments if s > self.segment]
            if not later and self._open is None:
                self.segments = self.journal.segments()  # our segment is gone: look again
                later = [s for s in self.segments if s > self.segment]
            nxt = later[0] if later else None
        if nxt is None:
            return False
        self._close()
        if nxt not in self.segments:
            self.segments = sorted({*self.segments, nxt})
        self.segment, self.offset = nxt, 0
        self._roll_to, self._sealed = None, False
        return True

    def _fd(self) -> _Open | None:
        if self._open is not None and self._open.segment == self.segment:
            return self._open
        self._close()
        fd = self.journal.fileio.open_read(self.journal.path(self.segment))
        if fd is None:  # archived by gc after we started reading it: finish it there
            fd = self.journal.fileio.open_read(self.journal.archive_path(self.segment))
        if fd is None:
            return None
        self._open = _Open(self.segment, fd, self.journal.fileio.fd_identity(fd))
        return self._open

    def _close(self) -> None:
        if self._open is not None:
            self.journal.fileio.close(self._open.fd)
            self._open = None

    def close(self) -> None:
        self._close()

    # -- under the lock --------------------------------------------------------------------
    def check_identity(self) -> _Open:
        """The segment we read (and will append to) is the file at its path now."""
        opened = self._fd()
        path = self.journal.path(self.segment)
        now = self.journal.fileio.identity(path)
        if opened is None or now is None or now != opened.identity:
            raise JournalReplaced(
                f"the journal segment {path} was removed or replaced while this process had "
                "it open (a `git clean`? a restore?); nothing was written. Restart the "
                "server: it reopens the store from what is on disk now"
            )
        return opened

    def check_identity_after_write(self) -> _Open | None:
        """After a write: is the file we wrote still the one at its path?"""
        opened = self._open
        now = self.journal.fileio.identity(self.journal.path(self.segment))
        return opened if opened is not None and now == opened.identity else None

    def own_append(self, records: list[Record], lines: list[bytes], data_len: int) -> None:
        """We appended these: move past them without reading them back (their groups are
        indexed and their lines remembered for the duplicate rules, as if read)."""
        self.scanner.note_own(records, lines)
        offset = self.offset
        for record, line in zip(records, lines, strict=True):
            if record["seq"] == record["txn"][0]:
                self._index_group(int(record["seq"]), int(record["txn"][1]), offset)
            offset += len(line) + 2
        self.offset += data_len
        self._head = max(self._head, int(records[-1]["seq"]))
        self.scanner.pending_fragment = None
        self.scanner.pending_run = None
        for record in records:
            if record["action"] == "journal_note" and \
                    record["payload"].get("kind") == "segment_roll":
                self._roll_to = parse_segment_name(str(record["payload"]["next"]))


class LocalTransaction:
    """One lock hold: tail validation on begin, then appends."""

    def __init__(self, journal: LocalJournal) -> None:
        self.journal = journal
        self.follower: LocalFollower = None  # type: ignore[assignment]  # set by catch_up
        self.new_groups: list[TxnGroup] = []
        self.next_seq = 0
        self.checkpoint_due = False
        self._checked: _Open | None = None  # the segment identity-checked in this lock hold

    def start(self, first_seq: int, records: list[Record]) -> bool:
        """Begin an empty journal: ``seg-<first_seq>`` with ``records`` in it, durably."""
        journal = self.journal
        if not journal.is_empty():
            return False
        require(records[0]["seq"] == first_seq, "a journal starts at its first record")
        path = journal.path(first_seq)
        journal.fileio.mkdir(journal.events_dir)
        journal.create_segment(first_seq)
        fd = journal.fileio.open_append(path)
        try:
            journal.fileio.write(fd, frame([encode_built(r) for r in records]), path)
            if journal.fsync_mode == "always":
                journal.fileio.fsync(fd, path)
        finally:
            journal.fileio.close(fd)
        return True

    # -- tail validation ------------------------------------------------------------------
    def catch_up(self, follower: Follower) -> list[TxnGroup]:
        """Bring the follower to the tail, settling first what the writer owes there; the
        groups it had not seen (others' commits, and the notes it wrote)."""
        if not isinstance(follower, LocalFollower):
            raise StoreCorrupt("invariant violated: a local journal catches up its own follower")
        self.follower = follower
        self._begin()
        return self.new_groups

    def _begin(self) -> None:
        follower = self.follower
        follower.segments = self.journal.segments()
        if not follower.segments:
            raise JournalReplaced(f"the journal in {self.journal.events_dir} has no segments "
                                  "(was it deleted?); nothing was written")
        self.new_groups = follower.poll()
        if follower._roll_to is not None and follower.segment != follower._roll_to:
            self._finish_roll(follower._roll_to)
        require(follower.segment == follower.segments[-1],
                f"the follower reached the active segment ({follower.segment} of "
                f"{follower.segments})")
        self._checked = follower.check_identity()  # once per lock hold (and after the write)
        owed = self._owed_notes()
        if owed:
            self._write_owed(owed)
        self.next_seq = follower.tail_seq() + 1
        size = self.journal.fileio.fd_size(self._fd(), self._active_path())
        self.checkpoint_due = size >= self.journal.segment_bytes_max

    def _finish_roll(self, segment: int) -> None:
        """A roll note without its segment (a crash mid-roll): create the segment."""
        self.journal.create_segment(segment)
        self.follower.segments = self.journal.segments()
        self.new_groups += self.follower.poll()

    def _owed_notes(self) -> list[tuple[str, dict[str, Any], str]]:
        """journal-meta records the writer owes before its first append."""
        notes: list[tuple[str, dict[str, Any], str]] = []
        fragment = self.follower.pending_fragment
        if fragment is not None:
            notes.append(("journal_note", {
                "kind": "torn_tail_adjudicated", "segment": segment_name(fragment.part),
                "start": fragment.start, "end": fragment.end, "sha256": fragment.sha256,
            }, "torn tail adjudicated"))
        run = self.follower.pending_run
        if run is not None:
            notes.append(("journal_note", {
                "kind": "incomplete_txn", "txn": run.txn, "writer": run.writer, "seqs": run.seqs,
            }, f"incomplete txn {run.txn} dropped"))
        return notes

    def _write_owed(self, owed: list[tuple[str, dict[str, Any], str]]) -> None:
        """Seal a torn tail and write the notes that explain what is there, durably, then
        read them back through the scanner: the pending run and the sealed fragment before
        them are decided by these very bytes (broken, and explained)."""
        first = self.follower.tail_seq() + 1
        records = [journal_record(first + i, (first, len(owed)), action, payload, summary)
                   for i, (action, payload, summary) in enumerate(owed)]
        seal = SEAL if self.follower.pending_fragment is not None else b""
        lines = [encode_built(r) for r in records]
        fd, path = self._fd(), self._active_path()
        try:
            self._write(fd, path, seal + frame(lines))
        except StoreIOError as exc:
            self.journal.close_append()
            raise NotApplied(f"{exc}; the mutation was not applied") from exc
        self.new_groups += self.follower.poll()
        require(self.follower.head_seq >= records[-1]["seq"], "owed notes read back")

    # -- appending ------------------------------------------------------------------------
    def cut_for_checkpoint(self) -> list[TxnGroup]:
        """Close the active segment with a segment_roll note and start the next one."""
        seq = self.next_seq
        nxt = seq + 1
        note = journal_record(seq, (seq, 1), "journal_note",
                              {"kind": "segment_roll", "next": segment_name(nxt)},
                              f"segment rolled to {segment_name(nxt)}")
        self._append_lines([note])
        self.journal.create_segment(nxt)
        self.journal.close_append()
        follower = self.follower
        follower.segments = sorted({*follower.segments, nxt})
        follower._advance_segment()
        self.next_seq = nxt
        self.checkpoint_due = False
        return [TxnGroup([note])]

    def append(self, groups: list[list[Record]]) -> None:
        records = [record for group in groups for record in group]
        if not records:
            return
        require(records[0]["seq"] == self.next_seq, f"the batch starts at seq {self.next_seq}")
        require(all(b["seq"] == a["seq"] + 1 for a, b in pairwise(records)),
                "the batch's seqs run without a gap")
        self._append_lines(records)

    def _append_lines(self, records: list[Record]) -> None:
        lines = [encode_built(record) for record in records]
        data = frame(lines)
        path = self._active_path()
        try:
            fd = self._fd()
            start = self.journal.fileio.fd_size(fd, path)
        except StoreIOError as exc:
            self.journal.close_append()
            raise NotApplied(f"{exc}; the mutation was not applied") from exc
        require(start == self.follower.offset,
                f"{path} is {start} bytes under the lock; the follower is at "
                f"{self.follower.offset}")
        try:
            self._write(fd, path, data)
        except StoreIOError as exc:
            self.journal.close_append()
            if exc.operation == "fsync":
                raise OutcomeUnknown(
                    f"{exc}: the records were written but may not be durable; the mutation "
                    "may have been applied (a retry with the same request_id is safe)"
                ) from exc
            raise NotApplied(f"{exc}; the mutation was not applied") from exc
        self._after_write(path, records, lines, start + len(data))

    def _after_write(self, path: str, records: list[Record], lines: list[bytes],
                     end: int) -> None:
        """The fsync returned: the records are durable. Only a journal file replaced under
        us (it may be lost) makes the outcome unknown; nothing else can fail it now."""
        try:
            opened = self.follower.check_identity_after_write()
        except StoreIOError:
            opened = self.follower._open  # the stat failed, the fsync did not: trust it
        if opened is None:
            self.journal.close_append()
            raise OutcomeUnknown(f"{path} was removed or replaced while it was written: the "
                                 "mutation may have been lost")
        data_len = end - self.follower.offset
        self.follower.own_append(records, lines, data_len)
        self.next_seq = int(records[-1]["seq"]) + 1

    def _write(self, fd: int, path: str, data: bytes) -> None:
        self.journal.fileio.write(fd, data, path)
        if self.journal.fsync_mode == "always":
            self.journal.fileio.fsync(fd, path)

    def _active_path(self) -> str:
        return self.journal.path(self.follower.segment)

    def _fd(self) -> int:
        """The O_APPEND fd of the active segment: the very file the follower reads."""
        journal = self.journal
        opened = self._checked
        if opened is None or opened.segment != self.follower.segment:
            opened = self._checked = self.follower.check_identity()
        held = journal._append
        if held is None or held.segment != opened.segment or held.identity != opened.identity:
            journal.close_append()
            fd = journal.fileio.open_append(self._active_path())
            identity = journal.fileio.fd_identity(fd)
            held = journal._append = _Open(opened.segment, fd, identity)
            if identity != opened.identity:
                journal.close_append()
                raise JournalReplaced(f"{self._active_path()} changed under the store lock; "
                                      "nothing was written")
        return held.fd
