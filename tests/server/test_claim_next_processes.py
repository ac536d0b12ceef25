"""Claim-next across real processes: 8 stdio servers (one per agent, as every stdio client
starts its own) on one store call ``claim(target="next")`` until nothing is left.

- 40 independent steps: every step is claimed exactly once, no step twice, and no agent
  is refused while a step was ready (a refusal names what is open and why; with every step
  already claimed or done, that is all it may name).
- A chain and a diamond: no step is ever claimed before each of its blockers was done --
  a claim's fence is the seq of the record that granted it, and the blocker's completion
  is an earlier seq of the same journal.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from support.mcp import call, stdio_server, text_of

pytestmark = pytest.mark.anyio

AGENTS = 8
STEPS = 40
TEST_S = 240  # the whole test, eight servers included (a busy 2-core machine is slow)
RETRY_S = 0.02


async def agent_loop(client: Client, plan_id: str, log: list[dict[str, Any]]) -> None:
    """Claim the next step of the plan, complete it, again, until no step is open."""
    while True:
        result = await client.call_tool("claim", {"target": "next", "plan_id": plan_id})
        if result.is_error:
            text = text_of(result)
            assert "nothing is ready" in text, text
            log.append({"refused": text})
            if "no open steps" in text:
                return
            await anyio.sleep(RETRY_S)  # blocked or held by others: look again shortly
            continue
        claim = result.structured_content
        assert claim is not None
        log.append({"claimed": claim["entity"]["target"], "fence": claim["fence"],
                    "claim_id": claim["item_id"]})
        done = await call(client, "complete", claim_id=claim["item_id"], fence=claim["fence"])
        log[-1]["done_seq"] = done["seq"]


async def run_agents(clients: list[Client], plan_id: str) -> list[list[dict[str, Any]]]:
    logs: list[list[dict[str, Any]]] = [[] for _ in clients]
    async with anyio.create_task_group() as group:
        for client, log in zip(clients, logs, strict=True):
            group.start_soon(agent_loop, client, plan_id, log)
    return logs


def claims_of(logs: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return [entry for log in logs for entry in log if "claimed" in entry]


def refusals_of(logs: list[list[dict[str, Any]]]) -> list[str]:
    return [entry["refused"] for log in logs for entry in log if "refused" in entry]


async def test_eight_servers_claim_next_each_step_exactly_once_and_never_early(
    tmp_path: Path, summary_lines: list[str],
) -> None:
    store = tmp_path / "store"
    with anyio.fail_after(TEST_S):
        async with _servers(store, tmp_path) as clients:
            first = clients[0]

            # -- 40 independent steps ----------------------------------------------------
            flat = await call(first, "plan", title="flat",
                              steps=[f"step {n}" for n in range(1, STEPS + 1)])
            started = time.monotonic()
            logs = await run_agents(clients, flat["item_id"])
            elapsed = time.monotonic() - started
            claims = claims_of(logs)
            targets = [c["claimed"] for c in claims]
            assert sorted(targets) == sorted(f"step:{flat['item_id']}/s{n}"
                                             for n in range(1, STEPS + 1))
            refusals = refusals_of(logs)
            for text in refusals:  # only ever "everything is taken", never a ready step
                assert "no open steps" in text or ("none startable" in text
                                                   and "held by" in text), text
            assert len(refusals) >= AGENTS  # each agent stopped on one
            steps = (await call(first, "get", item_type="plan",
                                item_id=flat["item_id"]))["entity"]["steps"]
            assert {s["status"] for s in steps} == {"done"}
            per_agent = sorted(sum("claimed" in e for e in log) for log in logs)
            summary_lines.append(
                f"claim-next, {AGENTS} stdio servers, {STEPS} independent steps: "
                f"{len(claims)} claims, {len(set(targets))} distinct, "
                f"{len(refusals)} refusals ({len(refusals) - AGENTS} while others held the "
                f"rest), per agent {per_agent[0]}-{per_agent[-1]}, {elapsed:.1f}s")

            # -- a chain and a diamond --------------------------------------------------
            chain = [{"title": "c1"}] + [{"title": f"c{n}", "after": [f"s{n - 1}"]}
                                         for n in range(2, 9)]
            diamond = [{"title": "top"}, {"title": "left", "after": ["s1"]},
                       {"title": "right", "after": ["s1"]},
                       {"title": "middle", "after": ["s1"]},
                       {"title": "bottom", "after": ["s2", "s3", "s4"]}]
            for name, shape in (("chain", chain), ("diamond", diamond)):
                made = await call(first, "plan", title=name, steps=shape)
                plan_id = made["item_id"]
                logs = await run_agents(clients, plan_id)
                claims = claims_of(logs)
                by_step = {c["claimed"].rsplit("/", 1)[1]: c for c in claims}
                assert len(claims) == len(by_step) == len(shape), name
                for number, step in enumerate(shape, start=1):
                    for blocker in step.get("after", []):
                        assert by_step[f"s{number}"]["fence"] > by_step[blocker]["done_seq"], (
                            f"{name}: s{number} was claimed (seq "
                            f"{by_step[f's{number}']['fence']}) before {blocker} was done "
                            f"(seq {by_step[blocker]['done_seq']})")
                summary_lines.append(
                    f"claim-next, {AGENTS} stdio servers, a {name} of {len(shape)} steps: "
                    f"{len(claims)} claims, none early, {len(refusals_of(logs))} refusals "
                    "while blocked")


@asynccontextmanager
async def _servers(store: Path, tmp_path: Path) -> AsyncIterator[list[Client]]:
    """AGENTS stdio servers on one store, each a client named agent#N (its actor)."""
    async with AsyncExitStack() as stack:
        clients = []
        for number in range(1, AGENTS + 1):
            clients.append(await stack.enter_async_context(stdio_server(
                store, tmp_path / f"agent{number}.log", client_name=f"agent#{number}")))
        yield clients
