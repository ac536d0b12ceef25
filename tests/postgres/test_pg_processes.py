"""Two stdio servers -- two processes, as two agents on two machines would run them -- on
one PostgreSQL store: claims are exclusive across them, each sees the other's events and
never its own, and a wait in one is woken by a write of the other (LISTEN/NOTIFY)."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from support.mcp import SUBPROCESS_TEST_S, call, call_error, stdio_server

pytestmark = pytest.mark.anyio
LONG_WAIT_S = 20  # far longer than the wake-up takes: a timeout would mean no wake-up
SEND_AFTER_S = 0.3


async def test_a_claim_held_through_one_server_is_refused_through_the_other(
    pg_url: str, tmp_path: Path,
) -> None:
    with anyio.fail_after(SUBPROCESS_TEST_S):
        async with (
            stdio_server(pg_url, tmp_path / "a.err", "--actor", "alice") as alice,
            stdio_server(pg_url, tmp_path / "b.err", "--actor", "bob") as bob,
        ):
            held = await call(alice, "claim", target="file:src/parser.py")
            refused = await call_error(bob, "claim", target="file:src/parser.py")
            other = await call(bob, "claim", target="file:src/lexer.py")
    assert "alice" in refused and held["item_id"] in refused and "pick other work" in refused
    assert other["entity"]["holder"] == "bob"


async def test_read_unseen_shows_the_other_servers_events_and_never_ones_own(
    pg_url: str, tmp_path: Path,
) -> None:
    with anyio.fail_after(SUBPROCESS_TEST_S):
        async with (
            stdio_server(pg_url, tmp_path / "a.err", "--actor", "alice") as alice,
            stdio_server(pg_url, tmp_path / "b.err", "--actor", "bob") as bob,
        ):
            await call(alice, "remember", kind="decision", title="use pg", body="one journal")
            await call(bob, "send", to="alice", body="the lexer is mine")
            seen_by_bob = await call(bob, "read_unseen")
            seen_by_alice = await call(alice, "read_unseen")
            await call(bob, "ack", up_to_seq=seen_by_bob["last_seq"])
            after_ack = await call(bob, "read_unseen")
    assert [(e["actor"], e["item_type"]) for e in seen_by_bob["events"]] == [("alice", "memory")]
    assert [(e["actor"], e["item_type"]) for e in seen_by_alice["events"]] == [
        ("bob", "message")]
    assert after_ack["events"] == []


async def test_a_wait_in_one_server_is_woken_by_a_write_through_the_other(
    pg_url: str, tmp_path: Path,
) -> None:
    with anyio.fail_after(SUBPROCESS_TEST_S):
        async with (
            stdio_server(pg_url, tmp_path / "a.err", "--actor", "alice") as alice,
            stdio_server(pg_url, tmp_path / "b.err", "--actor", "bob") as bob,
        ):
            status = await call(bob, "journal_status")
            started = anyio.Event()
            answer: dict[str, object] = {}

            async def on_progress(progress: float, total: float | None,
                                  message: str | None) -> None:
                started.set()

            async def waiter() -> None:
                result = await bob.call_tool("wait", {"timeout_s": LONG_WAIT_S},
                                             progress_callback=on_progress)
                assert not result.is_error, result.content
                answer.update(result.structured_content or {})

            async with anyio.create_task_group() as group:
                group.start_soon(waiter)
                await started.wait()
                await anyio.sleep(SEND_AFTER_S)
                await call(alice, "send", to="bob", body="the parser is yours")
    assert answer["timed_out"] is False
    events = answer["events"]
    assert isinstance(events, list)
    assert [(e["actor"], e["item_type"]) for e in events] == [("alice", "message")]
    assert status["backend"] == "postgresql"
