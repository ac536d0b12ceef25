"""The one scanner: lines -> records -> complete txn groups (docs/design.md, "Reading").

Every reader of a local journal -- the store's follower (replay), ``scan`` for read_unseen,
tail, export, gc and doctor -- feeds segment bytes through a ``Scanner``, so they apply the
same rules and can never disagree:

- lines are split on ``\\n``; empty and blank lines are skipped (blank: bytes doctor
  parked);
- a line that is not a valid record is skipped and counted, its byte range remembered --
  unless it is the unterminated end of the last segment: a torn tail, left pending (never
  applied, even if it parses) until a writer seals and adjudicates it;
- an identical duplicate (same seq, writer and bytes) within a bounded window is dropped
  and counted; same seq and writer with other bytes, or the same seq from another writer,
  are applied and counted;
- consecutive lines of one ``(writer, txn)`` with climbing seqs form a group; a group is
  applied only when it holds exactly the seqs of its txn. A short group inside the journal
  is dropped and counted; a short group at the end of the last segment is left pending
  (a write may be in flight) until a later append decides it.

A scan that starts at a position (a checkpoint, an index entry) knows nothing before it:
it does not judge duplicates of seqs at or below its ``floor_seq`` (its callers leave
those records out).
"""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import limits
from .counters import JournalCounters
from .journal import TxnGroup
from .record import decode_envelope, parse_line

Record = dict[str, Any]
Decode = Callable[[bytes], Record | None]
GroupKey = tuple[str, int, int]  # (writer, txn first seq, txn count)
DUP_RING_START = 1024  # slots of a new scanner's duplicate window (it doubles as it fills)


@dataclass
class Fragment:
    """An unterminated final line: bytes [start, end) of a part (a segment)."""

    part: int
    start: int
    end: int
    sha256: str


@dataclass
class PendingRun:
    """The trailing records of one txn that has not (yet) got all its records."""

    writer: str
    txn: list[int]
    seqs: list[int]


@dataclass(slots=True)
class _Line:
    start: int
    end: int
    raw: bytes
    record: Record | None = None
    parsed: bool = False


@dataclass
class Fed:
    """What one ``feed`` produced: complete groups (with the offset each starts at) and how
    many bytes it consumed; bytes after that are pending and must be fed again."""

    groups: list[tuple[TxnGroup, int]]
    consumed: int


class DupWindow:
    """The (writer, line hash) of the seqs a scanner met, for the duplicate rules (D6),
    within ``dup_window_records`` of the highest. Flat arrays used as a ring indexed by seq
    (seqs climb, so a slot is reused by the seq one window later), grown on demand: a
    scanner of a long journal holds ~2.5 MB here, where a dict of lists held ~45 MB."""

    def __init__(self, size_max: int = limits.dup_window_records) -> None:
        if size_max < 1 or size_max & (size_max - 1):
            raise ValueError(f"the duplicate window must be a power of two, not {size_max}")
        self.size_max = size_max
        self._writer_ids: dict[str, int] = {}
        self._writer_names: list[str] = []
        self._extra: dict[int, list[tuple[str, int]]] = {}  # a seq met more than once
        self._top = 0  # the highest seq added
        self._alloc(min(size_max, DUP_RING_START))

    def _alloc(self, size: int) -> None:
        self._size = size
        self._mask = size - 1
        self._seqs = array("q", [-1]) * size
        self._digests = array("q", bytes(8 * size))
        self._writers = array("l", bytes(array("l").itemsize * size))

    def get(self, seq: int) -> list[tuple[str, int]]:
        slot = seq & self._mask
        found = [(self._writer_names[self._writers[slot]], self._digests[slot])] \
            if self._seqs[slot] == seq else []
        extra = self._extra.get(seq)
        return found + extra if extra else found

    def add(self, seq: int, writer: str, digest: int) -> None:
        top = self._top
        if seq > top:
            self._top = seq
        elif seq <= top - self.size_max:
            return  # older than the whole window
        slot = seq & self._mask
        held = self._seqs[slot]
        if held >= 0 and held & self._mask != slot:
            held = -1  # a copy left by _grow in the half its seq does not map to: free
        if held < 0 or seq - held >= self.size_max:  # the common case: a free slot
            writer_id = self._writer_ids.get(writer)
            if writer_id is None:
                writer_id = self._writer_ids[writer] = len(self._writer_names)
                self._writer_names.append(writer)
            self._seqs[slot], self._digests[slot], self._writers[slot] = seq, digest, writer_id
            if held >= 0 and self._extra:
                self._extra.pop(held, None)
            return
        if held == seq:
            self._extra.setdefault(seq, []).append((writer, digest))
            if len(self._extra) > self.size_max:
                self._prune_extra(seq)
            return
        if self._size < self.size_max:
            self._grow()
            self.add(seq, writer, digest)
        # else: the window is full of later seqs, and this one is the oldest

    def _grow(self) -> None:
        """Double the ring by copying it after itself (in C): an entry at slot i belongs at i
        or at i + size now; the copy in the other half maps to no seq there (``get``
        compares seqs, ``add`` takes such a slot as free)."""
        self._seqs = self._seqs + self._seqs
        self._digests = self._digests + self._digests
        self._writers = self._writers + self._writers
        self._size *= 2
        self._mask = self._size - 1

    def _prune_extra(self, top: int) -> None:
        for seq in [s for s in self._extra if s <= top - self.size_max]:
            del self._extra[seq]


