"""The journal contract: one suite, run against every backend (docs/design.md, "The
journal"). Each backend comes as a ``Backing``: ``open()`` gives a new handle on the same
journal (another process's view of one store), ``damage()`` leaves a txn short the way a
writer killed mid-append would, where the backend can be damaged that way.

Run against the local segment files, the trivial in-memory backend of tests/support (the
proof that the interface is a seam), and PostgreSQL when one is reachable.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support.engine import WRITER_A, framed, line_of, memory_record
from support.memory_backend import MemoryJournal, SharedLog
from support.postgres import drop_store, new_store_name, require_postgres, store_url

from journal_core import LockTimeout, limits
from journal_core.commit import meta_record
from journal_core.fileio import FileIO
from journal_core.journal import Journal, TxnGroup
from journal_core.local_journal import LocalJournal

Record = dict[str, Any]
NOW = None


@dataclass
class Backing:
    name: str
    open: Callable[[], Journal]
    damage: Callable[[list[Record]], None] | None  # append a txn cut short, if it can
    cleanup: Callable[[], object] | None = None  # removes what the backing made


def local_backing(tmp_path: Path) -> Backing:
    events = tmp_path / "events"

    def open_journal() -> Journal:
        return LocalJournal(str(events), str(tmp_path / "lock"), FileIO())

    def damage(records: list[Record]) -> None:
        segment = sorted(events.glob("seg-*.jsonl"))[-1]
        with open(segment, "ab") as handle:
            handle.write(framed(*[line_of(r) for r in records]))

    return Backing("local", open_journal, damage)


def memory_backing(tmp_path: Path) -> Backing:
    log = SharedLog()
    return Backing("memory", lambda: MemoryJournal(log), None)


def postgresql_backing(tmp_path: Path) -> Backing:
    """A store of the test's own in the test database (its schema dropped afterwards)."""
    from journal_core.pg_journal import PgJournal
    from journal_core.pg_schema import ensure_schema
    from journal_core.store_url import parse_store_url

    url = parse_store_url(store_url(tmp_path.name.replace("-", "_")[:20].lower()
                                    + "_" + new_store_name()))
    handles: list[PgJournal] = []

    def open_journal() -> Journal:
        handle = PgJournal(url)
        if not handles:
            handle.pool.run(lambda conn: ensure_schema(conn, url.store, url.where))
        handles.append(handle)
        return handle

    backing = Backing("postgresql", open_journal, None)
    backing.cleanup = lambda: (drop_store(url.store), [h.close() for h in handles])
    return backing


BACKINGS: dict[str, Callable[[Path], Backing]] = {"local": local_backing,
                                                 "memory": memory_backing,
                                                 "postgresql": postgresql_backing}


@pytest.fixture(params=sorted(BACKINGS))
def backing(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backing]:
    if request.param == "postgresql":
        require_postgres()
    made = BACKINGS[request.param](tmp_path)
    yield made
    if made.cleanup is not None:
        made.cleanup()


def start(journal: Journal) -> bool:
    with journal.transaction("agentjournal", limits.lock_wait_s_default) as txn:
        return txn.start(1, [genesis()])


@pytest.fixture
def journal(backing: Backing) -> Iterator[Journal]:
    opened = backing.open()
    assert opened.is_empty()
    assert start(opened)
    yield opened
    opened.close()


def genesis() -> Record:
    from journal_core import clock

    return meta_record(1, (1, 1), "agentjournal", "journal_note", {"kind": "genesis"},
                       "store created", clock.utc_now())


def entity_group(first: int, count: int, title: str = "t") -> list[Record]:
    """A txn of ``count`` memory records, as a writer builds it."""
    return [memory_record(first + i, WRITER_A, f"mem_{first + i:06d}", 1, f"{title} {i}",
                          txn=(first, count)) for i in range(count)]


