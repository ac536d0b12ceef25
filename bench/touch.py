"""Rows 8-10 of the benchmark: staying in touch. How soon a ``wait`` in one process returns
a change another process committed, what waiting servers cost while nothing happens, and
how long ``agentjournal hook`` takes on a big store. (Registered in rows.ROWS.)"""

from __future__ import annotations

import glob
import os
import selectors
import subprocess
import time
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any

import anyio
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.types import Implementation

from journal_core import Store, StoreConfig, verbs
from journal_core.digest import digest, digest_text

from . import workload
from .children import WORKER
from .report import Row, Target, median, percentile
from .workload import PYTHON

if TYPE_CHECKING:
    from .rows import Sizes, Workspace

MS = 1000.0
WAIT_TIMEOUT_S = 25.0  # every wait of these rows asks for the cap
SETTLE_S = 0.02  # after the wait's first progress note: the server is asleep by then
ECHO_WAIT_S = 10.0  # bound of one raw inotify echo
CALL_TIMEOUT_S = 60.0
ME = "claude-code#1"


# -- row 8: wake latency ---------------------------------------------------------------------
def row_wake_latency(ws: Workspace, sizes: Sizes) -> list[Row]:
    """A ``wait`` through a real ``agentjournal serve`` stdio process, woken by a commit of
    this process on the same store: from the start of the commit to the wait's answer.
    Baseline: a child blocked on a raw inotify watch, woken by an ``os.write`` of this
    process, answering over a pipe (the kernel's and the pipes' floor)."""
    root = ws.path("wake", "store")
    Store(root).close()
    waits_s = anyio.run(_wake_latencies, root, sizes.wakes, sizes.warmup,
                        ws.path("wake", "server.log"))
    echo_s = _inotify_echoes(ws.path("wake", "raw", "file"), sizes.wakes, sizes.warmup)
    details = {"wakes": sizes.wakes, "wait_p99_ms": percentile(waits_s, 99) * MS,
               "raw_p99_ms": percentile(echo_s, 99) * MS,
               "wait_max_ms": max(waits_s) * MS}
    return [
        Row("8a", "wait woken by another process's commit, p50", "ms",
            percentile(waits_s, 50) * MS, percentile(echo_s, 50) * MS,
            "raw inotify wake over a pipe p50", Target("value_max", 100.0, "< 100 ms"), details),
        Row("8b", "wait woken by another process's commit, p99", "ms",
            percentile(waits_s, 99) * MS, percentile(echo_s, 99) * MS,
            "raw inotify wake over a pipe p99", Target("value_max", 500.0, "< 500 ms"), details),
    ]


async def _wake_latencies(root: str, wakes: int, warmup: int, log_path: str) -> list[float]:
    params = StdioServerParameters(
        command=PYTHON, args=["-m", "agentjournal", "serve", "--store", root, "--actor",
                              "waiter"], env=workload.python_env())
    times: list[float] = []
    with open(log_path, "a", encoding="utf-8") as errlog, Store(root) as writer:
        async with Client(stdio_client(params, errlog=errlog), cache=None,
                          client_info=Implementation(name="bench", version="0"),
                          read_timeout_seconds=CALL_TIMEOUT_S) as client:
            for number in range(warmup + wakes):
                elapsed = await _one_wake(client, writer, number)
                if number >= warmup:
                    times.append(elapsed)
    return times


async def _one_wake(client: Client, writer: Store, number: int) -> float:
    started = anyio.Event()
    answered: dict[str, Any] = {}

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        started.set()

    async def wait() -> None:
        result = await client.call_tool("wait", {"timeout_s": WAIT_TIMEOUT_S},
                                        progress_callback=on_progress)
        answered["at"] = time.perf_counter()
        answered["result"] = result.structured_content or {}

    async with anyio.create_task_group() as group:
        group.start_soon(wait)
        await started.wait()
        await anyio.sleep(SETTLE_S)
        committed_at = time.perf_counter()
        writer.mutate("writer", lambda m: verbs.send_message(m, "waiter", f"wake {number}"))
    result = answered["result"]
    if result.get("timed_out") or not result.get("events"):
        raise RuntimeError(f"wait {number} did not return the commit: {result}")
    await client.call_tool("ack", {"up_to_seq": result["last_seq"]})
    return float(answered["at"] - committed_at)


