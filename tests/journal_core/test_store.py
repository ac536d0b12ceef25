"""Reading: unseen events and cursors, and the fresh path under a lock
held elsewhere.

- ``read_unseen`` does not move the cursor, hides the reader's own records (by actor id,
  never by a display name), pages with ``has_more``; ``ack`` moves the cursor forward only.
- Reads never wait for the lock: while another Store or another process holds it, and a
  writer thread of the reader's own process waits for it, a read answers at once from the
  journal (not from projections), and writes nothing. Projections a failed cache write
  left behind are healed by the next writer.
"""

from __future__ import annotations

import select
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from support.engine import Clock, projection, script_env

from journal_core import (
    FileIO,
    InvalidArgument,
    JournalReplaced,
    Store,
    StoreConfig,
    doctor,
    verbs,
)

HOLD_WAIT_S = 30.0
HOLDER = """
import sys
from journal_core.lock import StoreLock
lock = StoreLock(sys.argv[1])
lock.acquire("holder-process")
print("HELD", flush=True)
sys.stdin.readline()
"""


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(str(tmp_path / "store"), now=Clock()) as opened:
        yield opened


def remember(store: Store, actor: str, title: str) -> int:
    _, committed = store.mutate(actor, lambda m: verbs.remember(m, "note", title, "b"))
    return committed.first_seq


# -- read_unseen and ack ---------------------------------------------------------------------
def test_read_unseen_does_not_move_the_cursor(store: Store) -> None:
    seqs = [remember(store, "claude-code#2", f"n{i}") for i in range(3)]

    first = store.read_unseen("claude-code#1", limit=10)
    again = store.read_unseen("claude-code#1", limit=10)

    assert [e["seq"] for e in first["events"]] == seqs
    assert again == first
    assert store.cursors.get("claude-code#1") == 0


def test_read_unseen_hides_the_readers_own_records_by_actor_not_by_name(store: Store) -> None:
    """Two instances of one client share a display name; each sees the other's records."""
    mine = remember(store, "claude-code#1", "mine")
    theirs = remember(store, "claude-code#2", "theirs")

    seen_by_1 = store.read_unseen("claude-code#1", limit=10)
    seen_by_2 = store.read_unseen("claude-code#2", limit=10)

    assert [e["seq"] for e in seen_by_1["events"]] == [theirs]
    assert [e["seq"] for e in seen_by_2["events"]] == [mine]
    assert seen_by_1["last_seq"] == seen_by_2["last_seq"] == store.head_seq


def test_read_unseen_pages_and_ack_advances_the_cursor_past_each_page(store: Store) -> None:
    theirs = []
    for index in range(5):
        theirs.append(remember(store, "ann", f"n{index}"))
        remember(store, "bob", f"own {index}")  # the reader's own: never an event
    pages = []
    while True:
        page = store.read_unseen("bob", limit=2)
        pages.append([e["seq"] for e in page["events"]])
        assert page["next_seq"] == page["last_seq"] + 1
        assert store.ack("bob", page["last_seq"]) == page["last_seq"]
        if not page["has_more"]:
            break
        # The seq to ack: at least the last event, and short of the next one (it may
        # run on over the reader's own records in between).
        assert page["events"][-1]["seq"] <= page["last_seq"] < theirs[len(pages) * 2]

    assert pages == [theirs[0:2], theirs[2:4], theirs[4:5]]
    assert store.cursors.get("bob") == store.head_seq
    assert store.read_unseen("bob", limit=2)["events"] == []


def test_ack_never_moves_the_cursor_back_and_refuses_a_seq_past_the_head(store: Store) -> None:
    remember(store, "ann", "one")
    head = store.head_seq

    assert store.ack("bob", head) == head
    assert store.ack("bob", 1) == head
    with pytest.raises(InvalidArgument, match="past the head"):
        store.ack("bob", head + 1)
    assert store.cursors.get("bob") == head


def test_read_unseen_with_advance_moves_the_cursor_to_what_it_returned(store: Store) -> None:
    seqs = [remember(store, "ann", f"n{i}") for i in range(3)]

    page = store.read_unseen("bob", limit=2, advance=True)

    assert [e["seq"] for e in page["events"]] == seqs[:2]
    assert store.cursors.get("bob") == seqs[1]
    assert [e["seq"] for e in store.read_unseen("bob", limit=2)["events"]] == seqs[2:]


# -- stale reads under a lock held elsewhere ------------------------------------------------------
@contextmanager
def lock_held_by_another_store(root: Path) -> Iterator[None]:
    with Store(str(root)) as holder:
        holder.journal.lock.acquire("holder")
        try:
            yield
        finally:
            holder.journal.lock.release()


@contextmanager
def lock_held_by_another_process(root: Path) -> Iterator[None]:
    child = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(root / "lock")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=script_env(),
    )
    assert child.stdin is not None and child.stdout is not None
    try:
        ready, _, _ = select.select([child.stdout], [], [], HOLD_WAIT_S)
        assert ready and child.stdout.readline() == b"HELD\n"
        yield
    finally:
        child.stdin.close()  # the child exits, and its lock goes with it
        child.wait(timeout=HOLD_WAIT_S)
        child.stdout.close()


def journaled_but_not_projected(root: Path) -> tuple[str, str]:
    """A memory item and a claim whose latest changes (archived, released) reached the
    journal while their projections and meta.json did not (the writes failed)."""
    with Store(str(root)) as store:
        (_, memory_id), _ = store.mutate("ann", lambda m: verbs.remember(m, "note", "t", "b"))
        (_, claim_id), _ = store.mutate("ann", lambda m: verbs.claim(m, "file:a.py"))
    fileio = FileIO()
    with Store(str(root), fileio=fileio) as writer:
        fileio.observer = fail_projection_writes
        # Appended (one txn), then no projection written: a cache miss, not a failure.
        writer.mutate("ann", lambda m: (verbs.forget(m, memory_id), verbs.release(m, claim_id)))
    with Store(str(root)) as cold:  # the txn is in the journal: a cold open sees it
        assert cold.state.claims.active_ids() == set()
    return memory_id, claim_id


