"""Rows 12-14 of the benchmark: the write path at the physical limit (group commit through a
real HTTP server, one mutation over a real stdio pipe against the transport's and the disk's
floors) and the peak memory of the commands that read a whole store (export, import,
doctor --verify-journal). (Registered in rows.ROWS.)"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import tempfile
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
import orjson
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.types import Implementation

from journal_core import Store

from . import workload
from .children import WORKER
from .report import Row, Target, median, percentile
from .workload import PYTHON

if TYPE_CHECKING:
    from .rows import Sizes, Workspace

MS = 1000.0
KB = 1024.0  # /proc's kB
RSS_POLL_S = 0.005  # VmHWM is a high-water mark: a poll after the peak sees it
MB = 1024.0 * 1024.0
CALL_TIMEOUT_S = 60.0  # bound of one tool call
SERVER_START_S = 60.0  # bound of a server's start-up (imports, store open)
COUNTERS_WAIT_S = 10.0  # bound of the server's answer to SIGUSR1
COMMAND_TIMEOUT_S = 1800.0  # bound of one export / import / doctor on the big store
POLL_S = 0.01
SERVING = re.compile(rb"serving .* at (http://\S+/mcp)")
HTTP_SPEEDUP_MIN = 4.0
STDIO_RATIO_MAX = 1.3
PEAK_MB_MAX = 100.0


# -- row 12: group commit through the HTTP server --------------------------------------------
class CountedServer:
    """``agentjournal serve --transport http`` on a free loopback port (bench/worker.py
    ``http-server``: the real command, with its committer's batch counters and a count of
    its fsyncs written to a file on SIGUSR1)."""

    def __init__(self, root: str, counters_path: str, log_path: str) -> None:
        self.counters_path = counters_path
        self.asked = 0
        self.log = open(log_path, "ab")  # noqa: SIM115  (closed in stop)
        self.log_path = log_path
        self.start_at = os.path.getsize(log_path)
        self.proc = subprocess.Popen(
            [PYTHON, str(WORKER), "http-server", "--store", root, "--counters", counters_path],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.log,
            env=workload.python_env())
        self.url = self._serving_url()

    def _serving_url(self) -> str:
        deadline = time.monotonic() + SERVER_START_S
        while time.monotonic() < deadline:
            with open(self.log_path, "rb") as handle:
                handle.seek(self.start_at)
                found = SERVING.search(handle.read())
            if found:
                return found.group(1).decode()
            if self.proc.poll() is not None:
                break
            time.sleep(POLL_S)
        self.stop()
        raise RuntimeError(f"the HTTP server did not start (see {self.log_path})")

    def counters(self) -> dict[str, int]:
        """The server's counters now: batches, batched (mutations in them), fsyncs."""
        self.asked += 1
        os.kill(self.proc.pid, signal.SIGUSR1)
        deadline = time.monotonic() + COUNTERS_WAIT_S
        while time.monotonic() < deadline:
            try:
                with open(self.counters_path, "rb") as handle:
                    found: dict[str, int] = orjson.loads(handle.read())
                if found["asked"] == self.asked:
                    return found
            except (OSError, orjson.JSONDecodeError):
                pass
            time.sleep(POLL_S)
        raise RuntimeError("the HTTP server did not write its counters")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=SERVER_START_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@dataclass
class Phase:
    clients: int
    calls: int
    run_s: float
    latencies_s: list[float]
    cpu_s: float  # CPU of this (the clients') process over the window
    counters: dict[str, int]

    @property
    def rate(self) -> float:
        return self.calls / self.run_s

    def details(self) -> dict[str, Any]:
        batches, batched = self.counters["batches"], self.counters["batched"]
        return {"clients": self.clients, "mutations": self.calls, "run_s": self.run_s,
                "mutations_per_s": round(self.rate, 1),
                "call_p50_ms": round(percentile(self.latencies_s, 50) * MS, 3),
                "call_p99_ms": round(percentile(self.latencies_s, 99) * MS, 3),
                "batches": batches, "batched": batched,
                "mutations_per_batch": round(batched / batches, 2) if batches else None,
                "fsyncs": self.counters["fsyncs"],
                "mutations_per_fsync": round(batched / self.counters["fsyncs"], 2)
                if self.counters["fsyncs"] else None,
                "client_process_cpu_share": round(self.cpu_s / self.run_s, 2)}


def row_http_clients(ws: Workspace, sizes: Sizes) -> list[Row]:
    """Durable mutations/s (``claim`` of unique targets) of N concurrent MCP clients of one
    real HTTP server, against the same server with one client, in the same run."""
    root = ws.path("http", "store")
    Store(root).close()
    server = CountedServer(root, ws.path("http", "counters.json"), ws.path("http", "server.log"))
    try:
        one = _phase(server, 1, sizes)
        many = _phase(server, sizes.http_clients, sizes)
    finally:
        server.stop()
    details = {"one_client": one.details(), "many_clients": many.details()}
    return [Row("12", f"HTTP server, {many.clients} concurrent clients", "mutations/s",
                many.rate, one.rate, "same server, 1 client",
                Target("ratio_min", HTTP_SPEEDUP_MIN, f"≥ {HTTP_SPEEDUP_MIN:g}x baseline"),
                details)]


