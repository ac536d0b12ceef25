"""Row 11, the dashboard: the board of a store with 50 plans and 500 memory items,
rendered server-side (a whole GET / through the ASGI app, in process: routing, the board's
read model, the template), the page's weight, and how long a commit takes to reach an open
live feed.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import anyio
import httpx2
import uvicorn
from agentjournal.http import bind, dashboard_url
from agentjournal.web import dashboard_app

from journal_core import Mutation, Store, queries, verbs

from .report import Row, Target, percentile

if TYPE_CHECKING:
    from .rows import Sizes, Workspace

MS = 1000.0
KB = 1024.0
PLAN_STEPS = ("Tokenizer", "Grammar", "Docs")
ASSETS = ("/static/dashboard.css", "/static/dashboard.js", "/static/favicon.svg")
BOARD_P50_MS_MAX = 50.0
PAGE_KB_MAX = 200.0
FEED_LATENCY_MS_MAX = 1000.0
SERVER_START_S = 10.0
EVENT_WAIT_S = 10.0
# Between commits the bench idles for a spread of pauses up to this long, so that commits
# land at every phase of the feed's poll (back to back, each would land while the stream is
# still reading the one before, and look faster than a commit out of the blue does).
FEED_IDLE_S_MAX = 0.25
GOLDEN_RATIO_FRACTION = 0.618033988749895


def build_board_store(store: Store, plans: int, memory: int) -> None:
    """``plans`` active plans (the first step of every other one claimed, the second
    waiting for the first) and ``memory`` decisions and notes."""
    def create(m: Mutation) -> None:
        for number in range(plans):
            verbs.plan_create(m, f"Plan {number}", "a goal for the bench " * 4, [
                PLAN_STEPS[0], {"title": PLAN_STEPS[1], "after": ["s1"]}, PLAN_STEPS[2]])
        for number in range(memory):
            verbs.remember(m, "decision" if number % 2 else "note", f"memory {number}",
                           "a body " * 10)

    store.mutate("bench", create)
    views, _ = store.entities("plan")
    for view in views[::2]:
        store.mutate(f"agent#{view['item_id'][-2:]}", lambda m, p=view["item_id"]: verbs.claim(
            m, f"step:{p}/s1", 3600))


def row_dashboard(ws: Workspace, sizes: Sizes) -> list[Row]:
    with Store(ws.path("dashboard", "store")) as store:
        build_board_store(store, sizes.board_plans, sizes.board_memory)
        board_s, list_s, weights = anyio.run(_board_renders, store, sizes)
        latency_s, mutate_s = anyio.run(_feed_latency, store, sizes)
    html_bytes, total_bytes = weights
    details = {"plans": sizes.board_plans, "memory_items": sizes.board_memory,
               "renders": sizes.board_renders, "board_p99_ms": percentile(board_s, 99) * MS,
               "html_bytes": html_bytes, "page_bytes": total_bytes,
               "feed_commits": sizes.feed_commits,
               "feed_latency_p99_ms": percentile(latency_s, 99) * MS}
    name = f"{sizes.board_plans} plans, {sizes.board_memory} memory items"
    return [
        Row("11a", f"dashboard board render, {name}, p50", "ms", percentile(board_s, 50) * MS,
            percentile(list_s, 50) * MS, "queries.list_items(plan) p50",
            Target("value_max", BOARD_P50_MS_MAX, f"≤ {BOARD_P50_MS_MAX:g} ms"), details),
        Row("11b", "dashboard board page weight (HTML + CSS + JS + icon)", "KB",
            total_bytes / KB, html_bytes / KB, "the board's HTML alone",
            Target("value_max", PAGE_KB_MAX, f"< {PAGE_KB_MAX:g} KB"), details),
        Row("11c", "live feed: commit to event at an open stream, p50", "ms",
            percentile(latency_s, 50) * MS, percentile(mutate_s, 50) * MS,
            "the commit itself (Store.mutate) p50",
            Target("value_max", FEED_LATENCY_MS_MAX, f"≤ {FEED_LATENCY_MS_MAX:g} ms"), details),
    ]


async def _board_renders(store: Store,
                         sizes: Sizes) -> tuple[list[float], list[float], tuple[int, int]]:
    """GET / timed whole, interleaved one for one with the baseline list_items."""
    transport = httpx2.ASGITransport(app=dashboard_app(store))
    board_s, list_s = [], []
    async with httpx2.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        for index in range(sizes.warmup + sizes.board_renders):
            started = time.perf_counter()
            page = await client.get("/")
            elapsed = time.perf_counter() - started
            if page.status_code != 200:
                raise RuntimeError(f"the board answered {page.status_code}: {page.text[:200]}")
            listed = _seconds(lambda: queries.list_items(store, "plan"))
            if index >= sizes.warmup:
                board_s.append(elapsed)
                list_s.append(listed)
        html = len(page.content)
        assets = [len((await client.get(path)).content) for path in ASSETS]
    return board_s, list_s, (html, html + sum(assets))


def _seconds(call: Any) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


async def _feed_latency(store: Store, sizes: Sizes) -> tuple[list[float], list[float]]:
    """Commits (in a worker thread, as a request handler makes them) against an open
    /feed/stream on a real loopback server: from the call to the event's arrival (the
    ``id:`` line of its message)."""
    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(dashboard_app(store), log_config=None,
                                           lifespan="off", timeout_graceful_shutdown=1))
    latency_s, mutate_s = [], []
    async with anyio.create_task_group() as group:
        group.start_soon(server.serve, [sock])
        with anyio.fail_after(SERVER_START_S):
            while not server.started:
                await anyio.sleep(0.01)
        url = f"{dashboard_url(sock)}feed/stream?after={store.head_seq}"
        async with httpx2.AsyncClient(timeout=None) as http, http.stream("GET", url) as stream:
            lines = stream.aiter_lines()
            for number in range(sizes.feed_commits):
                await anyio.sleep(FEED_IDLE_S_MAX * ((number * GOLDEN_RATIO_FRACTION) % 1))
                started = time.perf_counter()
                _, committed = await anyio.to_thread.run_sync(lambda n=number: store.mutate(
                    "bench", lambda m: verbs.remember(m, "note", f"live {n}")))
                mutate_s.append(time.perf_counter() - started)
                with anyio.fail_after(EVENT_WAIT_S):
                    await _until_seq(lines, committed.first_seq)
                latency_s.append(time.perf_counter() - started)
        server.should_exit = True
    sock.close()
    return latency_s, mutate_s


async def _until_seq(lines: Any, seq: int) -> None:
    async for line in lines:
        if line.startswith("id: ") and int(line[4:]) >= seq:
            return
    raise RuntimeError("the live feed ended")


__all__ = ["build_board_store", "row_dashboard"]
