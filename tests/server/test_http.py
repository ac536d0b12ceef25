"""``agentjournal serve --transport http``: streamable HTTP at /mcp on a free loopback port,
the bearer token (403 with a JSON-RPC error, never a 401 that starts OAuth), and the
refusal to listen beyond loopback without one."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx2
import pytest
from agentjournal.http import BearerAuth, is_loopback
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp.types import Implementation
from support.mcp import (
    SUBPROCESS_TEST_S,
    call,
    call_error,
    child_env,
    serve_command,
    serving_http,
)

pytestmark = pytest.mark.anyio
TOKEN = "test-token-1234"
INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-11-25", "capabilities": {},
    "clientInfo": {"name": "curl", "version": "0"}}}
MCP_HEADERS = {"Accept": "application/json, text/event-stream"}


@asynccontextmanager
async def http_server(store_path: Path, *args: str, token: str | None) -> AsyncIterator[str]:
    """A ``serve --transport http`` subprocess on port 0; yields its /mcp URL."""
    extra = {"AGENTJOURNAL_TOKEN": token} if token else {}
    command = serve_command("--transport", "http", "--host", "127.0.0.1", "--port", "0", *args)
    async with serving_http(command, child_env(store_path, **extra)) as url:
        yield url


async def test_http_serves_the_tools_to_a_client_with_the_token(store_path: Path) -> None:
    with anyio.fail_after(SUBPROCESS_TEST_S):
        async with http_server(store_path, "--actor", "http-agent", token=TOKEN) as url:
            headers = {"Authorization": f"Bearer {TOKEN}"}
            async with (
                httpx2.AsyncClient(headers=headers) as http,
                Client(streamable_http_client(url, http_client=http), cache=None,
                       client_info=Implementation(name="remote", version="0")) as client,
            ):
                names = {tool.name for tool in (await client.list_tools()).tools}
                assert {"work", "claim", "read_unseen"} <= names
                claim = await call(client, "claim", target="file:http.py")
                assert claim["entity"]["holder"] == "http-agent"
                refused = await call_error(client, "claim", actor="other", target="file:http.py")
                assert "'http-agent'" in refused


async def test_http_without_the_right_token_is_refused_with_403_and_a_json_rpc_error(
    store_path: Path,
) -> None:
    with anyio.fail_after(SUBPROCESS_TEST_S):
        async with http_server(store_path, token=TOKEN) as url, httpx2.AsyncClient() as http:
            missing = await http.post(url, json=INITIALIZE, headers=MCP_HEADERS)
            wrong = await http.post(url, json=INITIALIZE, headers={
                **MCP_HEADERS, "Authorization": "Bearer not-the-token"})
            right = await http.post(url, json=INITIALIZE, headers={
                **MCP_HEADERS, "Authorization": f"Bearer {TOKEN}"})
    assert missing.status_code == 403 and wrong.status_code == 403
    assert "www-authenticate" not in missing.headers  # no challenge: nothing starts OAuth
    assert missing.json()["jsonrpc"] == "2.0" and missing.json()["id"] is None
    assert "token is missing" in missing.json()["error"]["message"]
    assert "token is wrong" in wrong.json()["error"]["message"]
    assert "Authorization: Bearer" in missing.json()["error"]["message"]
    assert right.status_code == 200


@pytest.mark.parametrize(("headers", "said"), [
    ({}, "bearer token is missing"),
    ({"Authorization": "Bearer ${AGENTJOURNAL_TOKEN}"}, "bearer token is wrong"),
])
async def test_the_official_client_without_the_token_hears_why_and_starts_no_oauth(
    store_path: Path, headers: dict[str, str], said: str,
) -> None:
    with anyio.fail_after(SUBPROCESS_TEST_S):
        async with (http_server(store_path, token=TOKEN) as url,
                    httpx2.AsyncClient(headers=headers) as http):
            with pytest.raises(BaseException) as raised:
                async with Client(streamable_http_client(url, http_client=http), cache=None):
                    pass
    refused = mcp_error_in(raised.value)
    assert said in str(refused) and "AGENTJOURNAL_TOKEN" in str(refused)


def mcp_error_in(exc: BaseException) -> MCPError:
    """The MCPError the client raised, unwrapped from the task groups around it."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    assert isinstance(exc, MCPError), repr(exc)
    return exc


async def test_http_on_loopback_without_a_token_needs_none(store_path: Path) -> None:
    with anyio.fail_after(SUBPROCESS_TEST_S):
        async with (
            http_server(store_path, token=None) as url,
            Client(url, cache=None) as client,
        ):
            assert (await call(client, "journal_status"))["head_seq"] >= 1


def test_listening_beyond_loopback_without_a_token_refuses_to_start(store_path: Path) -> None:
    done = subprocess.run(
        [*serve_command("--transport", "http", "--host", "0.0.0.0", "--port", "0")],
        env=child_env(store_path), capture_output=True, text=True, timeout=SUBPROCESS_TEST_S,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 2
    assert "AGENTJOURNAL_TOKEN" in done.stderr and done.stdout == ""
    assert not store_path.exists()  # refused before touching the store


def test_loopback_detection() -> None:
    assert all(map(is_loopback, ["127.0.0.1", "localhost", "::1", "[::1]", "127.8.9.10"]))
    assert not any(map(is_loopback, ["0.0.0.0", "192.168.1.4", "example.com", "::"]))


def test_bearer_auth_accepts_any_case_of_the_scheme() -> None:
    auth = BearerAuth(app=None, token=TOKEN)  # type: ignore[arg-type]
    assert auth.authorized({"headers": [(b"authorization", f"bearer {TOKEN}".encode())]})
    assert not auth.authorized({"headers": [(b"authorization", f"Basic {TOKEN}".encode())]})
    assert not auth.authorized({"headers": []})