@dataclass
class Scanner:
    counters: JournalCounters = field(default_factory=JournalCounters)
    floor_seq: int = 0
    envelope_only: bool = False
    known_bad: Callable[[int, int], bool] | None = None  # (part, offset) -> a bad line there
    max_seq: int = 0
    pending_fragment: Fragment | None = None
    pending_run: PendingRun | None = None
    bad_ranges: list[tuple[int, int, int]] = field(default_factory=list)  # (part, start, end)
    _seen: DupWindow = field(default_factory=lambda: DupWindow())

    # -- feeding ----------------------------------------------------------------------
    def feed(self, part: int, base: int, data: bytes, *, end: str) -> Fed:
        """Scan ``data`` (bytes of ``part`` starting at offset ``base``). ``end`` says what
        follows the data: ``"more"`` (more bytes of this part: the trailing txn and an
        unterminated line are left for the next feed), ``"sealed"`` (nothing: the part is
        closed for good, so a short trailing txn is broken and an unterminated line is a
        torn tail) or ``"tail"`` (the end of the journal as far as anyone knows: a short
        trailing txn and an unterminated line are pending -- a write may be in flight)."""
        lines, tail_start = split_lines(data)
        cut = len(lines)
        if end != "more":
            self.pending_run = None
            self.pending_fragment = None
        if end == "more":
            cut = self._trailing_run_start(lines, only_short=False)
        elif end == "tail":
            cut = self._trailing_run_start(lines, only_short=True)
            if tail_start < len(data):
                self.pending_fragment = _fragment(part, base, data, tail_start)
        groups: list[tuple[TxnGroup, int]] = []
        builder = _GroupBuilder(self, part, base, groups)
        # _decode, inlined for the common case (a valid line with a new seq): this loop
        # runs for every line every reader meets.
        known_bad = self.known_bad
        envelope_only = self.envelope_only
        remember = self._seen.add
        add = builder.add
        for line in lines[:cut]:
            if line.parsed:
                record = line.record
            else:
                line.parsed = True
                if known_bad is not None and known_bad(part, base + line.start):
                    record = None
                elif envelope_only:
                    record = decode_envelope(line.raw) or parse_line(line.raw)
                else:
                    record = parse_line(line.raw)
                line.record = record
            if record is None:
                if not line.raw.isspace():  # blanked by doctor --repair: not corrupt
                    self.counters.lines_skipped += 1
                    self.bad_ranges.append((part, base + line.start, base + line.end))
                continue
            seq = record["seq"]
            if seq > self.max_seq:
                self.max_seq = seq
                remember(seq, record["writer"], hash(line.raw))
            elif self._is_identical_duplicate(record, line.raw):
                continue
            add(record, line.start)
        builder.close()
        if cut < len(lines):
            consumed = lines[cut].start
        elif end == "sealed":
            if tail_start < len(data):  # a closed segment's torn end: nothing follows it
                self.counters.torn_tails += 1
                self.bad_ranges.append((part, base + tail_start, base + len(data)))
            consumed = len(data)
        else:
            consumed = tail_start
        return Fed(groups, consumed)

    def note_own(self, records: list[Record], lines: list[bytes]) -> None:
        """Records this process appended itself: remembered as if read (no read-back)."""
        for record, raw in zip(records, lines, strict=True):
            self._is_identical_duplicate(record, raw)

    def tail_seq(self) -> int:
        """The highest seq of any valid line, pending ones included."""
        pending = max(self.pending_run.seqs) if self.pending_run else 0
        return max(self.max_seq, pending)

    # -- lines ------------------------------------------------------------------------
    def _trailing_run_start(self, lines: list[_Line], *, only_short: bool) -> int:
        """Index of the first line of the trailing run of one txn (``only_short``: only when
        that txn still misses records, remembered as the pending run), else len."""
        index = len(lines) - 1
        key: GroupKey | None = None
        first = len(lines)
        seqs: set[int] = set()
        while index >= 0:
            line = lines[index]
            record = line.record if line.parsed else parse_line(line.raw)
            line.record, line.parsed = record, True
            if record is not None:
                this_key = (record["writer"], record["txn"][0], record["txn"][1])
                if key is None:
                    key = this_key
                elif this_key != key:
                    break
                seqs.add(record["seq"])
                first = index
            index -= 1
        if key is None:
            return len(lines)
        if not only_short:
            return first
        if len(seqs) >= key[2]:
            return len(lines)
        self.pending_run = PendingRun(key[0], [key[1], key[2]], sorted(seqs))
        return first

    def _is_identical_duplicate(self, record: Record, raw: bytes) -> bool:
        seq, writer, digest = record["seq"], record["writer"], hash(raw)
        if seq > self.max_seq:
            self.max_seq = seq
            self._seen.add(seq, writer, digest)
            return False
        earlier = self._seen.get(seq)
        if (writer, digest) in earlier:
            self.counters.dup_identical += 1
            return True
        if seq <= self.floor_seq and not earlier:
            return False  # before where this scan started: not ours to judge
        if any(w == writer for w, _ in earlier):
            self.counters.dup_conflicts += 1
        elif earlier:
            self.counters.dup_seq_writers += 1
        self._seen.add(seq, writer, digest)
        return False


