"""The store lock: a bounded wait that names the holder, waiters that sleep in the
kernel, and waits given up that never keep the lock.

Two StoreLock objects in one process conflict exactly as two processes do (each holds its
own open file description of ``lock``), so these tests need no subprocess.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from journal_core import LockTimeout
from journal_core.lock import StoreLock

Opener = Callable[[], StoreLock]


@pytest.fixture
def new_lock(tmp_path: Path) -> Iterator[Opener]:
    """StoreLocks on one lock file, closed at the end of the test."""
    opened: list[StoreLock] = []

    def open_lock() -> StoreLock:
        opened.append(StoreLock(str(tmp_path / "lock")))
        return opened[-1]

    yield open_lock
    for lock in opened:
        lock.close()


def test_a_timed_out_wait_names_the_holder(new_lock: Opener) -> None:
    holder, waiter = new_lock(), new_lock()
    holder.acquire("claude-code#1")
    with pytest.raises(LockTimeout) as raised:
        waiter.acquire("cursor#2", 0.05)
    assert raised.value.holder is not None
    assert raised.value.holder["actor"] == "claude-code#1"
    assert raised.value.holder["pid"] == os.getpid()
    assert "claude-code#1" in str(raised.value)
    holder.release()


def test_a_wait_given_up_never_keeps_the_lock(new_lock: Opener) -> None:
    """The thread of an abandoned wait gets the flock when the holder lets go; it must let
    it go at once, or every later acquirer in every process times out."""
    holder, quitter, later = new_lock(), new_lock(), new_lock()
    holder.acquire("a")
    for _ in range(3):
        with pytest.raises(LockTimeout):
            quitter.acquire("b", 0.02)
    holder.release()
    assert later.acquire("c", 5.0)
    later.release()
    assert quitter.acquire("b", 5.0)  # and the one that gave up can come back
    quitter.release()
    # (bounded, not a non-blocking probe: an abandoned wait's thread may hold the flock for
    # the instant between getting it and letting it go)
    assert holder.acquire("a", 5.0)
    holder.release()


def test_a_waiter_gets_the_lock_when_the_holder_lets_go(new_lock: Opener) -> None:
    holder, waiter = new_lock(), new_lock()
    got, let_go = threading.Event(), threading.Event()

    def wait_then_hold() -> None:
        waiter.acquire("b", 30.0)
        got.set()
        let_go.wait(30.0)
        waiter.release()

    holder.acquire("a")
    waiting = threading.Thread(target=wait_then_hold)
    waiting.start()
    assert not got.wait(0.2)
    holder.release()
    assert got.wait(30.0)
    assert not holder.acquire("a", 0, block=False)  # the waiter holds it now
    let_go.set()
    waiting.join(30.0)
    assert holder.acquire("a", 0, block=False)
    holder.release()


def test_the_lock_is_reentrant_within_a_thread(new_lock: Opener) -> None:
    lock, other = new_lock(), new_lock()
    lock.acquire("a")
    lock.acquire("a")
    lock.release()
    assert not other.acquire("b", 0, block=False)
    lock.release()
    assert other.acquire("b", 0, block=False)
    other.release()


def test_retries_against_a_holder_that_never_lets_go_wait_in_one_thread(
    new_lock: Opener,
) -> None:
    """Each given-up wait leaves a thread blocked in flock; the next try takes it over."""
    holder, waiter = new_lock(), new_lock()
    holder.acquire("stuck")
    before = lock_wait_threads()
    for _ in range(5):
        with pytest.raises(LockTimeout):
            waiter.acquire("retrying", 0.02)
    assert lock_wait_threads() == before + 1
    holder.release()
    assert waiter.acquire("retrying", 5.0)  # the adopted wait gets it
    waiter.release()
    assert holder.acquire("stuck", 0, block=False)
    holder.release()


def lock_wait_threads() -> int:
    return sum(1 for thread in threading.enumerate() if thread.name == "agentjournal-lock-wait")


def test_a_lock_file_replaced_under_a_holder_is_retaken_on_the_file_there_now(
    tmp_path: Path,
) -> None:
    """``git clean`` deleted the lock file: a process still holding the old file open must
    not believe it holds the store's lock while another process holds the new file."""
    path = str(tmp_path / "lock")
    old = StoreLock(path)
    assert old.acquire("old", 1.0)
    old.release()  # it keeps its descriptor on the file it opened
    os.unlink(path)  # git clean -fdx
    new = StoreLock(path)
    assert new.acquire("new", 1.0)  # creates the new lock file and holds it
    try:
        with pytest.raises(LockTimeout):
            old.acquire("old", 0.2)  # the old inode is free, but it is not the lock any more
    finally:
        new.release()
    assert old.acquire("old", 1.0) and old.retaken == 1  # retaken on the new file
    old.release()
    old.close()
    new.close()
