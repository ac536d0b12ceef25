"""The change watcher (watch.py): a commit through another open store wakes a waiter --
through inotify, and through the polling fallback -- a roll's new segment does too, closing
wakes every waiter, and waiters of one store share one watcher. Waits are bounded; a wait
that returns the same counter it was given timed out, which is what these tests rule out."""

from __future__ import annotations

import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from journal_core import Store, verbs
from journal_core.inotify import IN_CREATE, IN_MODIFY, parse_events
from journal_core.watch import JournalWatcher, watcher_for

WAKE_S = 10.0  # bound of a wait that a change must end
POLL_S = 0.05  # the polling fallback's interval in these tests


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(str(tmp_path / "store")) as opened:
        yield opened



def write_message(store: Store, body: str = "hello") -> None:
    store.mutate("alice", lambda m: verbs.send_message(m, "bob", body))


def test_a_commit_through_another_open_store_wakes_a_waiter(tmp_path: Path) -> None:
    root = str(tmp_path / "store")
    with Store(root) as writer, Store(root) as reader:
        watcher = watcher_for(reader.backend)
        assert watcher.mechanism == "inotify"
        token = watcher.changes()
        write_message(writer)
        assert watcher.wait(token, WAKE_S) > token


def test_the_polling_fallback_sees_a_commit_through_another_open_store(tmp_path: Path) -> None:
    root = str(tmp_path / "store")
    with Store(root) as writer, Store(root) as reader:
        backend = reader.backend
        watcher = JournalWatcher(backend.events_dir, backend._journal_probe,  # type: ignore[attr-defined]
                                 poll_s=POLL_S, use_inotify=False)
        try:
            assert watcher.mechanism == "polling"
            token = watcher.changes()
            write_message(writer)
            assert watcher.wait(token, WAKE_S) > token
        finally:
            watcher.close()


def test_a_roll_to_a_new_segment_wakes_a_waiter(tmp_path: Path) -> None:
    root = str(tmp_path / "store")
    with Store(root) as writer, Store(root) as reader:
        watcher = watcher_for(reader.backend)
        token = watcher.changes()
        writer.append_notes("operator", [], roll=True)
        assert watcher.wait(token, WAKE_S) > token
        reader.refresh()
        assert reader.head_seq == writer.head_seq


def test_files_beside_the_segments_wake_nobody(tmp_path: Path) -> None:
    root = str(tmp_path / "store")
    with Store(root) as store:
        watcher = watcher_for(store.backend)
        token = watcher.changes()
        (Path(store.events_dir) / "meta.json.tmp").write_bytes(b"{}")
        write_message(store)  # a segment write after it: the one change counted
        woke = watcher.wait(token, WAKE_S)
        assert woke == token + 1


def test_one_store_has_one_watcher_shared_by_every_waiter(store: Store) -> None:
    assert watcher_for(store.backend) is watcher_for(store.backend)


@pytest.mark.anyio
async def test_many_async_waiters_are_woken_by_one_commit(store: Store) -> None:
    watcher = watcher_for(store.backend)
    token = watcher.changes()
    woken: list[int] = []

    async def wait_once() -> None:
        woken.append(await watcher.wait_async(token, WAKE_S))

    with anyio.fail_after(WAKE_S):
        async with anyio.create_task_group() as group:
            for _ in range(20):
                group.start_soon(wait_once)
            while watcher.waiting() < 20:
                await anyio.lowlevel.checkpoint()
            await anyio.to_thread.run_sync(write_message, store)
    assert len(woken) == 20 and all(count > token for count in woken)
    assert watcher.waiting() == 0


def test_closing_the_store_wakes_a_waiter_and_stops_the_watcher(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "store"))
    watcher = watcher_for(store.backend)
    token = watcher.changes()
    store.close()
    assert watcher.wait(token, WAKE_S) >= token  # returns at once: nothing to wait for
    assert not [t for t in threading.enumerate() if t is getattr(watcher, "_thread", None)]


def test_inotify_records_are_parsed_with_their_padded_names() -> None:
    name = b"seg-000000000001.jsonl"
    padded = name + b"\0" * (32 - len(name))
    data = struct.pack("iIII", 1, IN_MODIFY, 0, len(padded)) + padded
    data += struct.pack("iIII", 1, IN_CREATE, 0, 0)
    events = parse_events(data)
    assert [(e.mask, e.name) for e in events] == [(IN_MODIFY, name.decode()), (IN_CREATE, "")]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
