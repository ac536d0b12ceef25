"""Per-client tokens over HTTP: a token file of hashes maps each client's token to the actors
it may act as (exact names, or a prefix such as ``ci-runner-*``) and to read-only or
read-write. A call outside its grant is refused with nothing written; the single
``AGENTJOURNAL_TOKEN`` keeps working beside the file; a revoked token stops at once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx2
import orjson
import pytest
from agentjournal.cli import main
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import Implementation
from support.mcp import (
    SUBPROCESS_TEST_S,
    call,
    call_error,
    child_env,
    serve_command,
    serving_http,
)

from journal_core import Store

pytestmark = pytest.mark.anyio
SHARED = "shared-token-5678"


def add_token(path: Path, name: str, *options: str,
              capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["token", "add", name, "--file", str(path), *options]) == 0
    out, _ = capsys.readouterr()
    return out.strip()


@asynccontextmanager
async def http_server(store_path: Path, token_file: Path) -> AsyncIterator[str]:
    command = serve_command("--transport", "http", "--host", "127.0.0.1", "--port", "0",
                            "--token-file", str(token_file))
    async with serving_http(command, child_env(store_path,
                                                              AGENTJOURNAL_TOKEN=SHARED)) as url:
        yield url


@asynccontextmanager
async def client_with(url: str, token: str) -> AsyncIterator[Client]:
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as http,
        Client(streamable_http_client(url, http_client=http), cache=None,
               client_info=Implementation(name="remote", version="0")) as client,
    ):
        yield client


def test_the_token_file_keeps_hashes_only_and_lists_and_revokes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "tokens.json"
    token = add_token(path, "ci", "--actor", "ci-runner-*", capsys=capsys)
    add_token(path, "viewer", "--actor", "watcher", "--read-only", capsys=capsys)
    data = path.read_text(encoding="utf-8")
    assert token not in data and token.startswith("ajt_")
    assert (path.stat().st_mode & 0o777) == 0o600
    assert main(["token", "list", "--file", str(path)]) == 0
    out, _ = capsys.readouterr()
    assert "ci\tread-write\tci-runner-*" in out and "viewer\tread-only\twatcher" in out
    assert main(["token", "revoke", "ci", "--file", str(path)]) == 0
    assert [e["name"] for e in orjson.loads(path.read_bytes())["tokens"]] == ["viewer"]


async def test_each_token_acts_only_as_its_actors_and_with_its_access_over_http(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    store_path, token_file = tmp_path / "store", tmp_path / "tokens.json"
    ci = add_token(token_file, "ci", "--actor", "ci-runner-*", capsys=capsys)
    viewer = add_token(token_file, "viewer", "--actor", "watcher", "--read-only",
                       capsys=capsys)
    with anyio.fail_after(SUBPROCESS_TEST_S):
        async with http_server(store_path, token_file) as url:
            async with client_with(url, ci) as client:
                claim = await call(client, "claim", actor="ci-runner-7", target="file:a.py")
                refused = await call_error(client, "claim", actor="alice", target="file:b.py")
                no_default = await call_error(client, "work")  # its client name is 'remote'
            async with client_with(url, viewer) as client:
                seen = await call(client, "read_unseen", actor="watcher")
                await call(client, "ack", actor="watcher", up_to_seq=seen["last_seq"])
                read_only = await call_error(client, "remember", actor="watcher", kind="note",
                                             title="x", body="y")
                other = await call_error(client, "read_unseen", actor="ci-runner-7")
            async with client_with(url, SHARED) as client:  # the single token: anyone
                shared = await call(client, "claim", actor="alice", target="file:c.py")
            assert main(["token", "revoke", "ci", "--file", str(token_file)]) == 0
            async with httpx2.AsyncClient() as http:
                revoked = await http.post(url, headers={"Authorization": f"Bearer {ci}"},
                                          json={})
    assert claim["entity"]["holder"] == "ci-runner-7"
    assert "may act only as ci-runner-*" in refused and "not as 'alice'" in refused
    assert "nothing was written" in refused and "'remote'" in no_default
    assert [e["actor"] for e in seen["events"]] == ["ci-runner-7"]
    assert "read-only" in read_only and "nothing was written" in read_only
    assert "may act only as watcher" in other
    assert shared["entity"]["holder"] == "alice"
    assert revoked.status_code == 403 and "token is wrong" in revoked.text  # not OAuth (D31)
    with Store(str(store_path), create=False) as store:
        holders = sorted(c.payload["holder"] for c in store.state.live("claim"))  # type: ignore[index]
        assert holders == ["alice", "ci-runner-7"]  # the refused calls wrote nothing
        assert store.entities("memory")[0] == []
