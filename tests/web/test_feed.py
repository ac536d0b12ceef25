"""The live feed over a real HTTP server: server-sent events of what lands in the journal
(a batch per message, ``id`` the last seq read), filtered like the feed page, resumed from
``Last-Event-ID``; and ``agentjournal ui``, which serves the dashboard alone on loopback."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import orjson
import pytest
from agentjournal.web import dashboard_app
from conftest import serving
from support.mcp import REPO, child_env

from journal_core import Store, verbs

pytestmark = pytest.mark.anyio
EVENT_WAIT_S = 10  # bound on a pushed event reaching the test (the bench times it)
UI_TEST_S = 60


async def batches(response: httpx2.Response) -> AsyncIterator[tuple[int, list[dict[str, Any]]]]:
    """(id, events) of each ``events`` message of a stream."""
    fields: dict[str, str] = {}
    async for line in response.aiter_lines():
        if line == "":
            if fields.get("event") == "events":
                yield int(fields["id"]), orjson.loads(fields["data"])
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(": ")
            fields[name] = value


async def next_batch(response: httpx2.Response) -> tuple[int, list[dict[str, Any]]]:
    with anyio.fail_after(EVENT_WAIT_S):
        async for batch in batches(response):
            return batch
    raise AssertionError("the stream ended before an event came")


async def test_a_commit_is_pushed_to_an_open_stream_as_a_rendered_row(store: Store) -> None:
    async with serving(dashboard_app(store)) as url, httpx2.AsyncClient(timeout=None) as http:
        head = store.head_seq
        async with http.stream("GET", f"{url}feed/stream?after={head}") as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            (_, plan_id), _ = store.mutate("agent#1", lambda m: verbs.plan_create(m, "Live"))
            last, found = await next_batch(stream)
    assert last == head + 1
    (event,) = found
    assert event["seq"] == head + 1
    assert f'href="/entity/plan/{plan_id}"' in event["html"] and "agent#1" in event["html"]


async def test_a_stream_sends_only_what_its_filter_lets_through(store: Store) -> None:
    async with serving(dashboard_app(store)) as url, httpx2.AsyncClient(timeout=None) as http:
        head = store.head_seq
        async with http.stream("GET", f"{url}feed/stream?after={head}&actor=bob") as stream:
            store.mutate("alice", lambda m: verbs.remember(m, "note", "from alice"))
            store.mutate("bob", lambda m: verbs.remember(m, "note", "from bob"))
            last, found = await next_batch(stream)
    assert [e["seq"] for e in found] == [head + 2] and last == head + 2
    assert "from bob" in found[0]["html"]


async def test_a_reconnecting_browser_resumes_from_its_last_event_id(store: Store) -> None:
    store.mutate("alice", lambda m: verbs.remember(m, "note", "seen"))
    seen = store.head_seq
    store.mutate("alice", lambda m: verbs.remember(m, "note", "missed while away"))
    async with serving(dashboard_app(store)) as url, httpx2.AsyncClient(timeout=None) as http:
        headers = {"Last-Event-ID": str(seen)}
        async with http.stream("GET", f"{url}feed/stream?after=0", headers=headers) as stream:
            _, found = await next_batch(stream)
    assert [e["seq"] for e in found] == [seen + 1]


async def test_a_stream_without_a_seq_to_follow_is_refused_with_how_to_ask(store: Store) -> None:
    async with serving(dashboard_app(store)) as url, httpx2.AsyncClient() as http:
        answer = await http.get(f"{url}feed/stream")
    assert answer.status_code == 400 and "after=0" in answer.text


def test_ui_serves_only_the_dashboard_on_loopback_and_prints_its_url(tmp_path: Path) -> None:
    store_path = tmp_path / "store"
    with Store(str(store_path)) as store:
        store.mutate("alice", lambda m: verbs.plan_create(m, "Seen from the ui", steps=["a"]))
    command = [sys.executable, "-m", "agentjournal", "ui", "--port", "0"]
    process = subprocess.Popen(command, env=child_env(store_path), cwd=REPO, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               stdin=subprocess.DEVNULL)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # the server prints its URL once it listens
        assert line.startswith("agentjournal: dashboard of ") and " at http://127.0.0.1:" in line
        url = line.rsplit(" at ", 1)[1].strip()
        with httpx2.Client(timeout=UI_TEST_S) as http:
            board = http.get(url)
            assert board.status_code == 200 and "Seen from the ui" in board.text
            assert http.get(url + "mcp").status_code == 404
            rebound = http.get(url, headers={"Host": "evil.example"})
            assert rebound.status_code == 421
    finally:
        process.terminate()
        process.wait(timeout=UI_TEST_S)
        if process.stdout:
            process.stdout.close()
        if process.stderr:
            process.stderr.close()


def test_ui_of_a_missing_store_says_to_run_init(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "agentjournal", "ui", "--port", "0"],
                          env=child_env(tmp_path / "none"), cwd=REPO, capture_output=True,
                          text=True, timeout=UI_TEST_S, stdin=subprocess.DEVNULL)
    assert done.returncode == 1 and "agentjournal init" in done.stderr
