"""The dashboard in a real browser: Debian's headless Chromium, driven by Playwright for
Python (``executable_path``: nothing is downloaded), against a real ``agentjournal serve
--transport http`` populated through the MCP tools.

Without a browser these tests skip and say how to get one; with
``AGENTJOURNAL_REQUIRE_BROWSER=1`` (``.ci/run`` sets it) they fail instead. Screenshots go
to tests/artifacts/ (not tracked).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from browser_gate import CHROMIUM, browser_missing, verdict
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import Implementation
from support.mcp import REPO, SUBPROCESS_TEST_S, call, child_env, serve_command, serving_http

pytestmark = [pytest.mark.anyio, pytest.mark.browser]
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
ARTIFACTS = REPO / "tests" / "artifacts"
BROWSER_WAIT_MS = 10_000  # bound on anything the page waits for (the bench times the feed)


@pytest.fixture(autouse=True)
def need_a_browser() -> None:
    found = verdict(browser_missing(), os.environ)
    if found is None:
        return
    action, message = found
    if action == "fail":
        pytest.fail(message)
    pytest.skip(message)


@asynccontextmanager
async def http_server(store_path: Path) -> AsyncIterator[str]:
    """``agentjournal serve --transport http`` on a free loopback port; yields its /mcp URL."""
    command = serve_command("--transport", "http", "--host", "127.0.0.1", "--port", "0")
    async with serving_http(command, child_env(store_path)) as url:
        yield url


@asynccontextmanager
async def agent(url: str, name: str) -> AsyncIterator[Client]:
    async with Client(streamable_http_client(url), cache=None,
                      client_info=Implementation(name=name, version="0")) as client:
        yield client


@asynccontextmanager
async def chromium() -> AsyncIterator[tuple[Any, list[str]]]:
    """A fresh headless Chromium page, and the errors its console reports."""
    from playwright.async_api import async_playwright

    errors: list[str] = []
    profile = tempfile.mkdtemp(prefix="agentjournal-chromium-")
    try:
        async with async_playwright() as driver:
            context = await driver.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS,
                viewport={"width": 1400, "height": 900})
            page = context.pages[0] if context.pages else await context.new_page()
            page.set_default_timeout(BROWSER_WAIT_MS)
            page.on("console", lambda message: errors.append(message.text)
                    if message.type == "error" else None)
            page.on("pageerror", lambda error: errors.append(str(error)))
            try:
                yield page, errors
            finally:
                await context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


async def populate(planner: Client) -> None:
    plan = await call(planner, "plan", title="Ship the parser", goal="TOML in, tree out",
                      steps=["Tokenizer", {"title": "Grammar", "after": ["s1"]},
                             {"title": "Docs", "after": ["s2"]}])
    await call(planner, "claim", target=f"step:{plan['item_id']}/s1", ttl_s=900)
    await call(planner, "claim", actor="reviewer", target="file:docs/", ttl_s=90)
    bench = await call(planner, "plan", title="Bench the store",
                       steps=["1k events", "1M events", "Write the report"])
    held = await call(planner, "claim", target=f"step:{bench['item_id']}/s1")
    await call(planner, "complete", claim_id=held["item_id"], result="0.9 ms p50")
    await call(planner, "plan", plan_id=bench["item_id"],
               step_updates=[{"id": "s3", "status": "blocked"}])
    await call(planner, "remember", kind="decision", title="Use TOML 1.0",
               body="Multi-line inline tables are out.")
    await call(planner, "send", to="reviewer", kind="handoff", body="Review the grammar")


def shot(name: str) -> str:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return str(ARTIFACTS / name)


async def test_a_person_watches_the_board_follows_the_live_feed_and_messages_an_agent(
    tmp_path: Path,
) -> None:
    with anyio.fail_after(SUBPROCESS_TEST_S * 2):
        async with (http_server(tmp_path / "store") as url, agent(url, "planner") as planner,
                    chromium() as (page, errors)):
            await populate(planner)
            board = url.removesuffix("mcp")
            await page.goto(board)
            await page.locator(".lane", has_text="Ship the parser").wait_for()
            assert await page.locator(".col-claimed .step", has_text="Tokenizer").count() == 1
            await page.screenshot(path=shot("board.png"), full_page=True)

            created = await call(planner, "plan", title="Created while watching",
                                 steps=["Look"])
            row = page.locator("#board-feed .event", has_text="Created while watching")
            await row.wait_for()  # pushed by the live feed: no reload
            await page.screenshot(path=shot("board-live.png"), full_page=True)

            await row.locator(f'a[href="/entity/plan/{created["item_id"]}"]').click()
            await page.wait_for_url(f"**/entity/plan/{created['item_id']}")
            history = page.locator("ol.revisions .revision")
            assert await history.count() == 1
            assert "by planner" in await history.first.inner_text()
            await page.screenshot(path=shot("plan-history.png"), full_page=True)

            await page.goto(board + "feed")
            await page.locator("#feed .event").first.wait_for()
            await call(planner, "remember", kind="trap", title="Never rename the lock file",
                       body="Other processes hold it open.")
            await page.locator("#feed .event", has_text="Never rename the lock").wait_for()
            await page.screenshot(path=shot("feed.png"), full_page=True)

            await page.goto(board + "messages")
            form = page.locator('form[action="/messages"]')
            await form.locator('input[name="name"]').fill("ada")
            await form.locator('input[name="to"]').fill("reviewer")
            await form.locator('textarea[name="body"]').fill("The grammar can wait for s1")
            await form.locator('button[type="submit"]').click()
            await page.locator(".done", has_text="sent").wait_for()
            await page.screenshot(path=shot("message-sent.png"), full_page=True)

            unseen = await call(planner, "read_unseen", actor="reviewer", limit=100,
                                include_payload=True)
            mine = [e for e in unseen["events"] if e["actor"] == "human:ada"]
            assert [e["item_type"] for e in mine] == ["message"]
            assert mine[0]["payload"]["body"] == "The grammar can wait for s1"

            await page.goto(board + "claims")
            await page.locator(".countdown").first.wait_for()
            await page.screenshot(path=shot("claims.png"), full_page=True)
            assert errors == []
