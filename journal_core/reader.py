"""Reading segments (SPEC §5, §6.4, §6.5): torn tails, bad lines, txn groups, duplicates.

``JournalReader`` follows the journal incrementally from a position. It hands back only
*complete* txn groups, in file order. It never applies a trailing txn that may still be
in flight, and never consumes an unterminated final line: those stay pending (and are
re-read next time) until a later append decides them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from . import limits
from .counters import JournalCounters
from .errors import RecordInvalid
from .journal import Journal
from .record import decode_line
from .segment import parse_segment_name, segment_name

Record = dict[str, Any]


@dataclass
class Fragment:
    """An unterminated final line: bytes [start, end) of a segment."""

    segment: int
    start: int
    end: int
    sha256: str

    def note(self) -> dict[str, Any]:
        return {
            "kind": "torn_tail_adjudicated",
            "segment": segment_name(self.segment),
            "start": self.start,
            "end": self.end,
            "sha256": self.sha256,
        }


@dataclass
class PendingRun:
    """The trailing records of one txn that has not (yet) got all its records."""

    writer: str
    txn: list[int]
    seqs: list[int]


@dataclass
class _Line:
    start: int
    end: int
    record: Record | None
    raw: bytes


@dataclass
class JournalReader:
    journal: Journal
    counters: JournalCounters = field(default_factory=JournalCounters)
    segment: int | None = None
    offset: int = 0
    max_seq: int = 0
    pending_fragment: Fragment | None = None
    pending_run: PendingRun | None = None
    bad_ranges: list[tuple[int, int, int]] = field(default_factory=list)  # (seg, start, end)
    adjudicated: set[tuple[int, int]] = field(default_factory=set)  # (seg, start) by notes
    sparse_index: list[tuple[int, int, int]] = field(default_factory=list)  # (seq, seg, offset)
    _seen: dict[int, list[tuple[str, int]]] = field(default_factory=dict)
    _group: list[Record] = field(default_factory=list)
    _group_key: tuple[str, int, int] | None = None
    _group_offset: int = 0
    _groups_since_index: int = 0

    def read_new(self, active_hint: int | None = None) -> list[list[Record]]:
        """Complete groups appended since the last call, in file order."""
        groups: list[list[Record]] = []
        if active_hint is not None and active_hint == self.segment:
            self._read_segment(is_last=True, groups=groups)
            return groups
        segments = self.journal.segments()
        if not segments:
            return groups
        if self.segment is None:
            self.segment, self.offset = segments[0], 0
        # A segment archived under our feet (gc) is still read, from archive/, to its end.
        while True:
            later = [s for s in segments if s > self.segment]
            self._read_segment(is_last=not later, groups=groups)
            if not later:
                return groups
            self.segment, self.offset = later[0], 0

    def adjudicate(self, record: Record) -> None:
        """Note hook: a torn_tail_adjudicated note explains the bad bytes it names."""
        payload = record["payload"]
        if record["action"] != "journal_note" or payload.get("kind") != "torn_tail_adjudicated":
            return
        segment = parse_segment_name(str(payload.get("segment")))
        if segment is not None and isinstance(payload.get("start"), int):
            self.adjudicated.add((segment, payload["start"]))
            self.counters.fragments_adjudicated += 1

    def unexplained_ranges(self) -> list[tuple[int, int, int]]:
        """Bad bytes that no torn_tail_adjudicated note explains."""
        return [r for r in self.bad_ranges if (r[0], r[1]) not in self.adjudicated]

    def tail_seq(self) -> int:
        """Highest seq of any valid line, pending ones included (tail validation, §5)."""
        pending = max(self.pending_run.seqs) if self.pending_run else 0
        return max(self.max_seq, pending)

    # -- one segment ------------------------------------------------------------------
    def _read_segment(self, *, is_last: bool, groups: list[list[Record]]) -> None:
        assert self.segment is not None
        data = self.journal.read(self.segment, self.offset)
        lines, tail_start = _split_lines(data)
        cut = len(lines)
        self.pending_run = None
        self.pending_fragment = None
        if is_last:
            cut = self._find_pending_run(lines)
            if tail_start < len(data):
                self.pending_fragment = _fragment(self.segment, self.offset, data, tail_start)
        for line in lines[:cut]:
            self._consume_line(line, groups)
        # Every consumed line is decided: the group they end with is complete or broken.
        self._close_group(groups)
        if is_last:
            consumed = lines[cut].start if cut < len(lines) else tail_start
        else:
            if tail_start < len(data):
                self.counters.torn_tails += 1
                self.bad_ranges.append((self.segment, self.offset + tail_start,
                                        self.offset + len(data)))
            consumed = len(data)
        self.offset += consumed

    def _find_pending_run(self, lines: list[_Line]) -> int:
        """Index of the first line of a trailing txn still missing records (or len)."""
        index = len(lines) - 1
        key: tuple[str, int, int] | None = None
        first = len(lines)
        seqs: set[int] = set()
        while index >= 0:
            line = lines[index]
            line.record = line.record if line.record is not None else _parse(line.raw)
            record = line.record
            if record is not None:
                this_key = (record["writer"], record["txn"][0], record["txn"][1])
                if key is None:
                    key = this_key
                elif this_key != key:
                    break
                seqs.add(record["seq"])
                first = index
            index -= 1
        if key is None or len(seqs) >= key[2]:
            return len(lines)
        self.pending_run = PendingRun(key[0], [key[1], key[2]], sorted(seqs))
        return first

    def _consume_line(self, line: _Line, groups: list[list[Record]]) -> None:
        assert self.segment is not None
        record = line.record if line.record is not None else _parse(line.raw)
        if record is None:
            if line.raw.isspace():
                return  # bytes parked by doctor --repair: blanked, not corrupt
            self.counters.lines_skipped += 1
            self.bad_ranges.append((self.segment, self.offset + line.start, self.offset + line.end))
            return
        if self._is_identical_duplicate(record, line.raw):
            return
        key = (record["writer"], record["txn"][0], record["txn"][1])
        # A seq that does not climb starts a new group even under the same key: one writer
        # that reused a seq for two txns (SPEC §5 case 2) wrote two txns, both applied.
        if key != self._group_key or (self._group and record["seq"] <= self._group[-1]["seq"]):
            self._close_group(groups)
            self._group_key = key
            self._group_offset = self.offset + line.start
        self._group.append(record)

    def _is_identical_duplicate(self, record: Record, raw: bytes) -> bool:
        seq, writer, digest = record["seq"], record["writer"], hash(raw)
        if seq > self.max_seq:
            self.max_seq = seq
            self._remember(seq, writer, digest)
            return False
        earlier = self._seen.get(seq, [])
        if (writer, digest) in earlier:
            self.counters.dup_identical += 1
            return True
        if any(w == writer for w, _ in earlier):
            self.counters.dup_conflicts += 1
        elif earlier:
            self.counters.dup_seq_writers += 1
        self._remember(seq, writer, digest)
        return False

    def _remember(self, seq: int, writer: str, digest: int) -> None:
        self._seen.setdefault(seq, []).append((writer, digest))
        if len(self._seen) > limits.dup_window_records:
            del self._seen[next(iter(self._seen))]

    def _close_group(self, groups: list[list[Record]]) -> None:
        group, key = self._group, self._group_key
        self._group, self._group_key = [], None
        if not group or key is None:
            return
        first = key[1]
        if not _complete(group, key):
            self.counters.incomplete_txns += 1
            return
        groups.append(group)
        self._groups_since_index += len(group)
        if self._groups_since_index >= limits.sparse_index_every_records or not self.sparse_index:
            assert self.segment is not None
            self.sparse_index.append((first, self.segment, self._group_offset))
            self._groups_since_index = 0


def _split_lines(data: bytes) -> tuple[list[_Line], int]:
    lines: list[_Line] = []
    pos = 0
    while True:
        newline = data.find(b"\n", pos)
        if newline < 0:
            return lines, pos
        if newline > pos:
            lines.append(_Line(pos, newline, None, data[pos:newline]))
        pos = newline + 1


def _parse(raw: bytes) -> Record | None:
    try:
        return decode_line(raw)
    except RecordInvalid:
        return None


def _fragment(segment: int, base: int, data: bytes, start: int) -> Fragment:
    piece = data[start:]
    return Fragment(segment, base + start, base + len(data), hashlib.sha256(piece).hexdigest())


def scan_groups(journal: Journal, segment: int, offset: int) -> Iterator[list[Record]]:
    """Complete txn groups from (segment, offset) on, lazily, for readers such as
    read_unseen. It keeps no state: a trailing group still in flight is not yielded."""
    for group, _, _ in scan_groups_at(journal, segment, offset):
        yield group


def scan_groups_at(
    journal: Journal, segment: int, offset: int,
) -> Iterator[tuple[list[Record], int, int]]:
    """scan_groups, with the (segment, byte offset) where each group's first line starts:
    a position a later scan may start from (segment bytes never move, SPEC §4)."""
    for current in [s for s in journal.segments() if s >= segment]:
        base = offset if current == segment else 0
        data = journal.read(current, base)
        group: list[Record] = []
        key: tuple[str, int, int] | None = None
        last_raw = b""
        group_start = pos = 0
        while True:
            newline = data.find(b"\n", pos)
            if newline < 0:
                break
            line_start, raw, pos = pos, data[pos:newline], newline + 1
            record = _parse(raw) if raw else None
            if record is None:
                continue
            this_key = (record["writer"], record["txn"][0], record["txn"][1])
            if this_key == key and raw == last_raw:
                continue  # an identical duplicate of the line before (SPEC §5 case 1)
            if this_key != key or (group and record["seq"] <= group[-1]["seq"]):
                if key is not None and _complete(group, key):
                    yield group, current, base + group_start
                group, key, group_start = [], this_key, line_start
            group.append(record)
            last_raw = raw
        if key is not None and _complete(group, key):
            yield group, current, base + group_start


def _complete(group: list[Record], key: tuple[str, int, int]) -> bool:
    return [r["seq"] for r in group] == list(range(key[1], key[1] + key[2]))