def commit(journal: Journal, groups: Callable[[int], list[list[Record]]],
           wait_s: float = limits.lock_wait_s_default) -> list[TxnGroup]:
    """One transaction: catch up a fresh follower, append what ``groups(next_seq)`` gives."""
    follower = journal.follower(0)
    with journal.transaction("writer", wait_s) as txn:
        seen = txn.catch_up(follower)
        txn.append(groups(txn.next_seq))
    return seen


def seqs(groups: list[TxnGroup]) -> list[list[int]]:
    return [[r["seq"] for r in g.records] for g in groups]


# -- the contract -----------------------------------------------------------------------
def test_a_new_journal_is_empty_and_starts_once(backing: Backing) -> None:
    first = backing.open()
    assert first.is_empty() and first.head_seq() == 0
    assert start(first) is True
    second = backing.open()
    assert start(second) is False  # started already: by anyone
    second.close()
    assert not first.is_empty() and first.head_seq() == 1 and first.oldest_seq() == 1
    first.close()


def test_appended_txns_come_back_whole_and_in_order_through_scan_and_a_follower(
    journal: Journal,
) -> None:
    commit(journal, lambda first: [entity_group(first, 1), entity_group(first + 1, 3)])
    assert journal.head_seq() == 5
    assert seqs(list(journal.scan(0))) == [[1], [2], [3, 4, 5]]
    assert seqs(journal.follower(0).poll()) == [[1], [2], [3, 4, 5]]
    assert [r["item_id"] for r in next(iter(journal.scan(2))).records] == [
        "mem_000003", "mem_000004", "mem_000005"]


def test_a_follower_delivers_each_txn_once_across_polls(journal: Journal) -> None:
    follower = journal.follower(0)
    assert seqs(follower.poll()) == [[1]]
    assert follower.poll() == [] and follower.caught_up() and follower.head_seq == 1
    commit(journal, lambda first: [entity_group(first, 2)])
    assert seqs(follower.poll()) == [[2, 3]]
    assert follower.poll() == []


def test_catch_up_brings_in_what_another_handle_appended_and_next_seq_follows_it(
    backing: Backing, journal: Journal,
) -> None:
    other = backing.open()
    follower = journal.follower(0)
    follower.poll()
    commit(other, lambda first: [entity_group(first, 2)])
    with journal.transaction("me", limits.lock_wait_s_default) as txn:
        assert seqs(txn.catch_up(follower)) == [[2, 3]]
        assert txn.next_seq == 4
        txn.append([entity_group(4, 1)])
    other.close()
    assert seqs(list(journal.scan(3))) == [[4]]


def test_handles_appending_at_once_serialize_and_never_share_a_seq(
    backing: Backing, journal: Journal,
) -> None:
    handles = [backing.open() for _ in range(4)]
    errors: list[BaseException] = []

    def writer(handle: Journal) -> None:
        try:
            for _ in range(25):
                commit(handle, lambda first: [entity_group(first, 2)])
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(h,)) for h in handles]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    all_seqs = [s for g in journal.scan(0) for s in (r["seq"] for r in g.records)]
    assert all_seqs == list(range(1, 1 + 1 + 4 * 25 * 2))
    for handle in handles:
        handle.close()


def test_a_held_lock_times_out_another_handle_with_the_holder_named(
    backing: Backing, journal: Journal,
) -> None:
    other = backing.open()
    with journal.transaction("holder#1", limits.lock_wait_s_default), \
            pytest.raises(LockTimeout) as timeout, other.transaction("waiter", 0.05):
        raise AssertionError("the lock was shared")
    assert timeout.value.holder is None or timeout.value.holder.get("actor") == "holder#1"
    with other.transaction("waiter", limits.lock_wait_s_default):
        pass  # free again
    other.close()


def test_a_batch_whose_seqs_do_not_follow_the_tail_is_refused(journal: Journal) -> None:
    follower = journal.follower(0)
    with journal.transaction("writer", limits.lock_wait_s_default) as txn:
        txn.catch_up(follower)
        with pytest.raises(Exception, match="seq"):
            txn.append([entity_group(txn.next_seq + 1, 1)])
    assert journal.head_seq() == 1


