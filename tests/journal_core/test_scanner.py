"""The reader and replay on hand-written bytes.

Each test builds a real store, closes it, appends bytes written by hand (as a crashed or
rogue writer would have left them), then opens a fresh Store and checks what replay made
of them, what the next writer appends about them, and the seq the next mutation gets.
"""

from __future__ import annotations

import hashlib
import io
import zlib
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from support.engine import (
    WRITER_A,
    WRITER_B,
    Clock,
    active_segment,
    append_bytes,
    entity_image,
    framed,
    journal_records,
    line_of,
    memory_record,
)

from journal_core import Store, clock, verbs
from journal_core.federation import write_slice
from journal_core.meta import parse_meta
from journal_core.queries import history


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    """A store holding a few acknowledged memory items, closed."""
    path = tmp_path / "store"
    with Store(str(path), now=Clock()) as store:
        for title in ("one", "two", "three"):
            store.mutate("ann", lambda m, t=title: verbs.remember(m, "note", t, "body"))
    yield path


def head_of(root: Path) -> int:
    return max(record["seq"] for record in journal_records(root))


def next_writer(store: Store) -> list[int]:
    """One ordinary mutation; the seqs of every record it appended, the journal-meta
    records it owed (notes, seq_repair) first and its own record last."""
    root = Path(store.root)
    before = len(journal_records(root))
    _, committed = store.mutate("next", lambda m: verbs.remember(m, "note", "next", "x"))
    seqs = [record["seq"] for record in journal_records(root)[before:]]
    assert seqs[-1] == committed.first_seq
    return seqs


def follows(seqs: list[int], tail: int) -> bool:
    """The seqs run on from the highest seq of any valid line, without a gap."""
    return seqs == list(range(tail + 1, tail + 1 + len(seqs)))


def notes_of(root: Path, kind: str) -> list[dict[str, object]]:
    return [
        r["payload"]
        for r in journal_records(root)
        if r["action"] == "journal_note" and r["payload"]["kind"] == kind
    ]


