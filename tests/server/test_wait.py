"""The ``wait`` tool: a bounded long-poll of unseen events, woken by the store's change
watcher (a commit by any process), never by a timer.

Two real stdio servers show it across processes; the in-memory client shows progress
notifications, item_types and cancellation. Every test is bounded by ``anyio.fail_after``
and none asserts a duration beyond "before the timeout".
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from agentjournal.app import build_server
from mcp import Client
from mcp.types import Implementation
from support.mcp import SUBPROCESS_TEST_S, call, stdio_server

from journal_core import Store, limits, verbs
from journal_core.watch import watcher_for

pytestmark = pytest.mark.anyio

TEST_S = 30  # bound of one in-memory test
LONG_WAIT_S = 20  # a wait that must be ended by something else than its timeout
SEND_AFTER_S = 0.3  # the writer writes this long after the waiter started waiting


def as_bob(store: Store) -> Client:
    return Client(build_server(store), client_info=Implementation(name="bob", version="0"),
                  cache=None)


async def wait_started(client: Client, started: anyio.Event, **arguments: Any) -> Any:
    """Call wait, setting ``started`` at its first progress notification (sent as the
    wait begins to sleep)."""
    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        started.set()

    return await client.call_tool("wait", arguments, progress_callback=on_progress)


async def while_waiting(client: Client, act: Callable[[], Awaitable[None]],
                        **arguments: Any) -> dict[str, Any]:
    """A wait, with ``act`` run once the wait is under way; the wait's answer."""
    started = anyio.Event()
    answer: dict[str, Any] = {}

    async def waiter() -> None:
        result = await wait_started(client, started, **arguments)
        assert not result.is_error, result.content
        answer.update(result.structured_content or {})

    async with anyio.create_task_group() as group:
        group.start_soon(waiter)
        await started.wait()
        await act()
    return answer


# -- two real stdio servers ---------------------------------------------------------------
async def test_a_wait_in_one_server_returns_a_message_another_server_sends_later(
    store_path: Path, tmp_path: Path,
) -> None:
    with anyio.fail_after(SUBPROCESS_TEST_S):
        async with (
            stdio_server(store_path, tmp_path / "a.err", "--actor", "alice") as alice,
            stdio_server(store_path, tmp_path / "b.err", "--actor", "bob") as bob,
        ):
            async def send_later() -> None:
                await anyio.sleep(SEND_AFTER_S)  # staged: the waiter is asleep by then
                await call(alice, "send", to="bob", body="the parser is yours")

            answer = await while_waiting(bob, send_later, timeout_s=LONG_WAIT_S)
    assert answer["timed_out"] is False
    assert [(e["actor"], e["item_type"]) for e in answer["events"]] == [("alice", "message")]
    assert "the parser is yours" in answer["events"][0]["summary"]


async def test_a_wait_with_nothing_to_see_times_out_and_moves_no_cursor(
    store_path: Path, tmp_path: Path,
) -> None:
    with anyio.fail_after(SUBPROCESS_TEST_S):
        async with (
            stdio_server(store_path, tmp_path / "a.err", "--actor", "alice") as alice,
            stdio_server(store_path, tmp_path / "b.err", "--actor", "bob") as bob,
        ):
            await call(alice, "send", to="bob", body="seen already")
            seen = await call(bob, "read_unseen")
            await call(bob, "ack", up_to_seq=seen["last_seq"])
            answer = await call(bob, "wait", timeout_s=0.5)
            unseen = await call(bob, "read_unseen")
    assert answer["timed_out"] is True and answer["events"] == []
    assert answer["last_seq"] == seen["last_seq"] == unseen["last_seq"]


async def test_a_wait_never_returns_the_waiters_own_events(
    store_path: Path, tmp_path: Path,
) -> None:
    with anyio.fail_after(SUBPROCESS_TEST_S):
        async with (
            stdio_server(store_path, tmp_path / "b1.err", "--actor", "bob") as bob,
            stdio_server(store_path, tmp_path / "b2.err", "--actor", "bob") as bob_again,
        ):
            async def write_as_bob() -> None:
                await call(bob, "remember", kind="note", title="mine", body="my own note")
                await call(bob_again, "claim", target="file:src/mine.py")

            answer = await while_waiting(bob, write_as_bob, timeout_s=2)
            head = (await call(bob, "journal_status"))["head_seq"]
    assert answer["timed_out"] is True and answer["events"] == []
    assert answer["head_seq"] == head  # it did see them land, and left them out


