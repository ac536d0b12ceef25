"""DNS rebinding protection on every loopback address. A server listening on a loopback
address without a token is reachable from a browser tab whose page was served by an
attacker's domain that now resolves to 127.x.y.z: a request naming a foreign Host, or
coming from a foreign Origin, must be refused. 127.0.0.1 is where the MCP SDK already
refuses them; 127.0.0.2 is another loopback address the CLI accepts without a token."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx2
import pytest
from support.mcp import serving_http
from trust_support import SESSION_S, cli_env

pytestmark = pytest.mark.anyio
INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-11-25", "capabilities": {},
    "clientInfo": {"name": "browser", "version": "0"}}}
MCP_HEADERS = {"Accept": "application/json, text/event-stream",
               "Content-Type": "application/json"}


@asynccontextmanager
async def http_server(store: Path, host: str) -> AsyncIterator[str]:
    """``agentjournal serve --transport http --host HOST --port 0``, no token; its URL."""
    command = ["-m", "agentjournal", "serve", "--init", "--store", str(store),
               "--transport", "http", "--host", host, "--port", "0", "--actor", "http-agent"]
    async with serving_http([sys.executable, *command], cli_env()) as url:
        yield url


@pytest.mark.parametrize("host", ["127.0.0.2", "127.0.0.1"])
async def test_a_loopback_server_refuses_a_foreign_host_or_origin(
    tmp_path: Path, host: str,
) -> None:
    with anyio.fail_after(SESSION_S):
        async with http_server(tmp_path / "store", host) as url, httpx2.AsyncClient() as http:
            authority = url.split("/")[2]  # host:port as the server prints it
            rebound = await http.post(url, json=INITIALIZE, headers={
                **MCP_HEADERS, "Host": "rebind.attacker.example"})
            foreign = await http.post(url, json=INITIALIZE, headers={
                **MCP_HEADERS, "Host": authority, "Origin": "http://attacker.example"})
            normal = await http.post(url, json=INITIALIZE, headers={
                **MCP_HEADERS, "Host": authority})
    assert 400 <= rebound.status_code < 500 and rebound.status_code not in (401, 404), (
        f"{host}: a request for Host rebind.attacker.example got {rebound.status_code}")
    assert foreign.status_code == 403, (
        f"{host}: a request from Origin http://attacker.example got {foreign.status_code}")
    assert normal.status_code == 200, f"{host}: a normal initialize got {normal.status_code}"