def _phase(server: CountedServer, clients: int, sizes: Sizes) -> Phase:
    window: list[dict[str, int]] = []
    calls, latencies, cpu_s = anyio.run(_http_clients, server, clients, sizes, window)
    before, after = window
    delta = {key: after[key] - before[key] for key in ("batches", "batched", "fsyncs")}
    return Phase(clients, calls, sizes.http_s, latencies, cpu_s, delta)


async def _http_clients(server: CountedServer, clients: int, sizes: Sizes,
                        window: list[dict[str, int]]) -> tuple[int, list[float], float]:
    """``clients`` sessions, each claiming its own targets flat out for ``http_s`` (after a
    warm-up); the calls answered within the window, their latencies, and the server's
    counters at the window's start and end (in ``window``)."""
    url = server.url
    latencies: list[float] = []
    async with AsyncExitStack() as stack:
        sessions = [await stack.enter_async_context(Client(
            url, cache=None, read_timeout_seconds=CALL_TIMEOUT_S,
            client_info=Implementation(name=f"bench#{k}", version="0")))
            for k in range(clients)]
        for k, client in enumerate(sessions):
            for number in range(sizes.warmup):
                await _claim(client, f"c{clients}-{k}", number)
        window.append(server.counters())  # (no call is in flight now)
        cpu_before = time.process_time()
        deadline = time.perf_counter() + sizes.http_s

        async def loop(k: int, client: Client) -> None:
            number = sizes.warmup
            while True:
                started = time.perf_counter()
                await _claim(client, f"c{clients}-{k}", number)
                done = time.perf_counter()
                if done > deadline:
                    return
                latencies.append(done - started)
                number += 1

        async with anyio.create_task_group() as group:
            for k, client in enumerate(sessions):
                group.start_soon(loop, k, client)
        cpu_s = time.process_time() - cpu_before
        window.append(server.counters())
    return len(latencies), latencies, cpu_s


async def _claim(client: Client, who: str, number: int) -> None:
    result = await client.call_tool("claim", {"target": f"file:bench/{who}/{number}.py",
                                              "actor": f"agent-{who}"})
    if result.is_error:
        raise RuntimeError(f"claim failed: {result.content}")


# -- row 13: one mutation over stdio against its floors -------------------------------------
def row_stdio_mutate(ws: Workspace, sizes: Sizes) -> list[Row]:
    """A ``claim`` through a real ``agentjournal serve`` stdio process, p50, against the sum
    of two floors measured one for one beside it: a no-op tool through a no-op stdio server
    (the transport), and an ``os.write`` + ``os.fsync`` of a claim's record line to an
    O_APPEND file beside the store (the disk)."""
    root = ws.path("stdio", "store")
    Store(root).close()
    raw_path = ws.path("stdio", "raw.jsonl")
    claims_s, noop_s, raw_s, line = anyio.run(_stdio_triples, root, raw_path, sizes,
                                              ws.path("stdio", "servers.log"))
    floor_s = percentile(noop_s, 50) + percentile(raw_s, 50)
    details = {"calls": sizes.stdio_mutations, "record_bytes": len(line),
               "claim_p50_ms": percentile(claims_s, 50) * MS,
               "claim_p99_ms": percentile(claims_s, 99) * MS,
               "noop_tool_p50_ms": percentile(noop_s, 50) * MS,
               "write_fsync_p50_ms": percentile(raw_s, 50) * MS,
               "write_fsync_p99_ms": percentile(raw_s, 99) * MS}
    return [Row("13", "claim via stdio server process, p50", "ms",
                percentile(claims_s, 50) * MS, floor_s * MS,
                "no-op tool over stdio p50 + write+fsync p50",
                Target("ratio_max", STDIO_RATIO_MAX, f"≤ {STDIO_RATIO_MAX:g}x baseline"),
                details)]


