"""The kill storm's driver, shared by the local storm (tests/crash/test_kill_storm.py) and
the PostgreSQL one (tests/postgres/test_pg_storm.py): writer processes and stdio MCP servers
on one store, each SIGKILLed at a random moment; what each acknowledged is collected.
(A plain module beside the tests, imported by name.)"""

from __future__ import annotations

import contextlib
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from mcp.types import LATEST_PROTOCOL_VERSION

from journal_core import verbs
from support.reliability import (
    READY_WAIT_S,
    Child,
    Pump,
    acks_of,
    api_ack_problems,
    claim_problems,
    is_ready,
    mcp_ack_problems,
    seq_problems,
    spawn,
    verify_problems,
    writer_command,
)

STARTUP_KILL_SHARE = 0.15  # share of kills aimed at start-up (store open), not the workload
PLAN_STEPS = 8  # storm_writer picks steps s1..s8


@dataclass(frozen=True)
class StormSize:
    rounds: int
    writers: int  # API writer processes per round
    servers: int  # stdio MCP servers per round
    rounds_per_store: int  # a fresh store every this many rounds keeps doctor runs small
    kill_window_s: float  # kill at a random moment this long after the child is ready
    startup_window_s: float  # a start-up kill lands in this window after spawning


# -- the stdio MCP side ---------------------------------------------------------------------
class McpDriver:
    """Drives one ``agentjournal serve`` over raw JSON-RPC lines: one call in flight at a
    time; a call counts as acknowledged when its whole answer line was received."""

    def __init__(self, child: Child, rng: random.Random, plans: list[str]) -> None:
        self.child = child
        self.rng = rng
        self.plans = plans
        self.seen = 0
        self.next_id = 1
        self.pending: dict[int, dict[str, Any]] = {}
        self.ready = False
        self.acks: list[dict[str, Any]] = []
        self.claims: list[str] = []
        self.follow_up: tuple[str, dict[str, Any], dict[str, Any]] | None = None
        self.stopped = False  # the server is dead and its pipes closed: only read answers

    def start(self) -> None:
        self.request("initialize", {"protocolVersion": LATEST_PROTOCOL_VERSION,
                                    "capabilities": {},
                                    "clientInfo": {"name": "storm", "version": "0"}}, {})

    def request(self, method: str, params: dict[str, Any], meta: dict[str, Any]) -> None:
        ident, self.next_id = self.next_id, self.next_id + 1
        self.pending[ident] = {"method": method, **meta}
        self.send({"jsonrpc": "2.0", "id": ident, "method": method, "params": params})

    def send(self, message: dict[str, Any]) -> None:
        with contextlib.suppress(OSError):  # killed under us: this server's round is over
            self.child.send(orjson.dumps(message).decode() + "\n")

    def on_lines(self) -> None:
        while self.seen < len(self.child.lines):
            line = self.child.lines[self.seen]
            self.seen += 1
            answer = orjson.loads(line)
            meta = self.pending.pop(answer.get("id"), None)
            if meta is None:
                continue  # a notification or log line of the server
            if meta["method"] == "initialize":
                self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
                self.ready = True
            else:
                self.on_tool_answer(meta, answer)
            self.next_call()

    def on_tool_answer(self, meta: dict[str, Any], answer: dict[str, Any]) -> None:
        result = answer.get("result") or {}
        content = result.get("structuredContent")
        if result.get("isError") or content is None:
            return  # refused (claim held, step done): nothing was written
        ack = {"op": meta["op"], "key": [content["item_type"], content["item_id"]],
               "rev": content["entity_rev"],  # a stale answer (store busy) knows no seq
               "seq": None if content.get("stale") else content["seq"],
               **{k: v for k, v in meta.items() if k in ("plan", "step")}}
        self.acks.append(ack)
        if meta["op"] == "claim" and meta.get("target", "").startswith("file:"):
            self.claims.append(content["item_id"])
        if meta["op"] == "claim" and "plan" in meta:
            self.follow_up = ("complete", {"claim_id": content["item_id"], "result": "done"},
                              {"op": "complete", "plan": meta["plan"], "step": meta["step"]})

    def next_call(self) -> None:
        if not self.ready or self.pending or self.stopped:
            return
        if self.follow_up is not None:
            name, arguments, meta = self.follow_up
            self.follow_up = None
        else:
            name, arguments, meta = self.pick()
        self.request("tools/call", {"name": name, "arguments": arguments}, meta)

    def pick(self) -> tuple[str, dict[str, Any], dict[str, Any]]:
        roll = self.rng.random()
        if roll < 0.3:
            return ("remember", {"kind": "note", "title": f"n{self.rng.randrange(10**6)}",
                                 "body": "b" * self.rng.randrange(1, 200)}, {"op": "remember"})
        if roll < 0.55:
            target = f"file:src/f{self.rng.randrange(6)}.py"
            return ("claim", {"target": target, "ttl_s": 1}, {"op": "claim", "target": target})
        if roll < 0.65 and self.claims:
            claim_id = self.claims.pop()
            return ("release", {"claim_id": claim_id}, {"op": "release"})
        if roll < 0.85 and self.plans:
            plan, step = self.rng.choice(self.plans), f"s{self.rng.randrange(1, PLAN_STEPS + 1)}"
            return ("claim", {"target": f"step:{plan}/{step}", "ttl_s": 60},
                    {"op": "claim", "plan": plan, "step": step})
        return ("send", {"to": "*", "body": "hello"}, {"op": "message"})


