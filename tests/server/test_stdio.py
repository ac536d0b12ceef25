"""Two ``agentjournal serve`` stdio processes on one store, each driven by the official MCP
client: the normal case, since every stdio client starts its own server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest
from support.mcp import (
    SUBPROCESS_TEST_S,
    call,
    call_error,
    child_env,
    serve_command,
    stdio_server,
)

pytestmark = pytest.mark.anyio


async def test_two_stdio_servers_on_one_store_see_each_others_writes_at_once(
    store_path: Path, tmp_path: Path,
) -> None:
    with anyio.fail_after(SUBPROCESS_TEST_S):
        async with (
            stdio_server(store_path, tmp_path / "alice.err", "--actor", "alice") as alice,
            stdio_server(store_path, tmp_path / "bob.err", client_name="bob") as bob,
        ):
            claim = await call(alice, "claim", target="file:src/app.py", note="refactor")
            assert claim["entity"]["holder"] == "alice"

            refused = await call_error(bob, "claim", target="file:src/app.py")
            assert "'alice'" in refused and claim["entity"]["expires_at"] in refused

            seen_by_bob = await call(bob, "read_unseen")
            assert [e["item_id"] for e in seen_by_bob["events"]] == [claim["item_id"]]
            assert seen_by_bob["events"][0]["actor"] == "alice"

            message = await call(bob, "send", to="alice", body="I take the tests instead")
            seen_by_alice = await call(alice, "read_unseen")
            assert [e["item_id"] for e in seen_by_alice["events"]] == [message["item_id"]]
            assert all(e["actor"] != "alice" for e in seen_by_alice["events"])

            await call(alice, "complete", claim_id=claim["item_id"], result="done")
            retried = await call(bob, "claim", target="file:src/app.py")
            assert retried["entity"]["holder"] == "bob"
            assert (await call(alice, "journal_status"))["head_seq"] == retried["seq"]


async def test_a_stdio_server_writes_nothing_but_protocol_on_stdout(
    store_path: Path, tmp_path: Path,
) -> None:
    """Raw JSON-RPC over the pipes: every line the server writes to stdout, up to its exit,
    is a JSON-RPC message; its logs (DEBUG here) go to stderr."""
    requests = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "raw", "version": "0"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
         "params": {"name": "claim", "arguments": {"target": "file:a.py"}}},
        {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
            "name": "get", "arguments": {"item_type": "plan", "item_id": "pln_0000000000000000"}}},
    ]
    log = tmp_path / "server.err"
    with anyio.fail_after(SUBPROCESS_TEST_S), open(log, "wb") as errlog:
        process = await anyio.open_process(
            serve_command("--log-level", "DEBUG"), env=child_env(store_path), stderr=errlog)
        async with process:
            assert process.stdin is not None and process.stdout is not None
            for request in requests:
                await process.stdin.send(json.dumps(request).encode() + b"\n")
            # The server may answer concurrent calls in any order, and closing stdin may
            # cancel a call still running: wait for every answer before hanging up.
            pending = {1, 2, 3}

            def all_answered(message: dict[str, Any]) -> bool:
                pending.discard(message.get("id"))
                return not pending

            lines = await read_lines_until(process.stdout, all_answered)
            await process.stdin.aclose()
            lines += await read_lines_until(process.stdout, lambda m: False)
            await process.wait()
    answers = {message["id"]: message for message in lines}
    assert answers[2]["result"]["structuredContent"]["entity"]["holder"] == "raw"
    assert answers[3]["result"]["isError"] is True
    assert "DEBUG" in log.read_text(encoding="utf-8")


async def read_lines_until(stream: Any, done: Any) -> list[dict[str, Any]]:
    """JSON-RPC messages from ``stream`` (one per line) until ``done(message)`` or EOF; a
    line that is not JSON fails the test."""
    messages: list[dict[str, Any]] = []
    buffer = b""
    async for chunk in stream:
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            message = json.loads(line)  # anything but protocol on stdout fails here
            assert message.get("jsonrpc") == "2.0"
            messages.append(message)
            if done(message):
                return messages
    assert buffer == b"", f"unterminated stdout bytes: {buffer[:200]!r}"
    return messages
