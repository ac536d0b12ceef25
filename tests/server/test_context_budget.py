"""What the tools cost an agent's context: the work briefing stays small on a big store, and
tools/list stays bounded. Tokens are estimated as characters / 4."""

from __future__ import annotations

import json

import pytest
from mcp import Client
from mcp.types import Implementation
from mcp_helpers import call

from journal_core import Store, verbs
from agentjournal.app import build_server

pytestmark = pytest.mark.anyio

WORK_TOKENS_MAX = 1500
TOOLS_LIST_TOKENS_MAX = 6000
MEMORY_KINDS = ("decision", "constraint", "trap", "pattern", "fact", "note")


def tokens(value: object) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False)) // 4


def fill(store: Store, plans: int, memory_items: int) -> None:
    """A busy store: long titles everywhere, written by other agents."""
    for number in range(plans):
        store.mutate(f"planner#{number % 3}", lambda m, n=number: verbs.plan_create(
            m, f"Plan {n}: move the storage layer of module {n} onto the new segment format "
               "and checkpoints",
            "goal " * 40,
            [f"step {s} of plan {n}: port the reader, the writer and their crash tests to it"
             for s in range(8)],
        ))
    for number in range(memory_items):
        store.mutate(f"scribe#{number % 4}", lambda m, n=number: verbs.remember(
            m, MEMORY_KINDS[n % len(MEMORY_KINDS)],
            f"Memory {n}: never rename a segment after it was created; readers locate seqs by name",
            "body text " * 60,
        ))


async def test_work_stays_well_under_1500_tokens_with_50_plans_and_500_memory_items(
    store: Store,
) -> None:
    fill(store, plans=50, memory_items=500)
    async with Client(build_server(store), cache=None,
                      client_info=Implementation(name="worker#1", version="0")) as client:
        plans = await call(client, "list", item_type="plan", limit=1)
        plan_id = plans["items"][0]["id"]
        for step in ("s1", "s2"):
            await call(client, "claim", target=f"step:{plan_id}/{step}")
        await call(client, "claim", target="file:journal_core/segment.py")
        result = await client.call_tool("work", {})
    brief = result.structured_content
    assert brief is not None and brief["unseen_count"] >= 550
    assert len(brief["unseen"]) == 10 and len(brief["my_claims"]) == 3
    assert brief["plans_open_total"] == 50 and brief["memory_total"] > 0
    assert tokens(brief) < WORK_TOKENS_MAX
    assert len(result.content[0].text) // 4 < WORK_TOKENS_MAX  # type: ignore[union-attr]


async def test_tools_list_stays_bounded(client: Client) -> None:
    listing = await client.list_tools()
    dumped = [tool.model_dump(mode="json", by_alias=True, exclude_none=True)
              for tool in listing.tools]
    assert tokens(dumped) < TOOLS_LIST_TOKENS_MAX