# -- in memory ----------------------------------------------------------------------------
async def test_a_wait_reports_progress_and_returns_what_another_actor_writes(
    store: Store,
) -> None:
    with anyio.fail_after(TEST_S):
        async with as_bob(store) as bob:
            async def alice_hands_off() -> None:
                await anyio.to_thread.run_sync(lambda: store.mutate(
                    "alice", lambda m: verbs.send_handoff(m, "bob", "take the lexer")))

            answer = await while_waiting(bob, alice_hands_off, timeout_s=LONG_WAIT_S)
    assert answer["timed_out"] is False
    assert [e["item_type"] for e in answer["events"]] == ["handoff"]


async def test_a_wait_for_some_item_types_ignores_the_others(store: Store) -> None:
    with anyio.fail_after(TEST_S):
        async with as_bob(store) as bob:
            async def message_then_plan() -> None:
                await anyio.to_thread.run_sync(lambda: store.mutate(
                    "alice", lambda m: verbs.send_message(m, "bob", "not what you wait for")))
                await anyio.to_thread.run_sync(lambda: store.mutate(
                    "alice", lambda m: verbs.plan_create(m, "what you wait for")))

            answer = await while_waiting(bob, message_then_plan, timeout_s=LONG_WAIT_S,
                                         item_types=["plan"])
    assert answer["timed_out"] is False
    assert {e["item_type"] for e in answer["events"]} == {"plan"}


async def test_a_wait_with_news_already_there_returns_at_once(store: Store) -> None:
    store.mutate("alice", lambda m: verbs.send_message(m, "bob", "waiting for you"))
    with anyio.fail_after(TEST_S):
        async with as_bob(store) as bob:
            answer = await call(bob, "wait", timeout_s=LONG_WAIT_S)
    assert answer["timed_out"] is False and len(answer["events"]) == 1


async def test_a_cancelled_wait_ends_on_the_server_at_once(store: Store) -> None:
    watcher = watcher_for(store.backend)
    with anyio.fail_after(TEST_S):
        async with as_bob(store) as bob:
            started = anyio.Event()
            async with anyio.create_task_group() as group:
                group.start_soon(wait_started, bob, started)  # the default timeout: 20 s
                await started.wait()
                assert watcher.waiting() == 1
                group.cancel_scope.cancel()
            while watcher.waiting():
                await anyio.lowlevel.checkpoint()  # the server's handler unwinds
            answer = await call(bob, "journal_status")  # the session serves on
    assert watcher.waiting() == 0 and answer["head_seq"] >= 1


async def test_a_wait_longer_than_the_cap_is_cut_to_the_cap(client: Client) -> None:
    listed = {t.name: t for t in (await client.list_tools()).tools}
    schema = listed["wait"].input_schema["properties"]["timeout_s"]
    assert schema["default"] == limits.wait_timeout_s_default
    assert str(int(limits.wait_timeout_s_max)) in schema["description"]
    from journal_core.waiting import wait_timeout

    assert wait_timeout(3600) == limits.wait_timeout_s_max <= 25
    assert wait_timeout(None) == limits.wait_timeout_s_default


async def test_a_wait_with_a_negative_timeout_is_refused_by_name(client: Client) -> None:
    result = await client.call_tool("wait", {"timeout_s": -1})
    assert result.is_error and "timeout_s" in result.content[0].text  # type: ignore[union-attr]


async def test_many_clients_waiting_on_one_server_share_one_watcher_and_one_commit_wakes_all(
    store: Store,
) -> None:
    server = build_server(store)
    watcher = watcher_for(store.backend)
    answers: list[dict[str, Any]] = []

    async def one_client(number: int, started: anyio.Event) -> None:
        async with Client(server, cache=None,
                          client_info=Implementation(name=f"agent#{number}", version="0")) as c:
            result = await wait_started(c, started, timeout_s=LONG_WAIT_S)
            answers.append(result.structured_content or {})

    with anyio.fail_after(TEST_S):
        async with anyio.create_task_group() as group:
            events = [anyio.Event() for _ in range(5)]
            for number, started in enumerate(events):
                group.start_soon(one_client, number, started)
            for started in events:
                await started.wait()
            while watcher.waiting() < len(events):
                await anyio.lowlevel.checkpoint()  # each is asleep on the one watcher
            await anyio.to_thread.run_sync(lambda: store.mutate(
                "lead", lambda m: verbs.send_message(m, "*", "standup in five")))
    assert len(answers) == 5 and all(not a["timed_out"] for a in answers)
    assert all(a["events"][0]["actor"] == "lead" for a in answers)
