"""Leases kept alive by work: any mutation by a holder renews its keepalive claims (once
less than half their ttl is left), as a renew record (no rev bump), never past max_s. So an
agent busy writing never loses its claim to a TTL, and one that went quiet loses it to the
next taker. Through the in-memory MCP client, on an injected clock."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from agentjournal.app import build_server
from mcp import Client
from mcp.types import Implementation
from support.engine import Clock
from support.mcp import call, call_error

from journal_core import Store

pytestmark = pytest.mark.anyio

TTL_S = 60
STEP_S = 20  # the holder writes this often: more than half a ttl may pass between writes
STEPS = 10  # 200 s of work, more than three ttls


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def timed_store(tmp_path: Path, clock: Clock) -> Iterator[Store]:
    with Store(str(tmp_path / "store"), now=clock) as opened:
        yield opened


@asynccontextmanager
async def agents(store: Store) -> AsyncIterator[tuple[Client, Client]]:
    async with (
        Client(build_server(store), cache=None,
               client_info=Implementation(name="alice", version="0")) as alice,
        Client(build_server(store), cache=None,
               client_info=Implementation(name="bob", version="0")) as bob,
    ):
        yield alice, bob


async def work_on(alice: Client, clock: Clock, steps: int) -> None:
    """Alice keeps writing (notes of her progress), STEP_S apart."""
    for number in range(steps):
        clock.advance(STEP_S)
        await call(alice, "remember", kind="note", title=f"progress {number}", body="on it")


async def claim_of(client: Client, claim_id: str) -> dict[str, Any]:
    return await call(client, "get", item_type="claim", item_id=claim_id)


async def test_a_holder_that_keeps_writing_past_its_ttl_keeps_its_claim(
    timed_store: Store, clock: Clock,
) -> None:
    async with agents(timed_store) as (alice, bob):
        claim = await call(alice, "claim", target="file:src/parser.py", ttl_s=TTL_S)
        await work_on(alice, clock, STEPS)
        refused = await call_error(bob, "claim", target="file:src/parser.py")
        held = await claim_of(alice, claim["item_id"])
        briefing = await call(alice, "work")
    assert "'alice'" in refused
    assert held["entity"]["status"] == "active" and held["entity"]["holder"] == "alice"
    assert held["entity_rev"] == claim["entity_rev"]  # renewals are no new revision
    assert held["entity"]["expires_at"] > claim["entity"]["expires_at"]
    [mine] = briefing["my_claims"]
    assert mine["id"] == claim["item_id"] and TTL_S / 2 <= mine["left_s"] <= TTL_S


async def test_a_holder_that_stops_writing_loses_its_claim_to_a_taker(
    timed_store: Store, clock: Clock,
) -> None:
    async with agents(timed_store) as (alice, bob):
        claim = await call(alice, "claim", target="file:src/parser.py", ttl_s=TTL_S)
        await work_on(alice, clock, 2)  # 40 s of work, then silence
        clock.advance(TTL_S + 1)
        taken = await call(bob, "claim", target="file:src/parser.py")
        lost = await claim_of(alice, claim["item_id"])
        briefing = await call(alice, "work")
    assert taken["entity"]["holder"] == "bob"
    assert taken["entity"]["previous_holder"] == "alice"
    assert lost["entity"]["status"] == "expired" and lost["entity"]["taken_over_by"] == "bob"
    assert briefing["my_claims"] == [] and "taken by bob" in briefing["taken_over"][0]


async def test_keepalive_stops_at_max_s_however_busy_the_holder_is(
    timed_store: Store, clock: Clock,
) -> None:
    async with agents(timed_store) as (alice, bob):
        await call(alice, "claim", target="file:src/parser.py", ttl_s=TTL_S, max_s=2 * TTL_S)
        await work_on(alice, clock, 6)  # 120 s: the claim ends at its max_s
        clock.advance(1)
        taken = await call(bob, "claim", target="file:src/parser.py")
    assert taken["entity"]["holder"] == "bob"


async def test_a_claim_without_keepalive_lapses_while_its_holder_writes(
    timed_store: Store, clock: Clock,
) -> None:
    async with agents(timed_store) as (alice, bob):
        await call(alice, "claim", target="file:src/parser.py", ttl_s=TTL_S, keepalive=False)
        await work_on(alice, clock, 4)  # 80 s of work, past the ttl
        taken = await call(bob, "claim", target="file:src/parser.py")
    assert taken["entity"]["holder"] == "bob"


async def test_renew_without_a_claim_id_renews_every_claim_of_the_caller(
    timed_store: Store, clock: Clock,
) -> None:
    async with agents(timed_store) as (alice, bob):
        first = await call(alice, "claim", target="file:src/a.py", ttl_s=TTL_S)
        second = await call(alice, "claim", target="step-free:docs", ttl_s=TTL_S)
        others = await call(bob, "claim", target="file:src/b.py", ttl_s=TTL_S)
        clock.advance(TTL_S - 1)
        await call(alice, "renew")
        clock.advance(TTL_S - 1)  # past every first expiry: only the renewed ones hold
        briefing = await call(alice, "work")
        bobs = await claim_of(bob, others["item_id"])
    assert {c["id"] for c in briefing["my_claims"]} == {first["item_id"], second["item_id"]}
    assert all(c["left_s"] >= 1 for c in briefing["my_claims"])
    assert bobs["entity"]["expires_at"] == others["entity"]["expires_at"]
