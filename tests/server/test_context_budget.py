"""What the tools cost an agent's context: the work briefing and a default read_unseen page
stay small on a big store, and tools/list -- every schema, description and hint of every
tool -- stays within 3,000 tokens. Tokens are estimated as characters / 4 of compact JSON."""

from __future__ import annotations

import json

import pytest
from agentjournal.app import build_server
from mcp import Client
from mcp.types import Implementation
from support.mcp import call

from journal_core import Store, verbs

pytestmark = pytest.mark.anyio

WORK_TOKENS_MAX = 1500
UNSEEN_TOKENS_MAX = 1500
TOOLS_LIST_TOKENS_MAX = 3000
MEMORY_KINDS = ("decision", "constraint", "trap", "pattern", "fact", "note")
LONG = "x" * 196  # with the few characters around it: 200-character titles


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


def worst_case(store: Store, me: str) -> None:
    """What the issue names as the worst case of a briefing: 30 claims of mine with
    200-character targets, plans and memory with 200-character titles, 20 long messages to
    me, handoffs to me, and claims of mine that were taken over."""
    for number in range(30):
        store.mutate(me, lambda m, n=number: verbs.claim(m, f"file:{LONG}/{n}.py"))
    for number in range(10):
        store.mutate("planner", lambda m, n=number: verbs.plan_create(
            m, f"{n} {LONG}", "goal", [f"{LONG} {s}" for s in range(8)]))
        store.mutate("scribe", lambda m, n=number: verbs.remember(m, "trap", f"{n}{LONG}", "b"))
    for number in range(20):
        store.mutate("peer", lambda m, n=number: verbs.send_message(m, me, f"{n} " + LONG * 50))
        store.mutate("peer", lambda m, n=number: verbs.send_handoff(m, me, f"{n} {LONG}", "c"))


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
    assert len(brief["unseen"]) > 0 and len(brief["my_claims"]) == 3
    assert brief["plans_open_total"] == 50 and brief["memory_total"] > 0
    assert brief["ready_total"] > 0 and brief["ready"]
    assert tokens(brief) < WORK_TOKENS_MAX
    assert len(result.content[0].text) // 4 < WORK_TOKENS_MAX  # type: ignore[union-attr]


async def test_work_in_the_worst_case_stays_under_1500_tokens_and_counts_what_it_left_out(
    store: Store,
) -> None:
    worst_case(store, "worker#1")
    async with Client(build_server(store), cache=None,
                      client_info=Implementation(name="worker#1", version="0")) as client:
        result = await client.call_tool("work", {})
    brief = result.structured_content
    assert brief is not None
    assert brief["my_claims_total"] == 30 and len(brief["my_claims"]) < 30
    assert brief["messages_total"] == 20 and len(brief["messages"]) < 20
    assert brief["handoffs_total"] == 20 and len(brief["handoffs"]) < 20
    assert brief["plans_open_total"] == 10 and brief["memory_total"] == 10
    assert len(result.content[0].text) // 4 <= WORK_TOKENS_MAX  # type: ignore[union-attr]


async def test_a_default_read_unseen_page_fits_a_turn(store: Store) -> None:
    fill(store, plans=50, memory_items=500)
    async with Client(build_server(store), cache=None,
                      client_info=Implementation(name="reader#1", version="0")) as client:
        result = await client.call_tool("read_unseen", {})
    page = result.structured_content
    assert page is not None and page["has_more"] and len(page["events"]) > 0
    assert len(result.content[0].text) // 4 <= UNSEEN_TOKENS_MAX  # type: ignore[union-attr]


async def test_tools_list_is_at_most_3000_tokens_with_every_capability(client: Client) -> None:
    listing = await client.list_tools()
    dumped = [tool.model_dump(mode="json", by_alias=True, exclude_none=True)
              for tool in listing.tools]
    assert {"ready", "respond", "claim", "work"} <= {t["name"] for t in dumped}
    assert tokens(dumped) <= TOOLS_LIST_TOKENS_MAX, tokens(dumped)