def _inotify_echoes(path: str, wakes: int, warmup: int) -> list[float]:
    folder = os.path.dirname(path)
    child = subprocess.Popen([PYTHON, str(WORKER), "inotify-echo", "--dir", folder],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             env=workload.python_env())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
    times: list[float] = []
    try:
        assert child.stdout is not None
        _expect_line(child, b"READY")
        for number in range(warmup + wakes):
            time.sleep(SETTLE_S)  # as the waits above: the child is asleep by then
            started = time.perf_counter()
            os.write(fd, b"x\n")
            _expect_line(child, b"W")
            if number >= warmup:
                times.append(time.perf_counter() - started)
    finally:
        os.close(fd)
        if child.stdin is not None:
            child.stdin.close()
        child.wait(timeout=ECHO_WAIT_S)
        if child.stdout is not None:
            child.stdout.close()
    return times


def _expect_line(child: subprocess.Popen[bytes], expected: bytes) -> None:
    assert child.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(child.stdout, selectors.EVENT_READ)
        if not selector.select(timeout=ECHO_WAIT_S):
            child.kill()
            raise RuntimeError(f"inotify-echo said nothing in {ECHO_WAIT_S}s")
    line = child.stdout.readline().strip()
    if line != expected:
        raise RuntimeError(f"inotify-echo said {line!r}, not {expected!r}")


# -- row 9: idle CPU of waiting servers -------------------------------------------------------
def row_idle_cpu(ws: Workspace, sizes: Sizes) -> list[Row]:
    """CPU of N ``agentjournal serve`` stdio processes while each serves one ``wait`` and
    nothing is written, for ``idle_s``, in % of one core (all N together). Baseline: the
    same N servers over the same time, each answering one ``journal_status`` instead."""
    root = ws.path("idle", "store")
    Store(root).close()
    log = ws.path("idle", "servers.log")
    waiting = anyio.run(_idle_cpu_percent, root, sizes.idle_servers, sizes.idle_s, True, log)
    idle = anyio.run(_idle_cpu_percent, root, sizes.idle_servers, sizes.idle_s, False, log)
    details = {"servers": sizes.idle_servers, "window_s": sizes.idle_s,
               "cpu_clock": "schedstat" if _schedstat_works() else "stat ticks"}
    return [Row("9", f"CPU of {sizes.idle_servers} servers waiting {sizes.idle_s:g}s",
                "% of a core", waiting, idle, "same servers, one journal_status each",
                Target("value_max", 1.0, "< 1 % of one core"), details)]


async def _idle_cpu_percent(root: str, servers: int, window_s: float, waiting: bool,
                            log_path: str) -> float:
    params = StdioServerParameters(command=PYTHON, args=["-m", "agentjournal", "serve",
                                                         "--store", root],
                                   env=workload.python_env())
    with open(log_path, "a", encoding="utf-8") as errlog:
        async with AsyncExitStack() as stack:
            clients = [await stack.enter_async_context(Client(
                stdio_client(params, errlog=errlog), cache=None, read_timeout_seconds=60,
                client_info=Implementation(name=f"idle#{n}", version="0")))
                for n in range(servers)]
            await anyio.sleep(0.5)  # start-up work done
            before = _children_cpu_s()
            started = time.perf_counter()
            async with anyio.create_task_group() as group:
                for client in clients:
                    if waiting:
                        group.start_soon(_wait_quietly, client)
                    else:
                        await client.call_tool("journal_status", {})
                await anyio.sleep(window_s)
                used = _children_cpu_s() - before
                elapsed = time.perf_counter() - started
                group.cancel_scope.cancel()
    return 100.0 * used / elapsed


async def _wait_quietly(client: Client) -> None:
    await client.call_tool("wait", {"timeout_s": WAIT_TIMEOUT_S})


def _children_cpu_s() -> float:
    """CPU seconds used so far by this process's children (every thread of each)."""
    total = 0.0
    me = str(os.getpid())
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(stat, encoding="ascii", errors="replace") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] != me:  # ppid
            continue
        folder = os.path.dirname(stat)
        total += _task_seconds(folder, fields)
    return total