def fail_projection_writes(op: str, path: str) -> None:
    if op == "write_file" and "/state/" in path:
        raise OSError(5, "injected", path)


@pytest.mark.parametrize(
    "held_by", [lock_held_by_another_store, lock_held_by_another_process], ids=["store", "process"]
)
def test_a_read_while_the_lock_is_held_elsewhere_and_awaited_here_answers_from_the_journal(
    tmp_path: Path, held_by: object
) -> None:
    assert callable(held_by)
    root = tmp_path / "store"
    memory_id, claim_id = journaled_but_not_projected(root)
    behind = projection(root, "memory", memory_id)

    with Store(str(root)) as reader:
        with held_by(root):
            waiting = threading.Thread(target=lambda: reader.mutate(
                "zed", lambda m: verbs.remember(m, "note", "waits", "x"),
                lock_wait_s=HOLD_WAIT_S))
            waiting.start()
            wait_until(lambda: reader.committer.waiting_for_lock())
            answers: list[object] = []
            read = threading.Thread(target=lambda: answers.extend([
                reader.entity_view("memory", memory_id), reader.entities("memory"),
                reader.entity_view("claim", claim_id), reader.entities("claim")]))
            read.start()
            read.join(HOLD_WAIT_S / 2)  # the holder still holds the lock: we have not let go
            assert not read.is_alive(), "a read waited behind the writer"
            memory, (memories, memories_stale), claim, (claims, claims_stale) = answers  # type: ignore[misc]
            assert claims_stale is False

            assert memory["stale"] is False and memories_stale is False  # type: ignore[index]
            assert memory["entity"]["status"] == "archived"  # type: ignore[index]  # the journal's
            assert [m["entity"]["status"] for m in memories] == ["archived"]  # type: ignore[attr-defined]
            assert claim["entity"]["status"] == "released"  # type: ignore[index]
            assert [c["entity"]["status"] for c in claims] == ["released"]  # type: ignore[attr-defined]
            assert projection(root, "memory", memory_id) == behind  # reads wrote nothing
        waiting.join(HOLD_WAIT_S)
        assert not waiting.is_alive()
    # The writer that waited committed once the lock was free, and healed the projections.
    assert projection(root, "memory", memory_id)["payload"]["status"] == "archived"  # type: ignore[index]
    assert projection(root, "claim", claim_id)["payload"]["status"] == "released"  # type: ignore[index]


def wait_until(condition: Callable[[], bool], timeout_s: float = HOLD_WAIT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.01)


def busy_store(root: Path) -> Store:
    """Txns of one and of two records (claim, then complete: claim + plan step), over
    several segments."""
    store = Store(str(root), StoreConfig(segment_bytes_max=4_000), now=Clock())
    (_, plan_id), _ = store.mutate("planner", lambda m: verbs.plan_create(
        m, "plan", "goal", [f"step {n}" for n in range(1, 9)]))
    for number in range(1, 9):
        (_, claim_id), _ = store.mutate("worker", lambda m, n=number: verbs.claim(
            m, f"step:{plan_id}/s{n}", 600))
        store.mutate("worker", lambda m, c=claim_id: verbs.complete(m, c, "done"))
        for index in range(3):
            remember(store, "worker", f"note {number}.{index}")
    return store


def test_paging_through_read_unseen_returns_every_event_once_in_order(tmp_path: Path) -> None:
    """Each page starts where the previous one stopped, across txns of several records and
    segment rolls."""
    with busy_store(tmp_path / "store") as store:
        everything = store.read_unseen("reader#1", limit=1000)
        assert not everything["has_more"] and len(everything["events"]) > 50
        assert len(store.journal.segments()) > 3

        paged: list[int] = []
        for limit in [7, 1, 2, 5, 3] * 100:
            page = store.read_unseen("reader#2", limit=limit, advance=True)
            paged += [event["seq"] for event in page["events"]]
            if not page["has_more"]:
                break

        assert paged == [event["seq"] for event in everything["events"]]


def test_a_page_after_gc_archived_the_next_position_reports_the_gap(tmp_path: Path) -> None:
    with busy_store(tmp_path / "store") as store:
        first = store.read_unseen("reader", limit=5, advance=True)
        assert first["has_more"]
        store.compact("operator")
        assert doctor.gc(store, "operator")

        after = store.read_unseen("reader", limit=5)

        assert after["gap"] and after["gap_summary"]["missed_from_seq"] == first["next_seq"]
        assert after["events"][0]["seq"] >= after["gap_summary"]["oldest_kept_seq"]


def test_a_segment_deleted_under_an_open_store_refuses_the_next_write_and_writes_nothing(
    tmp_path: Path,
) -> None:
    """The journal's machine files deleted while a server runs (``git clean -fdx`` of a
    store kept in the working tree): the writer must not acknowledge a write into an
    unlinked file -- it says so, and nothing is written anywhere."""
    root = tmp_path / "store"
    with Store(str(root)) as store:
        remember(store, "ann", "before")
        for segment in (root / "events").glob("seg-*.jsonl"):
            segment.unlink()
        with pytest.raises(JournalReplaced, match="nothing was written"):
            remember(store, "ann", "into a deleted file")
        assert not list((root / "events").glob("seg-*.jsonl"))
