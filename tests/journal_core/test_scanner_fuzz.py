"""Fuzzing the record reader with hypothesis.

- The codec: any bytes, any JSON value, any damaged record line either decodes to a valid
  record or raises RecordInvalid -- nothing else.
- The journal reader: a real journal, damaged the ways crashes and bugs damage journals
  (garbage lines, sealed torn fragments, blank lines, identical duplicates, a trailing txn
  cut short, a torn final line), yields exactly the undamaged complete txn groups, in order.
- Read incrementally, as the file grows in arbitrary pieces (a reader can see a write half
  done), it yields the same groups as read at once.
- A store whose segment is arbitrary bytes opens (or refuses with a StoreError) and doctor
  diagnoses it without a crash, and neither writes a byte.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.reliability import JournalAudit, audit_journal

from journal_core import Store, StoreError, doctor, verbs
from journal_core.errors import RecordInvalid
from journal_core.fileio import FileIO
from journal_core.local_journal import LocalFollower, LocalJournal
from journal_core.record import decode_envelope, decode_line, encode_record

QUICK = settings(max_examples=120, deadline=None, database=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
LONG = settings(max_examples=3000, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SEGMENT = "seg-000000000001.jsonl"
TORN = b"\0torn:"  # marks the torn final line while a damaged journal is built
Group = list[bytes]  # the lines (without newline) of one txn


# -- a real journal to damage -----------------------------------------------------------------
@pytest.fixture(scope="module")
def journal_groups(tmp_path_factory: pytest.TempPathFactory) -> list[Group]:
    """The txn groups of a small real journal: single- and multi-record txns of every
    entity family, claims with a step, a supersede, a blob-sized handoff."""
    root = tmp_path_factory.mktemp("fuzz") / "store"
    now = datetime(2031, 1, 2, 3, 4, 5, tzinfo=UTC)
    with Store(str(root), now=lambda: now) as store:
        (_, plan), _ = store.mutate("ann", lambda m: verbs.plan_create(m, "p", "g", ["a", "b"]))
        (_, claim), _ = store.mutate("bob", lambda m: verbs.claim(m, f"step:{plan}/s1"))
        store.mutate("bob", lambda m: verbs.complete(m, claim, "done"))
        (_, memory), _ = store.mutate("ann", lambda m: verbs.remember(m, "trap", "t", "b"))
        store.mutate("ann", lambda m: verbs.remember(m, "trap", "t2", "b2", supersedes=memory))
        store.mutate("cy", lambda m: verbs.send_message(m, "*", "hello \u2603 \U0001f600"))
        store.mutate("cy", lambda m: verbs.send_handoff(m, "ann", "s", "x" * 70_000))
        for index in range(6):
            store.mutate("dee", lambda m, i=index: verbs.claim(m, f"file:f{i}.py", 30))
    audit: JournalAudit = audit_journal(root)
    lines = {record["seq"]: orjson.dumps(record) for record in audit.records}
    groups = [[lines[r["seq"]] for r in group] for group in audit.groups()]
    assert any(len(g) > 1 for g in groups) and len(groups) > 10
    return groups


@st.composite
def damaged(draw: st.DrawFn, groups: list[Group]) -> tuple[bytes, list[Group]]:
    """A damaged copy of the journal, and the groups a reader must still yield."""
    out: list[bytes] = []
    expected: list[Group] = []
    for index, group in enumerate(groups):
        for kind in draw(st.lists(st.sampled_from(["garbage", "torn", "blank", "old"]),
                                  max_size=2)):
            out.append(junk(draw, kind, groups[:index] or groups[:1]))
        last = index == len(groups) - 1
        if last and draw(st.booleans()):
            out.extend(cut_tail(draw, group))  # a trailing txn cut short, or a torn line
            break
        out.extend(group)
        expected.append(group)
        if draw(st.integers(0, 5)) == 0:
            out.extend(group)  # an identical duplicate (a replayed append)
    torn = out[-1] if out and out[-1].startswith(TORN) else None
    if torn is not None:
        out.pop()
    data = b"".join(b"\n" + line + b"\n" for line in out)
    if torn is not None:  # a torn final line: no newline after it
        data += b"\n" + torn[len(TORN):]
    return data, expected


def junk(draw: st.DrawFn, kind: str, earlier: list[Group]) -> bytes:
    if kind == "garbage":
        return draw(st.binary(min_size=1, max_size=60).filter(lambda b: b"\n" not in b))
    if kind == "blank":
        return b" " * draw(st.integers(1, 20))  # bytes blanked by doctor --repair
    line = draw(st.sampled_from([line for group in earlier for line in group]))
    if kind == "torn":  # a fragment sealed by the next writer's '#'
        return line[: draw(st.integers(0, len(line)))] + b"#"
    return line  # an old line again: an identical duplicate far from its original


def cut_tail(draw: st.DrawFn, group: Group) -> list[bytes]:
    if len(group) > 1 and draw(st.booleans()):
        return group[: draw(st.integers(1, len(group) - 1))]
    line = group[-1]  # even whole, a final line without its newline was never acknowledged
    return [*group[:-1], TORN + line[: draw(st.integers(1, len(line)))]]


@contextmanager
def reader_on(folder: Path) -> Iterator[LocalFollower]:
    events = folder / "events"
    events.mkdir(exist_ok=True)
    journal = LocalJournal(str(events), str(folder / "lock"), FileIO())
    try:
        yield journal.follower(0)
    finally:
        journal.close()


def yielded(reader: LocalFollower) -> list[Group]:
    return [[orjson.dumps(r) for r in group.records] for group in reader.poll()]


# -- the codec ---------------------------------------------------------------------------------
def decodes_or_refuses(line: bytes) -> None:
    """A line decodes or is refused; one that decodes round-trips: encoded again it
    decodes to the same record, and its envelope read alone (when the fast path takes it)
    is the record without its payload."""
    try:
        record = decode_line(line)
    except RecordInvalid:
        return
    assert isinstance(record, dict) and isinstance(record["seq"], int)
    again = encode_record(record)
    assert decode_line(again) == record
    assert encode_record(decode_line(again)) == again  # the encoding is canonical
    envelope = decode_envelope(again)
    if envelope is not None:
        assert envelope == {key: value for key, value in record.items()
                            if key not in ("payload", "payload_ref")}


@QUICK
@given(st.binary(max_size=400))
def test_any_bytes_decode_to_a_record_or_raise_record_invalid(line: bytes) -> None:
    decodes_or_refuses(line)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12)


@QUICK
@given(st.fixed_dictionaries({}, optional={
    "v": JSON | st.just(1), "seq": JSON | st.integers(-2, 5), "ts": JSON,
    "writer": JSON | st.just("w_1-0123456789ab"), "actor": JSON | st.text(max_size=3),
    "action": JSON | st.sampled_from(["create", "delete", "journal_note", "progress"]),
    "item_type": JSON | st.sampled_from(["plan", "claim", "journal"]),
    "item_id": JSON | st.just("pln_1"), "entity_rev": JSON | st.integers(0, 3),
    "txn": JSON | st.lists(st.integers(-1, 6), max_size=3), "payload": JSON,
    "payload_ref": JSON, "summary": JSON, "origin": JSON}))
def test_any_json_object_decodes_to_a_valid_record_or_raises_record_invalid(
    candidate: dict[str, object],
) -> None:
    decodes_or_refuses(json.dumps(candidate).encode())  # big ints too, unlike orjson


@QUICK
@given(st.data())
def test_a_damaged_record_line_decodes_or_raises_record_invalid(
    journal_groups: list[Group], data: st.DataObject,
) -> None:
    line = bytearray(data.draw(st.sampled_from([ln for g in journal_groups for ln in g])))
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(line) - 1))
        action = data.draw(st.sampled_from(["flip", "cut", "insert", "delete"]))
        if action == "flip":
            line[at] ^= 1 << data.draw(st.integers(0, 7))
        elif action == "cut":
            del line[at:]
        elif action == "insert":
            line[at:at] = data.draw(st.binary(min_size=1, max_size=4))
        else:
            del line[at]
        if not line:
            break
    decodes_or_refuses(bytes(line))


# -- the reader --------------------------------------------------------------------------------
def check_damaged_journal_yields_the_undamaged_groups(
    journal_groups: list[Group], data: st.DataObject,
) -> None:
    content, expected = data.draw(damaged(journal_groups))
    with tempfile.TemporaryDirectory(prefix="fuzz-reader-") as scratch, \
            reader_on(Path(scratch)) as reader:
        (Path(scratch) / "events" / SEGMENT).write_bytes(content)
        assert yielded(reader) == expected


@QUICK
@given(st.data())
def test_a_damaged_journal_yields_exactly_its_undamaged_complete_txns(
    journal_groups: list[Group], data: st.DataObject,
) -> None:
    check_damaged_journal_yields_the_undamaged_groups(journal_groups, data)


@pytest.mark.long
@LONG
@given(st.data())
def test_many_damaged_journals_yield_exactly_their_undamaged_complete_txns(
    journal_groups: list[Group], data: st.DataObject,
) -> None:
    check_damaged_journal_yields_the_undamaged_groups(journal_groups, data)


@QUICK
@given(st.data())
def test_reading_a_growing_file_in_arbitrary_pieces_yields_what_one_read_yields(
    journal_groups: list[Group], data: st.DataObject,
) -> None:
    content, expected = data.draw(damaged(journal_groups))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(content)), max_size=12)))
    with tempfile.TemporaryDirectory(prefix="fuzz-reader-") as scratch, \
            reader_on(Path(scratch)) as reader:
        path = Path(scratch) / "events" / SEGMENT
        got: list[Group] = []
        for end in [*cuts, len(content)]:
            path.write_bytes(content[:end])  # the file as a reader may see it mid-write
            got += yielded(reader)
        assert got == expected


# -- whole stores on arbitrary bytes -------------------------------------------------------------
@pytest.fixture(scope="module")
def empty_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fuzz-store") / "store"
    Store(str(root)).close()
    return root


def store_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != "lock"}


@QUICK
@given(st.data())
def test_a_store_on_arbitrary_segment_bytes_opens_or_refuses_and_writes_nothing(
    empty_store: Path, journal_groups: list[Group], data: st.DataObject,
) -> None:
    pieces = data.draw(st.lists(
        st.sampled_from([ln for g in journal_groups for ln in g]) | st.binary(max_size=80),
        max_size=12))
    content = b"\n".join(pieces) + data.draw(st.sampled_from([b"", b"\n"]))
    with tempfile.TemporaryDirectory(prefix="fuzz-store-") as scratch:
        root = Path(scratch) / "store"
        os.makedirs(root)
        for name in ("store.json", "state", "events/meta.json"):
            source = empty_store / name
            if not source.exists():
                continue
            if source.is_dir():
                for family in os.listdir(source):
                    (root / name / family).mkdir(parents=True)
            else:
                (root / name).parent.mkdir(parents=True, exist_ok=True)
                (root / name).write_bytes(source.read_bytes())
        (root / "events").mkdir(exist_ok=True)
        (root / "events" / SEGMENT).write_bytes(content)
        before = store_bytes(root)
        try:
            store = Store(str(root), create=False)
        except StoreError:
            assert store_bytes(root) == before
            return
        try:
            report = doctor.diagnose(store, verify_journal=True)
            assert report.exit_code in (0, 1)
        except StoreError:
            pass
        finally:
            store.close()
        assert store_bytes(root) == before