# -- one round ------------------------------------------------------------------------------
@dataclass
class Victim:
    child: Child
    driver: McpDriver | None
    startup_kill: bool
    kill_at: float | None = None
    killed: bool = False


def run_round(root: Path | str, size: StormSize, rng: random.Random, plans: list[str],
              logs: Path, round_no: int, writer_args: list[str], *,
              startup_exits_ok: bool = False,
              ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    """Start the round's writers and servers, SIGKILL each at a random moment; return the
    acknowledged API and MCP mutations and the number of processes killed alive.
    ``writer_args`` go to every writer (storm_writer.py's options); ``startup_exits_ok``:
    a child may exit before it is ready (its store's database ended its connections while
    it opened the store, and it said so and stopped) -- nothing to kill then."""
    victims = []
    with open(logs / f"round-{round_no}.stderr", "ab") as stderr:
        for index in range(size.writers):
            plan_args = [arg for plan in plans for arg in ("--plan", plan)]
            command = writer_command(root, f"agent#{index}", rng.randrange(2**31),
                                     *writer_args, *plan_args)
            victims.append(Victim(spawn(f"writer-{index}", command, stderr), None,
                                  rng.random() < STARTUP_KILL_SHARE))
        for index in range(size.servers):
            command = [sys.executable, "-m", "agentjournal", "serve", "--store", str(root),
                       "--init", "--actor", f"mcp#{index}"]
            child = spawn(f"server-{index}", command, stderr, stdin=True)
            driver = McpDriver(child, random.Random(rng.randrange(2**31)), plans)
            driver.start()
            victims.append(Victim(child, driver, rng.random() < STARTUP_KILL_SHARE))
    started = time.monotonic()
    for victim in victims:
        window = size.startup_window_s if victim.startup_kill else None
        victim.kill_at = started + rng.uniform(0, window) if window else None
    pump = Pump(v.child for v in victims)
    try:
        kills = storm(pump, victims, size, rng, startup_exits_ok)
        pump.drain()
    finally:
        for victim in victims:
            victim.child.kill()
            victim.child.reap()
            victim.child.close_pipes()
        pump.close()
    api = [ack for v in victims if v.driver is None for ack in acks_of(v.child)]
    mcp = []
    for victim in victims:
        if victim.driver is not None:
            victim.driver.stopped = True
            victim.driver.on_lines()
            mcp += victim.driver.acks
    return api, mcp, kills


def storm(pump: Pump, victims: list[Victim], size: StormSize, rng: random.Random,
          startup_exits_ok: bool = False) -> int:
    """Pump output, schedule each kill once its child is ready, kill when due."""
    kills = 0
    give_up = time.monotonic() + READY_WAIT_S + size.kill_window_s
    while any(not v.killed for v in victims):
        now = time.monotonic()
        if now > give_up:
            raise AssertionError("children never became ready: "
                                 f"{[v.child.name for v in victims if v.kill_at is None]}")
        for victim in victims:
            if victim.driver is not None:
                victim.driver.on_lines()
            ready = victim.driver.ready if victim.driver else is_ready(victim.child)
            if startup_exits_ok and not ready and not victim.killed and \
                    victim.child.proc.poll() is not None:
                victim.killed = True  # it stopped by itself before it was ready
                continue
            if victim.kill_at is None and ready:
                victim.kill_at = now + rng.uniform(0, size.kill_window_s)
            if not victim.killed and victim.kill_at is not None and now >= victim.kill_at:
                alive = victim.child.proc.poll() is None
                victim.child.kill()
                victim.killed = True
                kills += alive
        due = [v.kill_at for v in victims if not v.killed and v.kill_at is not None]
        pump.pump(min([*due, now + 0.02]))
    return kills


# -- judging a store after a round (every backend) --------------------------------------------
def storm_problems(store: Any, audit: Any, api_acks: list[dict[str, Any]],
                   mcp_acks: list[dict[str, Any]]) -> list[str]:
    """Every acknowledged mutation holds; seqs and claims are sound; never two active claims
    on one target; the next writer runs; doctor --verify-journal is clean."""
    problems = seq_problems(audit) + claim_problems(audit)
    for ack in api_acks:
        problems += api_ack_problems(ack, audit, store)
    for ack in mcp_acks:
        problems += mcp_ack_problems(ack, audit, store)
    active: dict[str, list[str]] = {}
    for claim in store.state.live("claim"):
        if (claim.payload or {}).get("status") == "active":
            active.setdefault(str(claim.payload["target"]), []).append(claim.item_id)
    problems += [f"{t} has active claims {ids}" for t, ids in active.items() if len(ids) > 1]
    store.mutate("storm-next-writer", lambda m: verbs.remember(m, "note", "after", "x"))
    return problems + verify_problems(store)


def seed_plans(store: Any) -> list[str]:
    """The two plans of PLAN_STEPS steps that the storm's writers claim steps of."""
    plans = []
    for index in range(2):
        (_, plan_id), _ = store.mutate("planner", lambda m, i=index: verbs.plan_create(
            m, f"plan {i}", steps=[f"step {n}" for n in range(1, PLAN_STEPS + 1)]))
        plans.append(plan_id)
    return plans