async def _stdio_triples(root: str, raw_path: str, sizes: Sizes, log_path: str,
                         ) -> tuple[list[float], list[float], list[float], bytes]:
    """Claims, no-op calls and raw write+fsyncs, interleaved one for one."""
    serve = StdioServerParameters(command=PYTHON, args=[
        "-m", "agentjournal", "serve", "--store", root, "--actor", "bench"],
        env=workload.python_env())
    noop = StdioServerParameters(command=PYTHON, args=[str(WORKER), "noop-server"],
                                 env=workload.python_env())
    claims_s: list[float] = []
    noop_s: list[float] = []
    raw_s: list[float] = []
    with open(log_path, "a", encoding="utf-8") as errlog:
        async with (
            Client(stdio_client(serve, errlog=errlog), cache=None,
                   read_timeout_seconds=CALL_TIMEOUT_S,
                   client_info=Implementation(name="bench", version="0")) as server,
            Client(stdio_client(noop, errlog=errlog), cache=None,
                   read_timeout_seconds=CALL_TIMEOUT_S,
                   client_info=Implementation(name="bench", version="0")) as floor,
        ):
            for number in range(sizes.warmup):
                await _claim(server, "stdio", number)
                await floor.call_tool("noop", {})
            line = b"\n" + workload.last_record_line(root) + b"\n"
            fd = os.open(raw_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
            try:
                for number in range(sizes.warmup, sizes.warmup + sizes.stdio_mutations):
                    started = time.perf_counter()
                    await _claim(server, "stdio", number)
                    claimed = time.perf_counter()
                    await floor.call_tool("noop", {})
                    nothing = time.perf_counter()
                    os.write(fd, line)
                    os.fsync(fd)
                    synced = time.perf_counter()
                    claims_s.append(claimed - started)
                    noop_s.append(nothing - claimed)
                    raw_s.append(synced - nothing)
            finally:
                os.close(fd)
    return claims_s, noop_s, raw_s, line


# -- row 14: peak memory of the commands that read a whole store --------------------------------
def row_peak_memory(ws: Workspace, sizes: Sizes) -> list[Row]:
    """Peak RSS of ``export``, ``import`` and ``doctor --verify-journal`` on a store of
    ``memory_events`` events (built as rows 4-6 build theirs, with longer goals), each run
    as a command; baseline: the peak RSS of a Python that imports journal_core and the CLI."""
    ws.progress(f"  building a {sizes.memory_events:,}-event store "
                f"({sizes.memory_goal_chars}-character goals)")
    built = workload.build_store(ws.path("memory", "store"), sizes.memory_events, ws.progress,
                                 goal_chars=sizes.memory_goal_chars)
    os.sync()
    slice_path = ws.path("memory", "slice.jsonl")
    target = ws.path("memory", "imported")
    cli = [PYTHON, "-m", "agentjournal"]
    floor = median([_peak_rss(
        [PYTHON, "-c", "import journal_core, agentjournal.cli"]) for _ in range(3)])
    export = _peak_rss([*cli, "--store", built.root, "export", "--out", slice_path])
    imported = _peak_rss([*cli, "--store", target, "import", "--init", slice_path])
    verify = _peak_rss([*cli, "--store", built.root, "doctor", "--verify-journal"])
    details = {"events": built.events, "store_bytes": workload.dir_bytes(built.root),
               "journal_bytes": sum(os.path.getsize(p)
                                    for p in workload.segment_paths(built.root)),
               "slice_bytes": os.path.getsize(slice_path),
               "imported_store_bytes": workload.dir_bytes(target),
               "export_s": round(export[1], 2), "import_s": round(imported[1], 2),
               "verify_s": round(verify[1], 2)}
    base = floor[0] / MB
    name = f"peak memory, {built.events:,} events"
    target_text = Target("value_max", PEAK_MB_MAX, f"≤ {PEAK_MB_MAX:g} MB")
    return [
        Row("14a", f"{name}: export", "MB", export[0] / MB, base, "python: imports only",
            target_text, details),
        Row("14b", f"{name}: import", "MB", imported[0] / MB, base, "python: imports only",
            target_text, details),
        Row("14c", f"{name}: doctor --verify-journal", "MB", verify[0] / MB, base,
            "python: imports only", target_text, details),
    ]


def _peak_rss(command: list[str]) -> tuple[float, float]:
    """Run ``command``; its peak resident set in bytes (``VmHWM`` of /proc/<pid>/status,
    polled until it exits) and its wall time. Not ``wait4``'s ``ru_maxrss``: a child made
    by (v)fork carries this process's peak across its exec. A failure is an error."""
    with tempfile.TemporaryFile() as errors:
        started = time.perf_counter()
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=errors, env=workload.python_env())
        peak_kb = 0
        deadline = time.monotonic() + COMMAND_TIMEOUT_S
        while proc.poll() is None:
            peak_kb = max(peak_kb, _high_water_kb(proc.pid))
            if time.monotonic() > deadline:
                proc.kill()
            time.sleep(RSS_POLL_S)
        elapsed = time.perf_counter() - started
        if proc.returncode != 0 or not peak_kb:
            errors.seek(0)
            raise RuntimeError(f"{command[-3:]} failed ({proc.returncode}, peak {peak_kb} kB): "
                               f"{errors.read()[-2000:].decode('utf-8', 'replace')}")
    return peak_kb * KB, elapsed


def _high_water_kb(pid: int) -> int:
    """The process's peak resident set so far (kB), 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return 0
    return 0


TITLES = {
    "12": "group commit: HTTP server, many clients vs one",
    "13": "claim over stdio vs a no-op tool + write+fsync",
    "14": "peak memory of export, import, doctor --verify-journal",
}
ROWS = {"12": row_http_clients, "13": row_stdio_mutate, "14": row_peak_memory}