def test_scan_after_a_seq_leaves_out_what_is_at_or_below_it(journal: Journal) -> None:
    commit(journal, lambda first: [entity_group(first, 4)])
    assert seqs(list(journal.scan(3))) == [[4, 5]]  # the txn's records after the seq
    assert list(journal.scan(5)) == []


def test_an_envelope_only_scan_keeps_every_envelope_field(journal: Journal) -> None:
    commit(journal, lambda first: [entity_group(first, 1)])
    full = next(iter(journal.scan(1))).records[0]
    light = next(iter(journal.scan(1, envelope_only=True))).records[0]
    envelope = {k: v for k, v in full.items() if k not in ("payload", "payload_ref")}
    assert {k: v for k, v in light.items() if k in envelope} == envelope


def test_a_follower_from_a_checkpoint_hint_starts_right_after_the_cut(journal: Journal) -> None:
    commit(journal, lambda first: [entity_group(first, 2)])
    follower = journal.follower(0)
    with journal.transaction("writer", limits.lock_wait_s_default) as txn:
        txn.catch_up(follower)
        cut = txn.cut_for_checkpoint()
        head = follower.head_seq
        hint = follower.checkpoint_hint()
        txn.append([entity_group(txn.next_seq, 1)])
    assert all(g.last_seq <= head for g in cut)
    after = journal.follower(head, hint)
    assert [r["seq"] for g in after.poll() for r in g.records] == [head + 1]


def test_archive_through_moves_the_oldest_seq_and_scans_from_before_start_there(
    journal: Journal,
) -> None:
    follower = journal.follower(0)
    for _ in range(3):  # three cuts, so older parts can go
        with journal.transaction("writer", limits.lock_wait_s_default) as txn:
            txn.catch_up(follower)
            txn.cut_for_checkpoint()
            txn.append([entity_group(txn.next_seq, 2)])
    head = journal.head_seq()
    with journal.transaction("gc", limits.lock_wait_s_default):
        journal.archive_through(head - 3, "gc")
    oldest = journal.oldest_seq()
    assert 1 < oldest <= head - 2
    kept = [r["seq"] for g in journal.scan(0) for r in g.records]
    assert kept and kept[0] >= oldest - 1 and kept[-1] == head


def test_redact_rewrites_records_in_place_keeping_seq_writer_and_txn(journal: Journal) -> None:
    commit(journal, lambda first: [entity_group(first, 2, title="secret")])

    def rewrite(record: Record, width: int | None) -> Record:
        return {**record, "payload": {**record["payload"], "title": "x"}}

    with journal.transaction("ops", limits.lock_wait_s_default):
        assert journal.redact({2}, rewrite, "ops") == [2]
    found = {r["seq"]: r for g in journal.scan(0) for r in g.records}
    assert found[2]["payload"]["title"] == "x" and found[3]["payload"]["title"] == "secret 1"
    assert (found[2]["writer"], found[2]["txn"]) == (WRITER_A, [2, 2])
    assert [r["seq"] for r in journal.records_at({2, 3})] == [2, 3]


def test_a_txn_cut_short_by_a_crashed_writer_is_never_delivered(
    backing: Backing, journal: Journal,
) -> None:
    if backing.damage is None:
        pytest.skip(f"{backing.name}: a txn is atomic there; it cannot be cut short")
    follower = journal.follower(0)
    follower.poll()
    backing.damage(entity_group(2, 3)[:2])  # two of three records, then the writer died
    assert follower.poll() == []  # pending: maybe still in flight
    assert list(journal.scan(1)) == []
    with journal.transaction("next", limits.lock_wait_s_default) as txn:
        noted = txn.catch_up(follower)  # the next writer decides it: dropped, and noted
        assert [r["payload"]["kind"] for g in noted for r in g.records] == ["incomplete_txn"]
        assert txn.next_seq == noted[-1].last_seq + 1 > 3  # its seqs are never reused
