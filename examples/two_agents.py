"""Two agents share one agentjournal store, each through its own stdio server, driven by the
official MCP Python client: they plan, claim, collide, complete and read what the other did.

    .venv/bin/python examples/two_agents.py                 # on a fresh temporary store
    .venv/bin/python examples/two_agents.py --store PATH    # on a store of your choice

Run it with the Python that has agentjournal installed -- the Quickstart's ``.venv/bin/python``
-- (it starts ``python -m agentjournal serve`` twice, as an MCP client such as Claude Code
would start ``agentjournal serve``). It exits 0 when every step behaved as the coordination
rules say, and prints what happened.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from typing import Any

try:
    import anyio
    from mcp import Client, StdioServerParameters
    from mcp.types import Implementation
except ImportError as missing:  # run with a Python that does not have agentjournal
    sys.exit(f"two_agents: {missing}: run it with the Python that has agentjournal installed, "
             "e.g. .venv/bin/python examples/two_agents.py (the Quickstart's venv)")

CALL_TIMEOUT_S = 30
RUN_TIMEOUT_S = 120


class ScenarioFailed(Exception):
    pass


def server_for(store: str, actor: str) -> StdioServerParameters:
    """``agentjournal serve`` for one agent, as an MCP client config would launch it."""
    env = {"AGENTJOURNAL_STORE": store, "AGENTJOURNAL_ACTOR": actor}
    if "PYTHONPATH" in os.environ:  # running from a checkout that is not installed
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return StdioServerParameters(command=sys.executable, args=["-m", "agentjournal", "serve"],
                                 env=env)


async def call(agent: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    result = await agent.call_tool(tool, arguments)
    if result.is_error or result.structured_content is None:
        raise ScenarioFailed(f"{tool} failed: {result.content}")
    return result.structured_content


async def refused(agent: Client, tool: str, **arguments: Any) -> str:
    result = await agent.call_tool(tool, arguments)
    if not result.is_error:
        raise ScenarioFailed(f"{tool} should have been refused: {result.structured_content}")
    return " ".join(getattr(block, "text", "") for block in result.content)


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise ScenarioFailed(what)


def say(who: str, text: str) -> None:
    print(f"[{who:>5}] {text}", flush=True)


async def scenario(store: str) -> None:
    info = Implementation(name="two_agents.py", version="1")
    async with (
        Client(server_for(store, "alice"), client_info=info,
               read_timeout_seconds=CALL_TIMEOUT_S) as alice,
        Client(server_for(store, "bob"), client_info=info,
               read_timeout_seconds=CALL_TIMEOUT_S) as bob,
    ):
        plan = await call(alice, "plan", title="Ship the parser", goal="parse the config files",
                          steps=["write the lexer", "write the parser", "write the tests"])
        plan_id = plan["item_id"]
        say("alice", f"planned {plan_id}: {[s['title'] for s in plan['entity']['steps']]}")

        brief = await call(bob, "work")
        expect(brief["plans"][0]["id"] == plan_id, "bob's briefing shows alice's plan")
        say("bob", f"work: {brief['unseen_count']} unseen, open: {brief['plans'][0]['open_steps']}")

        lexer = await call(alice, "claim", target=f"step:{plan_id}/s1", ttl_s=600)
        say("alice", f"claimed s1 ({lexer['item_id']})")

        collision = await refused(bob, "claim", target=f"step:{plan_id}/s1")
        expect("'alice'" in collision, "the refusal names the holder")
        say("bob", f"collided: {collision}")

        tests = await call(bob, "claim", target=f"step:{plan_id}/s3")
        say("bob", f"claimed s3 instead ({tests['item_id']})")

        done = await call(alice, "complete", claim_id=lexer["item_id"],
                          result="lexer in parser/lex.py")
        expect(done["entity"]["status"] == "completed", "alice's claim is completed")
        say("alice", "completed s1")

        unseen = await call(bob, "read_unseen")
        actions = [f"{e['actor']} {e['action']} {e['item_type']}" for e in unseen["events"]]
        expect(all(e["actor"] == "alice" for e in unseen["events"]), "bob never sees his own")
        expect("alice complete claim" in actions, "bob sees alice complete her claim")
        say("bob", f"read_unseen: {actions}")
        await call(bob, "ack", up_to_seq=unseen["last_seq"])

        theirs = await call(alice, "read_unseen", item_types=["claim"])
        expect([e["item_id"] for e in theirs["events"]] == [tests["item_id"]],
               "alice sees bob's claim and none of her own")
        say("alice", f"read_unseen: bob claimed {theirs['events'][0]['item_id']}")

        final = await call(bob, "get", item_type="plan", item_id=plan_id)
        steps = {s["id"]: s["status"] for s in final["entity"]["steps"]}
        expect(steps == {"s1": "done", "s2": "todo", "s3": "claimed"}, f"plan steps: {steps}")
        say("bob", f"plan steps now: {steps}")


async def bounded(store: str) -> None:
    with anyio.fail_after(RUN_TIMEOUT_S):
        await scenario(store)


def init(store: str) -> None:
    """``agentjournal init``, once, as a person does before the agents start."""
    done = subprocess.run([sys.executable, "-m", "agentjournal", "--store", store, "init"],
                          capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False)
    if done.returncode != 0:
        raise ScenarioFailed(f"agentjournal init failed: {done.stderr.strip()}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", help="store folder (default: a fresh temporary one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="agentjournal-") as scratch:
        store = args.store or os.path.join(scratch, "store")
        try:
            init(store)
            anyio.run(bounded, store)
        except ScenarioFailed as failure:
            print(f"two_agents: FAILED: {failure}", file=sys.stderr)
            return 1
    print("two_agents: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
