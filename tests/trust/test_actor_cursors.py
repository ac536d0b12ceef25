"""Every actor name the actor rule accepts (at most 128 printable characters) gets a
working cursor: ``read_unseen`` shows what others wrote, ``ack`` moves the cursor (for good:
a store opened again agrees), and ``work`` briefs it. Long names whose encodings are long
(``#`` is escaped, CJK and emoji are several bytes each) included, and two long names that
share a long prefix have cursors of their own. Through the in-memory MCP client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from agentjournal.app import build_server
from mcp import Client
from mcp.types import Implementation
from trust_support import ok, outcome, plain_errors, shorter

from journal_core import Store

pytestmark = pytest.mark.anyio
LONG_ACTORS = {
    "128-hashes": "#" * 128,
    "100-cjk": "界" * 100,
    "64-emoji": "\U0001f642" * 64,
}


@asynccontextmanager
async def client_on(root: Path) -> AsyncIterator[Client]:
    store = Store(str(root))
    try:
        with plain_errors():
            async with Client(build_server(store), cache=None,
                              client_info=Implementation(name="writer", version="0")) as client:
                yield client
    finally:
        store.close()


async def written_by_writer(client: Client, title: str) -> str:
    item = await ok(client, "remember", kind="note", title=title, body="for everyone",
                    actor="writer")
    return str(item["item_id"])


async def unseen_ids(client: Client, actor: str) -> tuple[list[str], int]:
    found = await outcome(client, "read_unseen", actor=actor)
    assert found.ok, f"read_unseen for a {len(actor)}-character actor failed: {shorter(found.text)}"
    assert found.content is not None
    return [e.get("item_id", "") for e in found.content["events"]], found.content["last_seq"]


async def ack(client: Client, actor: str, seq: int) -> None:
    found = await outcome(client, "ack", actor=actor, up_to_seq=seq)
    assert found.ok, f"ack for a {len(actor)}-character actor failed: {shorter(found.text)}"
    assert found.content is not None and found.content["last_seq"] == seq


@pytest.mark.parametrize("actor", list(LONG_ACTORS.values()), ids=list(LONG_ACTORS))
async def test_a_long_actor_name_reads_acks_and_gets_its_briefing(
    tmp_path: Path, actor: str,
) -> None:
    root = tmp_path / "store"
    async with client_on(root) as client:
        memory_id = await written_by_writer(client, "the lexer is done")
        seen, last = await unseen_ids(client, actor)
        assert memory_id in seen
        await ack(client, actor, last)
        assert (await unseen_ids(client, actor))[0] == []
        briefing = await outcome(client, "work", actor=actor)
        assert briefing.ok, (
            f"work for a {len(actor)}-character actor failed: {shorter(briefing.text)}")
        assert briefing.content is not None and briefing.content["unseen_count"] == 0
        later = await written_by_writer(client, "the parser is done")
    async with client_on(root) as reopened:  # the cursor was kept, not just remembered
        assert (await unseen_ids(reopened, actor))[0] == [later]


async def test_two_long_actors_sharing_a_long_prefix_have_their_own_cursors(
    tmp_path: Path,
) -> None:
    first, second = "界" * 120 + "-one", "界" * 120 + "-two"
    async with client_on(tmp_path / "store") as client:
        memory_id = await written_by_writer(client, "the lexer is done")
        seen, last = await unseen_ids(client, first)
        assert seen == [memory_id]
        await ack(client, first, last)
        assert (await unseen_ids(client, first))[0] == []
        assert (await unseen_ids(client, second))[0] == [memory_id], (
            "acking for one actor moved the cursor of another that shares its prefix")
        _, last = await unseen_ids(client, second)
        await ack(client, second, last)
        later = await written_by_writer(client, "the parser is done")
        assert (await unseen_ids(client, first))[0] == [later]
        assert (await unseen_ids(client, second))[0] == [later]