class _GroupBuilder:
    """Consecutive records of one (writer, txn) with climbing seqs; complete ones out."""

    def __init__(self, scanner: Scanner, part: int, base: int,
                 out: list[tuple[TxnGroup, int]]) -> None:
        self.scanner = scanner
        self.base = base
        self.out = out
        self.records: list[Record] = []
        self.key: GroupKey | None = None
        self.start = 0

    def add(self, record: Record, start: int) -> None:
        key = (record["writer"], record["txn"][0], record["txn"][1])
        # A seq that does not climb starts a new group even under the same key: one writer
        # that reused a seq for two txns wrote two txns, both applied.
        if key != self.key or (self.records and record["seq"] <= self.records[-1]["seq"]):
            self.close()
            self.key, self.start = key, start
        self.records.append(record)

    def close(self) -> None:
        records, key = self.records, self.key
        self.records, self.key = [], None
        if not records or key is None:
            return
        if not complete(records, key):
            self.scanner.counters.incomplete_txns += 1
            return
        self.out.append((TxnGroup(records), self.base + self.start))


def complete(records: list[Record], key: GroupKey) -> bool:
    first, count = key[1], key[2]
    if len(records) != count:
        return False
    return all(record["seq"] == first + i for i, record in enumerate(records))


def split_lines(data: bytes) -> tuple[list[_Line], int]:
    """Terminated lines (empty ones left out) and where the unterminated rest starts."""
    lines: list[_Line] = []
    pos = 0
    find = data.find
    while True:
        newline = find(b"\n", pos)
        if newline < 0:
            return lines, pos
        if newline > pos:
            lines.append(_Line(pos, newline, data[pos:newline]))
        pos = newline + 1


def _fragment(part: int, base: int, data: bytes, start: int) -> Fragment:
    piece = data[start:]
    return Fragment(part, base + start, base + len(data), hashlib.sha256(piece).hexdigest())