# -- torn tails ------------------------------------------------------------------------------
def half_a_record(seq: int) -> bytes:
    line = line_of(memory_record(seq, WRITER_A, "mem_torn", 1, "torn"))
    return line[: len(line) // 2]


def whole_record_without_newline(seq: int) -> bytes:
    return line_of(memory_record(seq, WRITER_A, "mem_torn", 1, "torn"))


def json_but_not_a_record(seq: int) -> bytes:
    return orjson.dumps({"v": 1, "seq": seq, "item_id": "mem_torn"})


@pytest.mark.parametrize(
    "fragment_of",
    [
        half_a_record,
        whole_record_without_newline,
        json_but_not_a_record,
    ],
    ids=["half a record", "a whole record without its newline", "json that is no record"],
)
def test_a_torn_final_line_is_skipped_and_the_next_writer_adjudicates_it(
    root: Path,
    fragment_of: object,
) -> None:
    assert callable(fragment_of)
    head = head_of(root)
    fragment: bytes = fragment_of(head + 1)
    start = active_segment(root).stat().st_size + 1  # after the "\n" that opens the line
    append_bytes(root, b"\n" + fragment)

    with Store(str(root)) as store:
        assert store.head_seq == head
        assert store.state.entity("memory", "mem_torn") is None  # never acknowledged
        seqs = next_writer(store)

    assert follows(seqs, head) and len(seqs) == 2  # the note, then the mutation
    data = active_segment(root).read_bytes()
    assert data[start : start + len(fragment)] == fragment  # nothing truncated or moved
    assert data[start + len(fragment) : start + len(fragment) + 1] == b"#"  # sealed
    assert notes_of(root, "torn_tail_adjudicated") == [
        {
            "kind": "torn_tail_adjudicated",
            "segment": active_segment(root).name,
            "start": start,
            "end": start + len(fragment),
            "sha256": hashlib.sha256(fragment).hexdigest(),
        }
    ]
    with Store(str(root)) as reopened:
        assert reopened.state.entity("memory", "mem_torn") is None  # not even once sealed
        assert reopened.counters.lines_skipped == 1
        assert reopened.counters.fragments_adjudicated == 1
        assert reopened.counters.unexplained_corruption == 0
        tail = reopened.head_seq
        assert follows(next_writer(reopened), tail)


@pytest.mark.parametrize("second", ["missing", "torn"])
def test_a_trailing_txn_cut_short_is_dropped_and_the_next_writer_notes_it(
    root: Path,
    second: str,
) -> None:
    """A txn of two records whose second one is missing, or torn (a final line that is
    half a record): the first line parses, is terminated, and is still never applied."""
    head = head_of(root)
    txn = (head + 1, 2)
    first_line = line_of(memory_record(head + 1, WRITER_A, "mem_half_a", 1, "a", txn=txn))
    second_line = line_of(memory_record(head + 2, WRITER_A, "mem_half_b", 1, "b", txn=txn))
    append_bytes(root, framed(first_line))
    if second == "torn":
        append_bytes(root, b"\n" + second_line[:40])

    with Store(str(root)) as store:
        assert store.state.entity("memory", "mem_half_a") is None
        assert store.head_seq == head
        seqs = next_writer(store)

    assert follows(seqs, head + 1)  # D7: the dropped record's seq is never reused
    assert notes_of(root, "incomplete_txn") == [
        {"kind": "incomplete_txn", "txn": list(txn), "writer": WRITER_A, "seqs": [head + 1]}
    ]
    assert len(notes_of(root, "torn_tail_adjudicated")) == (second == "torn")
    with Store(str(root)) as reopened:
        assert reopened.state.entity("memory", "mem_half_a") is None
        assert reopened.state.entity("memory", "mem_half_b") is None
        assert reopened.counters.incomplete_txns == 1
        assert reopened.counters.incomplete_txns_noted == 1
        assert reopened.counters.unexplained_corruption == 0


def test_a_garbage_line_mid_file_is_skipped_counted_and_what_follows_applies(
    root: Path,
) -> None:
    head = head_of(root)
    append_bytes(
        root,
        framed(
            line_of(memory_record(head + 1, WRITER_A, "mem_before", 1, "before")),
            b'{"v":1,"seq":\x00\xff garbage',
            line_of(memory_record(head + 2, WRITER_A, "mem_after", 1, "after")),
        ),
    )

    with Store(str(root)) as store:
        assert store.state.entity("memory", "mem_before") is not None
        assert store.state.entity("memory", "mem_after") is not None
        assert store.counters.lines_skipped == 1
        assert store.counters.unexplained_corruption == 1  # no note explains it
        assert store.head_seq == head + 2
        assert follows(next_writer(store), head + 2)


# -- duplicate seqs, in file order -----------------------------------------
def test_an_identical_line_appended_again_is_skipped_and_counted(root: Path) -> None:
    """Case 1. The duplicate is of an older rev: applied, it would be a regression."""
    head = head_of(root)
    rev1 = line_of(memory_record(head + 1, WRITER_A, "mem_dup", 1, "rev one"))
    rev2 = line_of(memory_record(head + 2, WRITER_A, "mem_dup", 2, "rev two"))
    append_bytes(root, framed(rev1, rev1, rev2, rev1))

    with Store(str(root)) as store:
        entity = store.state.entity("memory", "mem_dup")
        assert entity is not None and entity.payload is not None
        assert (entity.rev, entity.payload["title"]) == (2, "rev two")
        assert store.counters.dup_identical == 2
        assert store.counters.rev_regressions == 0
        assert store.counters.dup_conflicts == store.counters.dup_seq_writers == 0
        assert follows(next_writer(store), head + 2)


def test_every_reader_drops_an_identical_line_appended_again(root: Path) -> None:
    """rev1, rev2, rev1 with identical bytes after the store's own records: read_unseen,
    tail, history and export see rev1 and rev2 once each, in order, as replay does (one
    scanner). A reader that dropped only a repeat of the line just before returned
    [.., rev1, rev2, rev1]."""
    head = head_of(root)
    rev1 = line_of(memory_record(head + 1, WRITER_A, "mem_dup", 1, "rev one"))
    rev2 = line_of(memory_record(head + 2, WRITER_A, "mem_dup", 2, "rev two"))
    append_bytes(root, framed(rev1, rev2, rev1))

    with Store(str(root)) as store:
        assert store.counters.dup_identical == 1
        unseen = [event["seq"] for event in store.read_unseen("bob", limit=100)["events"]]
        assert unseen == sorted(set(unseen)) and unseen[-2:] == [head + 1, head + 2]
        tail = store.records_after(0)
        assert [record["seq"] for record in tail] == list(range(1, head + 3))
        assert [r["entity_rev"] for r in history(store, "memory", "mem_dup")] == [1, 2]
        out = io.BytesIO()
        write_slice(store, out)
        exported = [orjson.loads(line) for line in out.getvalue().splitlines()[1:]]
        assert [r["origin"]["seq"] for r in exported if r.get("item_id") == "mem_dup"] \
            == [head + 1, head + 2]


def test_one_writer_reusing_a_seq_with_other_bytes_applies_both_and_the_later_wins(
    root: Path,
) -> None:
    """Case 2: same (seq, writer), different bytes -- both applied in file order, the later
    line wins, each counted (a doctor ERROR). Another writer's lines stand between them."""
    seq = head_of(root) + 1
    append_bytes(
        root,
        framed(
            line_of(memory_record(seq, WRITER_A, "mem_x", 1, "x first")),
            line_of(memory_record(seq + 1, WRITER_B, "mem_b1", 1, "b1", actor="bob")),
            line_of(memory_record(seq, WRITER_A, "mem_y", 1, "y")),
            line_of(memory_record(seq + 2, WRITER_B, "mem_b2", 1, "b2", actor="bob")),
            line_of(memory_record(seq, WRITER_A, "mem_x", 1, "x second")),
        ),
    )

    with Store(str(root)) as store:
        x, y = store.state.entity("memory", "mem_x"), store.state.entity("memory", "mem_y")
        assert x is not None and x.payload is not None and x.payload["title"] == "x second"
        assert y is not None
        assert store.counters.dup_conflicts == 2
        assert store.counters.dup_identical == store.counters.incomplete_txns == 0
        assert follows(next_writer(store), seq + 2)


def test_one_writer_reusing_a_seq_on_adjacent_lines_applies_both_and_the_later_wins(
    root: Path,
) -> None:
    seq = head_of(root) + 1
    append_bytes(
        root,
        framed(
            line_of(memory_record(seq, WRITER_A, "mem_x", 1, "x first")),
            line_of(memory_record(seq, WRITER_A, "mem_y", 1, "y")),
        ),
    )

    with Store(str(root)) as store:
        assert store.state.entity("memory", "mem_x") is not None
        assert store.state.entity("memory", "mem_y") is not None
        assert store.counters.dup_conflicts == 1
        assert store.counters.incomplete_txns == 0


def test_two_writers_on_one_seq_apply_in_file_order_never_sorted(root: Path) -> None:
    """Case 3 (and case 4 at an equal rev): writer B's lines come first in the file,
    writer A's second. Sorting by (seq, writer) would apply A first and let B win."""
    seq = head_of(root) + 1
    append_bytes(
        root,
        framed(
            line_of(memory_record(seq, WRITER_B, "mem_same", 1, "from B", actor="bob")),
            line_of(memory_record(seq, WRITER_A, "mem_same", 1, "from A")),
            line_of(memory_record(seq + 1, WRITER_B, "mem_b_only", 1, "b", actor="bob")),
            line_of(memory_record(seq + 1, WRITER_A, "mem_a_only", 1, "a")),
        ),
    )

    with Store(str(root)) as store:
        same = store.state.entity("memory", "mem_same")
        assert same is not None and same.payload is not None
        assert (same.payload["title"], same.writer) == ("from A", WRITER_A)
        assert store.state.entity("memory", "mem_b_only") is not None
        assert store.state.entity("memory", "mem_a_only") is not None
        assert store.counters.dup_seq_writers == 2
        assert store.counters.rev_overwrites == 1
        assert follows(next_writer(store), seq + 1)


# -- meta.json is a cache of the projections' watermarks ---------------------------------------
def corrupt_meta(meta_path: Path, how: str) -> None:
    data = meta_path.read_bytes()
    if how == "deleted":
        meta_path.unlink()
    elif how == "not json":
        meta_path.write_bytes(data[: len(data) // 2])
    elif how == "checksum fails":
        meta = parse_meta(data)
        assert meta is not None
        applied = meta.applied["memory"]
        meta_path.write_bytes(data.replace(f'"memory": {applied}'.encode(),
                                           f'"memory": {applied + 7}'.encode()))
        assert parse_meta(meta_path.read_bytes()) is None
    else:
        raise AssertionError(how)


@pytest.mark.parametrize("how", ["deleted", "not json", "checksum fails"])
def test_a_missing_or_corrupt_meta_changes_nothing_and_the_next_seq_follows_the_tail(
    root: Path,
    how: str,
) -> None:
    """meta.json holds only the projections' watermarks; the next seq is the journal's
    own business. Whatever happens to meta, nothing else changes and no seq is reused; the
    next writer rewrites it whole."""
    meta_path = root / "events" / "meta.json"
    head = head_of(root)
    with Store(str(root)) as before:
        image = entity_image(before)
    corrupt_meta(meta_path, how)

    with Store(str(root)) as store:
        assert entity_image(store) == image
        assert next_writer(store) == [head + 1]

    meta = parse_meta(meta_path.read_bytes())
    assert meta is not None and set(meta.applied.values()) == {head + 1}
    assert not [r for r in journal_records(root) if r["action"] == "seq_repair"]


EARLIER_BOOT = "00000000-0000-4000-8000-000000000000"


def earlier_version_meta(store_id: str, next_seq: int, boot: str) -> bytes:
    """meta.json as versions before the journal interface wrote it: with next_seq and the
    active segment, under the same kind of checksum."""
    body = {"active_segment": "seg-000000000001.jsonl", "applied": {}, "boot_id": boot,
            "next_seq": next_seq, "store_id": store_id}
    body["crc32"] = zlib.crc32(orjson.dumps(body, option=orjson.OPT_SORT_KEYS))
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2) + b"\n"


@pytest.mark.parametrize("written_in", ["this boot", "an earlier boot"])
def test_a_meta_of_an_earlier_version_with_a_next_seq_behind_the_tail_reuses_no_seq(
    root: Path,
    written_in: str,
) -> None:
    meta_path = root / "events" / "meta.json"
    head = head_of(root)
    with Store(str(root)) as store:
        store_id = store.store_id
    boot = clock.boot_id() if written_in == "this boot" else EARLIER_BOOT
    meta_path.write_bytes(earlier_version_meta(store_id, 2, str(boot)))

    with Store(str(root)) as store:
        assert store.head_seq == head
        seqs = next_writer(store)

    assert seqs == [head + 1]
    assert not [r for r in journal_records(root) if r["action"] == "seq_repair"]
    assert [r["seq"] for r in journal_records(root)] == list(range(1, head + 2))
    with Store(str(root)) as reopened:
        assert next_writer(reopened) == [head + 2]


def test_a_reader_paging_behind_the_head_reads_each_page_once(tmp_path: Path) -> None:
    """A store opened from a checkpoint has no index of its older groups; a reader paging
    from seq 0 must not re-read the segment from its start for every page (it did: a
    2,000-event history cost quadratic reads and 4x the decoding)."""
    from journal_core import FileIO, doctor

    root = tmp_path / "store"
    with Store(str(root)) as store:
        for number in range(40):
            store.mutate("ann", lambda m, n=number: [
                verbs.remember(m, "note", f"note {n}.{k}", "body") for k in range(50)])
        doctor.compact(store, "ann")  # the next open starts at this checkpoint
    segment_bytes = sum(p.stat().st_size for p in (root / "events").glob("seg-*.jsonl"))
    fileio = FileIO()
    read: list[int] = []
    plain = fileio.pread

    def counted(fd: int, size: int, offset: int, path: str) -> bytes:
        data = plain(fd, size, offset, path)
        read.append(len(data))
        return data

    fileio.pread = counted  # type: ignore[method-assign]
    with Store(str(root), fileio=fileio) as store:
        read.clear()
        events, pages = 0, 0
        while True:
            page = store.read_unseen("bob", limit=100, advance=True)
            events += len(page["events"])
            pages += 1
            if not page["has_more"]:
                break
    assert events == 2000 and pages == 20
    assert sum(read) < 5 * segment_bytes, (sum(read), segment_bytes)


def test_the_duplicate_window_remembers_every_seq_within_it_and_forgets_beyond() -> None:
    """The window is flat arrays grown on demand (a dict of lists held ~45 MB for a long
    scan): what it answers must not change as it grows, wraps or meets a seq twice."""
    from journal_core.scanner import DupWindow

    window = DupWindow(size_max=4096)
    for seq in range(1, 10_001):
        window.add(seq, f"w_{seq % 3}", seq * 7)
    for seq in range(10_000 - 4095, 10_001):  # the last window of seqs: all remembered
        assert window.get(seq) == [(f"w_{seq % 3}", seq * 7)], seq
    assert window.get(10_000 - 4096) == []  # one window back: forgotten
    window.add(9_999, "w_other", 1)  # a second writer at one seq, and the same line again
    window.add(9_999, "w_0", 9_999 * 7)
    assert window.get(9_999) == [("w_0", 9_999 * 7), ("w_other", 1), ("w_0", 9_999 * 7)]
    window.add(9_999 + 4096, "w_next", 5)  # the slot's next owner: the old seq goes whole
    assert window.get(9_999) == [] and window.get(9_999 + 4096) == [("w_next", 5)]
    late = DupWindow(size_max=1024)
    for seq in range(2000, 3024):
        late.add(seq, "w", seq)
    late.add(1500, "w", 1)  # older than the whole (full) window: not kept
    assert late.get(1500) == [] and late.get(2000 + 500) == [("w", 2500)]
    with pytest.raises(ValueError, match="power of two"):
        DupWindow(size_max=1000)