def _task_seconds(folder: str, fields: list[str]) -> float:
    """Run time of every thread (schedstat: ns), else utime + stime (clock ticks)."""
    runtimes = []
    for task in glob.glob(os.path.join(folder, "task", "*", "schedstat")):
        try:
            with open(task, encoding="ascii") as handle:
                runtimes.append(int(handle.read().split()[0]))
        except (OSError, ValueError, IndexError):
            runtimes = []
            break
    if runtimes:
        return sum(runtimes) / 1e9
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _schedstat_works() -> bool:
    return os.path.exists(f"/proc/{os.getpid()}/task/{os.getpid()}/schedstat")


# -- row 10: the hook --------------------------------------------------------------------------
def row_hook(ws: Workspace, sizes: Sizes) -> list[Row]:
    """``agentjournal hook`` on a store of ``hook_events`` events (built as rows 4-6 build
    theirs) with news for the agent: in process (open the store, the digest, the text), and
    as the whole command. Baselines: opening the store alone; and for the command, a Python
    process that only imports journal_core (the interpreter's and the imports' floor)."""
    ws.progress(f"  building a {sizes.hook_events:,}-event store")
    built = workload.build_store(ws.path("hook", "store"), sizes.hook_events, ws.progress)
    _add_news(built.root)
    os.sync()  # as every row: no writeback of the build during the timing
    config = StoreConfig(projections="off")
    open_s, hook_s = [], []
    for _ in range(sizes.warmup + sizes.hook_runs):
        started = time.perf_counter()
        store = Store(built.root, config, create=False)
        opened = time.perf_counter()
        text = digest_text(digest(store, ME))
        done = time.perf_counter()
        store.close()
        open_s.append(opened - started)
        hook_s.append(done - started)
    command = [PYTHON, "-m", "agentjournal", "--store", built.root, "hook", "--actor", ME]
    command_s = [_process_s(command) for _ in range(sizes.hook_runs)]
    floor_s = [_process_s([PYTHON, "-c", "import journal_core"]) for _ in range(sizes.hook_runs)]
    warm = slice(sizes.warmup, None)
    details = {"events": built.events, "text_chars": len(text), "text": text,
               "hook_p99_ms": percentile(hook_s[warm], 99) * MS}
    return [
        Row("10a", f"hook in process, {built.events:,} events, p50", "ms",
            median(hook_s[warm]) * MS, median(open_s[warm]) * MS, "open the store p50",
            Target("value_max", 100.0, "< 100 ms"), details),
        Row("10b", "agentjournal hook command, p50", "ms", median(command_s) * MS,
            median(floor_s) * MS, "python -c 'import journal_core'", None, details),
    ]


def _add_news(root: str) -> None:
    """What a busy store holds for the agent: a handoff, messages, a claim of its own about
    to expire; and its cursor a few events behind."""
    with Store(root) as store:
        store.ack(ME, store.head_seq)
        store.mutate(ME, lambda m: verbs.claim(m, "file:src/parser.py", ttl_s=90))
        store.mutate(ME, lambda m: verbs.claim(m, "file:docs/format.md", ttl_s=3600))
        store.mutate("cursor#1", lambda m: verbs.send_handoff(
            m, ME, "Take step s2: the parser; the lexer is done (tokens in cfg/lex.py)"))
        store.mutate("codex#1", lambda m: verbs.send_message(
            m, ME, "I am on the tests; ping me before you rename the token kinds"))
        store.mutate("cursor#1", lambda m: verbs.send_message(m, "*", "lexer merged"))
        for number in range(20):
            store.mutate("codex#1", lambda m, n=number: verbs.remember(
                m, "note", f"test progress {n}", "more tests pass"))


def _process_s(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, env=workload.python_env(), capture_output=True, check=True,
                   timeout=CALL_TIMEOUT_S)
    return time.perf_counter() - started


TITLES = {
    "8": "wait woken across processes (wake latency)",
    "9": "idle CPU of waiting servers",
    "10": "agentjournal hook on a big store",
}
ROWS = {"8": row_wake_latency, "9": row_idle_cpu, "10": row_hook}
