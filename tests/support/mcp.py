"""Helpers of the server suite: calling tools, and running ``agentjournal`` as a real
subprocess (stdio or HTTP) on a store. (A plain module, not a package: tests/ folders are
not packages, so the test modules import it by name.)"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import Process
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.types import CallToolResult, Implementation

REPO = Path(__file__).resolve().parents[2]
SUBPROCESS_TEST_S = 60  # bound of a whole test that drives server subprocesses
CALL_S = 30  # bounded wait for one tool call through a subprocess
SERVING = re.compile(r"serving .* at (http://\S+/mcp)")


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    """Call a tool that must succeed; its structured content."""
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, f"{tool} failed: {text_of(result)}"
    assert result.structured_content is not None
    return result.structured_content


async def call_error(client: Client, tool: str, **arguments: Any) -> str:
    """Call a tool that must fail as a tool error (isError); its message."""
    result = await client.call_tool(tool, arguments)
    assert result.is_error, f"{tool} unexpectedly succeeded: {result.structured_content}"
    return text_of(result)


def text_of(result: CallToolResult) -> str:
    return " ".join(getattr(block, "text", "") for block in result.content)


# -- subprocesses -----------------------------------------------------------------------
def server_env(store_path: Path | str, **extra: str) -> dict[str, str]:
    """The environment of a server subprocess: the store, and this checkout importable."""
    env = {"AGENTJOURNAL_STORE": str(store_path), "PYTHONPATH": str(REPO)}
    env.update(extra)
    return env


def serve_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "agentjournal", "serve", "--init", *args]


@asynccontextmanager
async def stdio_server(
    store_path: Path | str, log_path: Path, *serve_args: str, client_name: str = "mcp",
) -> AsyncIterator[Client]:
    """A ``serve`` subprocess on the store, driven by the official MCP client over stdio.
    Callers bound the whole exchange with ``anyio.fail_after``."""
    command = serve_command(*serve_args)
    params = StdioServerParameters(command=command[0], args=command[1:],
                                   env=server_env(store_path), cwd=str(log_path.parent))
    with open(log_path, "w", encoding="utf-8") as errlog:
        async with Client(stdio_client(params, errlog=errlog),
                          client_info=Implementation(name=client_name, version="0"),
                          read_timeout_seconds=CALL_S, cache=None) as connected:
            yield connected


async def read_serving_url(process: Process, lines: list[str]) -> str:
    """Read the server's stderr up to its 'serving ... at <url>' line (bounded by caller)."""
    assert process.stderr is not None
    buffer = ""
    async for chunk in process.stderr:
        buffer += chunk.decode("utf-8", "replace")
        while "\n" in buffer:
            line, buffer = buffer.split("\n", 1)
            lines.append(line)
            found = SERVING.search(line)
            if found:
                return found.group(1)
    raise AssertionError("server exited before serving:\n" + "\n".join(lines))


@asynccontextmanager
async def serving_http(command: list[str], env: dict[str, str]) -> AsyncIterator[str]:
    """An HTTP ``serve`` subprocess from ``command``; yields the URL it says it serves at,
    keeps its stderr flowing while the caller talks to it, and ends it afterwards."""
    process = await anyio.open_process(command, env=env)
    lines: list[str] = []
    try:
        url = await read_serving_url(process, lines)
        async with anyio.create_task_group() as group:
            group.start_soon(drain, process)
            yield url
            group.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            process.terminate()
            await process.wait()
            await process.aclose()


async def drain(process: Process) -> None:
    assert process.stderr is not None
    async for _ in process.stderr:
        pass


def child_env(store_path: Path | str, **extra: str) -> dict[str, str]:
    """A full environment for plain subprocesses (CLI runs), with the store and checkout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTJOURNAL_")}
    env.update(server_env(store_path, **extra))
    return env
