"""The rows of the benchmark. Each function measures one row and its
baseline in the same run, on the same disk (everything lives in ``Workspace.root``), and
returns ``Row`` objects. Sizes come from ``Sizes``: FULL, QUICK, or TINY for the smoke test.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import anyio
import orjson
from agentjournal.app import build_server
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.types import Implementation

from journal_core import Store, verbs

from . import dashboard, hotpath, postgres, touch, workload
from .children import WORKER, run_together
from .report import Row, Target, median, percentile
from .workload import PYTHON, SERVED, BuiltStore, Progress

SEGMENT_BYTES_DEFAULT = 8 * 1024 * 1024  # journal_core's default segment_bytes_max
MS = 1000.0


@dataclass(frozen=True)
class Sizes:
    name: str
    claims: int  # row 1: timed claims (and raw writes)
    warmup: int  # untimed calls before any timed loop
    throughput_s: float  # row 2: seconds per run
    writers: tuple[int, ...]  # row 2: writer processes per run
    reads: int  # row 3: timed in-memory calls
    stdio_reads: int  # row 3: timed stdio calls
    big_events: int  # rows 4-5: the store cold-opened and read
    tail_bytes: int  # row 5: the tail replayed after the newest checkpoint
    scale_events: tuple[int, int]  # row 6: small and large store
    scale_claims: int  # row 6: timed claims on each
    agents: int  # row 7: agent processes
    agents_s: float  # row 7: seconds they run
    repeats: int  # rows 4-5: repeats of a whole-store measurement (median kept)
    wakes: int  # row 8: timed wake-ups of a wait
    idle_servers: int  # row 9: waiting servers
    idle_s: float  # row 9: seconds their CPU is measured
    hook_events: int  # row 10: the store the hook reads
    hook_runs: int  # row 10: timed runs
    board_plans: int = 50  # row 11: active plans on the dashboard's board
    board_memory: int = 500  # row 11: memory items beside them
    board_renders: int = 300  # row 11: timed GET / of the board
    feed_commits: int = 50  # row 11: commits timed to their arrival at an open live feed
    http_clients: int = 16  # row 12: concurrent clients of one HTTP server
    http_s: float = 5.0  # row 12: seconds each phase (1 client, then many) runs
    stdio_mutations: int = 500  # row 13: timed claims over stdio (and floors beside them)
    memory_events: int = 60_000  # row 14: the store exported, imported and verified
    memory_goal_chars: int = 440  # row 14: goal length (records of ~1.1 KB: 68 MB at 60k)


FULL = Sizes("full", claims=1000, warmup=50, throughput_s=5.0, writers=(1, 8), reads=2000,
             stdio_reads=500, big_events=100_000, tail_bytes=SEGMENT_BYTES_DEFAULT,
             scale_events=(1_000, 1_000_000), scale_claims=500, agents=16, agents_s=10.0,
             repeats=3, wakes=200, idle_servers=10, idle_s=20.0, hook_events=100_000,
             hook_runs=20)
QUICK = Sizes("quick", claims=300, warmup=20, throughput_s=2.0, writers=(1, 8), reads=300,
              stdio_reads=100, big_events=20_000, tail_bytes=SEGMENT_BYTES_DEFAULT,
              scale_events=(1_000, 100_000), scale_claims=200, agents=16, agents_s=4.0,
              repeats=3, wakes=50, idle_servers=10, idle_s=5.0, hook_events=20_000,
              hook_runs=10, board_renders=100, feed_commits=20, http_s=2.0,
              stdio_mutations=150, memory_events=15_000)
TINY = Sizes("tiny", claims=5, warmup=1, throughput_s=0.2, writers=(1, 2), reads=5,
             stdio_reads=3, big_events=200, tail_bytes=64 * 1024, scale_events=(50, 200),
             scale_claims=3, agents=2, agents_s=0.3, repeats=1, wakes=3, idle_servers=2,
             idle_s=0.3, hook_events=200, hook_runs=2, board_plans=5, board_memory=10,
             board_renders=3, feed_commits=2, http_clients=2, http_s=0.3,
             stdio_mutations=3, memory_events=200, memory_goal_chars=200)


class Workspace:
    """The temp folder every store and baseline file of one run lives in (one disk)."""

    def __init__(self, root: str, progress: Progress = workload.quiet) -> None:
        self.root = root
        self.progress = progress
        self._big: BuiltStore | None = None

    def path(self, *parts: str) -> str:
        path = os.path.join(self.root, *parts)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return path

    def big_store(self, events: int) -> BuiltStore:
        """The store of rows 4 and 5, built once."""
        if self._big is None:
            self.progress(f"  building a {events:,}-event store")
            self._big = workload.build_store(self.path("big", "store"), events, self.progress)
            settle()
        return self._big


def settle() -> None:
    """Write back every dirty page before timing: an fsync on ext4 (data=ordered) may
    otherwise pay for the writeback of a store just built (hundreds of MB)."""
    os.sync()


def seconds(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def claim(store: Store, actor: str, number: int) -> None:
    store.mutate(actor, lambda m: verbs.claim(m, f"file:bench/{actor}/{number}.py"))


# -- row 1 ----------------------------------------------------------------------------------
def row_claim_latency(ws: Workspace, sizes: Sizes) -> list[Row]:
    """A claim through Store.mutate, against os.write + os.fsync of the same bytes to an
    O_APPEND file beside it, interleaved one for one so both see the same disk."""
    with Store(ws.path("claim", "store"), SERVED) as store:
        for number in range(sizes.warmup):
            claim(store, "bench#1", number)
        data = b"\n" + workload.last_record_line(store.root) + b"\n"
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
        fd = os.open(ws.path("claim", "raw.jsonl"), flags, 0o644)
        claims_s, raw_s = [], []
        try:
            for number in range(sizes.warmup, sizes.warmup + sizes.claims):
                claims_s.append(seconds(lambda n=number: claim(store, "bench#1", n)))
                raw_s.append(seconds(lambda: (os.write(fd, data), os.fsync(fd))))
        finally:
            os.close(fd)
    details = {"claims": sizes.claims, "record_bytes": len(data)}
    return [
        Row("1a", "claim in process, p50", "ms", percentile(claims_s, 50) * MS,
            percentile(raw_s, 50) * MS, "write+fsync p50",
            Target("ratio_max", 1.5, "≤ 1.5x baseline"), details),
        Row("1b", "claim in process, p99", "ms", percentile(claims_s, 99) * MS,
            percentile(raw_s, 99) * MS, "write+fsync p99",
            Target("ratio_max", 2.0, "≤ 2x baseline"), details),
    ]


# -- row 2 ----------------------------------------------------------------------------------
def row_throughput(ws: Workspace, sizes: Sizes) -> list[Row]:
    """Durable mutations/s of N writer processes (each its own Store) against N processes
    doing the same logical work in SQLite, WAL, synchronous=FULL (each its own connection)."""
    root, db = ws.path("throughput", "store"), ws.path("throughput", "sqlite.db")
    Store(root).close()
    workload.sqlite_connect(db).close()
    rows = []
    for index, writers in enumerate(sizes.writers):
        ws.progress(f"  {writers} writer process(es): journal, then SQLite")
        journal = _rate(run_together([
            ["journal", "--store", root, "--actor", f"w{writers}-{k}",
             "--run-s", str(sizes.throughput_s)] for k in range(writers)], sizes.throughput_s),
            sizes.throughput_s)
        sqlite = _rate(run_together([
            ["sqlite", "--db", db, "--actor", f"w{writers}-{k}",
             "--run-s", str(sizes.throughput_s)] for k in range(writers)], sizes.throughput_s),
            sizes.throughput_s)
        rows.append(Row(
            f"2{'abcdef'[index]}", f"durable mutations/s, {writers} writer process(es)",
            "mutations/s", journal, sqlite, "SQLite WAL+FULL",
            Target("ratio_min", 1.0, "≥ 1x baseline"),
            {"writers": writers, "run_s": sizes.throughput_s}))
    return rows


def _rate(results: list[dict[str, Any]], run_s: float) -> float:
    return sum(int(r["mutations"]) for r in results) / run_s


# -- row 3 ----------------------------------------------------------------------------------
def row_read_tool(ws: Workspace, sizes: Sizes) -> list[Row]:
    """``get`` of a plan through the MCP client: in memory, and over stdio to a server
    subprocess. Baselines: Store.entity_view in process, and a no-op tool over stdio."""
    root = ws.path("read", "store")
    with Store(root) as store:
        (_, plan_id), _ = store.mutate("bench", lambda m: verbs.plan_create(
            m, "a plan to read", "read it often", [f"step {n}" for n in range(1, 6)]))
        view_s = [seconds(lambda: store.entity_view("plan", plan_id))
                  for _ in range(sizes.warmup + sizes.reads)][sizes.warmup:]
        args = {"item_type": "plan", "item_id": plan_id}
        memory_s = anyio.run(_calls, build_server(store, "bench"), "get", args, sizes)
        noop_memory_s = anyio.run(_calls, workload.noop_server(), "noop", {}, sizes)
    log = ws.path("read", "servers.log")
    stdio_sizes = replace(sizes, reads=sizes.stdio_reads)
    serve = ["-m", "agentjournal", "serve", "--store", root, "--actor", "bench"]
    stdio_s = anyio.run(_stdio_calls, serve, "get", args, stdio_sizes, log)
    noop = [str(WORKER), "noop-server"]
    noop_stdio_s = anyio.run(_stdio_calls, noop, "noop", {}, stdio_sizes, log)
    details = {"calls": sizes.reads, "stdio_calls": sizes.stdio_reads,
               "noop_tool_in_memory_p50_ms": percentile(noop_memory_s, 50) * MS,
               "entity_view_p50_ms": percentile(view_s, 50) * MS,
               "get_in_memory_p99_ms": percentile(memory_s, 99) * MS,
               "get_stdio_p99_ms": percentile(stdio_s, 99) * MS}
    return [
        Row("3a", "get via in-memory MCP client, p50", "ms", percentile(memory_s, 50) * MS,
            percentile(view_s, 50) * MS, "Store.entity_view p50",
            Target("value_max", 1.0, "≤ 1 ms"), details),
        Row("3b", "get via stdio server process, p50", "ms", percentile(stdio_s, 50) * MS,
            percentile(noop_stdio_s, 50) * MS, "no-op tool over stdio p50", None, details),
    ]


async def _calls(server: Any, tool: str, args: dict[str, Any], sizes: Sizes) -> list[float]:
    async with Client(server, client_info=Implementation(name="bench", version="0"),
                      cache=None) as client:
        return await _timed_calls(client, tool, args, sizes)


async def _stdio_calls(argv: list[str], tool: str, args: dict[str, Any], sizes: Sizes,
                       log_path: str) -> list[float]:
    params = StdioServerParameters(command=PYTHON, args=argv, env=workload.python_env())
    with open(log_path, "a", encoding="utf-8") as errlog:
        async with Client(stdio_client(params, errlog=errlog),
                          client_info=Implementation(name="bench", version="0"),
                          cache=None) as client:
            return await _timed_calls(client, tool, args, sizes)


async def _timed_calls(client: Client, tool: str, args: dict[str, Any],
                       sizes: Sizes) -> list[float]:
    times = []
    for index in range(sizes.warmup + sizes.reads):
        started = time.perf_counter()
        result = await client.call_tool(tool, args)
        elapsed = time.perf_counter() - started
        if result.is_error:
            raise RuntimeError(f"{tool} failed: {result.content}")
        if index >= sizes.warmup:
            times.append(elapsed)
    return times


# -- row 4 ----------------------------------------------------------------------------------
def row_read_unseen(ws: Workspace, sizes: Sizes) -> list[Row]:
    """A reader pages through every event of a store written as agents write it (one
    record per txn; read_unseen limit 1000, advance=true) against orjson.loads of the same
    journal lines. (The big store of row 5 is built in txns of 2,000 records: a page that
    ends inside such a txn makes the next page re-read it from its start.)"""
    ws.progress(f"  building a {sizes.big_events:,}-event store, one record per txn")
    built = workload.build_agent_store(ws.path("unseen", "store"), sizes.big_events,
                                       ws.progress)
    settle()
    lines = workload.journal_lines(built.root)
    parse_s = median([seconds(lambda: [orjson.loads(line) for line in lines])
                      for _ in range(sizes.repeats)])
    rates = []
    with Store(built.root) as store:
        for repeat in range(sizes.repeats):
            events, elapsed = _read_everything(store, f"reader#{repeat}")
            rates.append(events / elapsed)
    return [Row("4", "read_unseen events/s", "events/s", median(rates), len(lines) / parse_s,
                "orjson.loads of the lines",
                Target("value_min", 100_000, "≥ 100k/s and ≥ 1x", ratio_min=1.0),
                {"events_read": events, "journal_lines": len(lines)})]


def _read_everything(store: Store, actor: str) -> tuple[int, float]:
    events = 0
    started = time.perf_counter()
    while True:
        page = store.read_unseen(actor, limit=1000, advance=True)
        events += len(page["events"])
        if not page["has_more"]:
            return events, time.perf_counter() - started


# -- row 5 ----------------------------------------------------------------------------------
def row_cold_open(ws: Workspace, sizes: Sizes) -> list[Row]:
    """Cold open (a new Store object: checkpoint + tail, OS page cache warm) and one read;
    then, with the tail topped up to ~8 MiB, a rebuild from the newest checkpoint, and a
    rebuild from the segments alone (a copy of the store without its checkpoints)."""
    built = ws.big_store(sizes.big_events)
    segments = workload.segment_paths(built.root)
    read_segments_s = median([seconds(lambda: workload.read_bytes(segments))
                              for _ in range(sizes.repeats)])
    open_s = median([seconds(lambda: _open_and_read(built)) for _ in range(sizes.repeats)])
    rows = [Row("5a", f"cold open + first read, {built.events:,} events", "s", open_s,
                read_segments_s, "read the segment bytes", Target("value_max", 1.0, "< 1 s"),
                {"events": built.events, "segments": len(segments),
                 "segment_bytes": workload.read_bytes(segments)})]
    added = workload.top_up_tail(built.root, built.plans, sizes.tail_bytes, ws.progress)
    built.events += added
    settle()
    rows.append(_rebuild_from_checkpoint(built, sizes))
    rows.append(_rebuild_from_segments(ws, built, sizes))
    return rows


def _open_and_read(built: BuiltStore) -> None:
    with Store(built.root) as store:
        store.entity_view("plan", built.plans[0])


def _rebuild_from_checkpoint(built: BuiltStore, sizes: Sizes) -> Row:
    checkpoints = workload.checkpoint_paths(built.root)
    tail = workload.segment_paths(built.root)[-1]
    read = [*checkpoints[-1:], tail]
    read_s = median([seconds(lambda: workload.read_bytes(read)) for _ in range(sizes.repeats)])
    with Store(built.root) as store:
        rebuild_s = median([seconds(store.rebuild_state) for _ in range(sizes.repeats)])
    return Row("5b", "rebuild: newest checkpoint + tail", "s", rebuild_s, read_s,
               "read checkpoint + tail bytes", Target("value_max", 1.0, "< 1 s"),
               {"checkpoint_bytes": workload.read_bytes(checkpoints[-1:]),
                "tail_bytes": os.path.getsize(tail), "events": built.events})


def _rebuild_from_segments(ws: Workspace, built: BuiltStore, sizes: Sizes) -> Row:
    copy = ws.path("big", "no-checkpoints")
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(built.root, copy,
                    ignore=lambda folder, names: ["checkpoints"] if folder.endswith("events")
                    else [])
    segments = workload.segment_paths(copy)
    read_s = median([seconds(lambda: workload.read_bytes(segments))
                     for _ in range(sizes.repeats)])
    segment_bytes = workload.read_bytes(segments)
    with Store(copy) as store:
        rebuild_s = median([seconds(store.rebuild_state) for _ in range(sizes.repeats)])
    shutil.rmtree(copy)
    return Row("5c", "rebuild: segments only (no checkpoint)", "s", rebuild_s, read_s,
               "read the segment bytes", None,
               {"events": built.events, "segment_bytes": segment_bytes})


# -- row 6 ----------------------------------------------------------------------------------
def row_scale(ws: Workspace, sizes: Sizes) -> list[Row]:
    """The same claim on a small and a large store, interleaved one for one."""
    small_events, large_events = sizes.scale_events
    ws.progress(f"  building a {small_events:,}-event store")
    small = workload.build_store(ws.path("scale", "small"), small_events, ws.progress)
    ws.progress(f"  building a {large_events:,}-event store")
    large = workload.build_store(ws.path("scale", "large"), large_events, ws.progress)
    settle()
    ws.progress(f"  built in {large.build_s:.0f}s ({large.events / large.build_s:,.0f} "
                "events/s); timing claims")
    large_open_s = seconds(lambda: Store(large.root).close())
    small_s, large_s = [], []
    with Store(small.root, SERVED) as small_store, Store(large.root, SERVED) as large_store:
        for number in range(sizes.warmup):
            claim(small_store, "bench", number)
            claim(large_store, "bench", number)
        for number in range(sizes.warmup, sizes.warmup + sizes.scale_claims):
            small_s.append(seconds(lambda n=number: claim(small_store, "bench", n)))
            large_s.append(seconds(lambda n=number: claim(large_store, "bench", n)))
    details = {
        "small_events": small.events, "large_events": large.events,
        "large_entities": len(large.plans) + len(large.memory), "claims": sizes.scale_claims,
        "large_build_s": round(large.build_s, 1),
        "large_build_events_per_s": round(large.events / large.build_s),
        "large_store_bytes": workload.dir_bytes(large.root),
        "large_segments": len(workload.segment_paths(large.root)),
        "large_open_s": round(large_open_s, 3),
        "small_p99_ms": percentile(small_s, 99) * MS,
        "large_p99_ms": percentile(large_s, 99) * MS,
    }
    return [Row("6", f"claim p50 on {large.events:,} vs {small.events:,} events", "ms",
                percentile(large_s, 50) * MS, percentile(small_s, 50) * MS,
                f"same claim, {small.events:,}-event store",
                Target("ratio_max", 1.2, "≤ 1.2x baseline"), details)]


# -- row 7 ----------------------------------------------------------------------------------
def row_lock_wait(ws: Workspace, sizes: Sizes) -> list[Row]:
    """Lock wait of every lock-taking call of N busy agent processes on one store. Baseline:
    the p50 of a whole call (lock held about that long) of one agent alone."""
    root = ws.path("agents", "store")
    Store(root).close()

    def agents(count: int, run_s: float) -> list[dict[str, Any]]:
        return run_together([["agent", "--store", root, "--actor", f"agent#{k}",
                              "--seed", str(k), "--run-s", str(run_s)]
                             for k in range(count)], run_s)

    alone = agents(1, sizes.agents_s / 2)
    alone_call_s = percentile(alone[0]["calls_s"], 50)
    ws.progress(f"  {sizes.agents} agents for {sizes.agents_s:g}s")
    results = agents(sizes.agents, sizes.agents_s)
    waits = [w for r in results for w in r["waits_s"]]
    details = {"agents": sizes.agents, "run_s": sizes.agents_s, "lock_taking_calls": len(waits),
               "refused": sum(r["refused"] for r in results),
               "timeouts": sum(r["timeouts"] for r in results)}
    base = alone_call_s * MS
    name = f"lock wait, {sizes.agents} agent processes"
    return [
        Row("7a", f"{name}, p50", "ms", percentile(waits, 50) * MS, base, "1 agent: call p50",
            None, details),
        Row("7b", f"{name}, p95", "ms", percentile(waits, 95) * MS, base, "1 agent: call p50",
            Target("value_max", 20.0, "< 20 ms"), details),
        Row("7c", f"{name}, p99", "ms", percentile(waits, 99) * MS, base, "1 agent: call p50",
            None, details),
    ]


TITLES = {
    "1": "claim latency in process vs write+fsync",
    "2": "durable mutations/s vs SQLite",
    "3": "get through MCP (in memory, stdio)",
    "4": "read_unseen events/s",
    "5": "cold open and rebuilds",
    "6": "claim cost on a small vs a large store",
    "7": "lock wait with many agent processes",
    **touch.TITLES,
    "11": "dashboard: board render, page weight, live feed latency",
    **hotpath.TITLES,
    **postgres.TITLES,
}
ROWS: dict[str, Callable[[Workspace, Sizes], list[Row]]] = {
    "1": row_claim_latency,
    "2": row_throughput,
    "3": row_read_tool,
    "4": row_read_unseen,
    "5": row_cold_open,
    "6": row_scale,
    "7": row_lock_wait,
    **touch.ROWS,
    "11": dashboard.row_dashboard,
    **hotpath.ROWS,
    **postgres.ROWS,
}
