"""Fixtures of the dashboard suite: a store on an injected clock, the dashboard as an ASGI
app driven by an in-process HTTP client, and a real uvicorn server for the live feed."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
import uvicorn
from agentjournal.http import bind, dashboard_url
from agentjournal.web import dashboard_app
from starlette.types import ASGIApp
from support.engine import Clock

from journal_core import Store, verbs

BASE_URL = "http://127.0.0.1:8766"
TOKEN = "dashboard-token-5678"
SERVER_START_S = 10  # bound on an in-process server coming up
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def now() -> Clock:
    return Clock()


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def store(store_path: Path, now: Clock) -> Iterator[Store]:
    with Store(str(store_path), now=now) as opened:
        yield opened


@asynccontextmanager
async def browser_like(app: ASGIApp, base_url: str = BASE_URL) -> AsyncIterator[httpx2.AsyncClient]:
    """An HTTP client that keeps cookies, talking to the app in process."""
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app),
                                  base_url=base_url) as client:
        yield client


@pytest.fixture
async def web(store: Store) -> AsyncIterator[httpx2.AsyncClient]:
    """The loopback dashboard (no token) of ``store``."""
    async with browser_like(dashboard_app(store)) as client:
        yield client


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "the page has no form token"
    return found.group(1)


async def post_form(client: httpx2.AsyncClient, page: str, action: str,
                    **fields: str) -> httpx2.Response:
    """Load ``page`` (for its form token), then post ``fields`` to ``action`` as a same-origin
    browser would."""
    token = csrf_of((await client.get(page)).text)
    return await client.post(action, data={"csrf": token, **fields},
                             headers={"Origin": str(client.base_url).rstrip("/")})


@asynccontextmanager
async def serving(app: ASGIApp) -> AsyncIterator[str]:
    """A real uvicorn server for ``app`` on a free loopback port; yields its URL."""
    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, lifespan="off",
                                           timeout_graceful_shutdown=1))
    async with anyio.create_task_group() as group:
        group.start_soon(server.serve, [sock])
        with anyio.fail_after(SERVER_START_S):
            while not server.started:
                await anyio.sleep(0.01)
        try:
            yield dashboard_url(sock)
        finally:
            server.should_exit = True
    sock.close()


def populate(store: Store, now: Clock) -> dict[str, Any]:
    """A plan with dependent steps, a claimed step, a file claim, a superseded decision, a
    handoff and a message."""
    (_, plan_id), _ = store.mutate("alice", lambda m: verbs.plan_create(
        m, "Parser", "Parse the config", steps=["Tokenizer", {"title": "Grammar",
                                                             "after": ["s1"]}, "Bench"]))
    (_, step_claim), _ = store.mutate("bob", lambda m: verbs.claim(
        m, f"step:{plan_id}/s1", 600))
    (_, file_claim), _ = store.mutate("carol", lambda m: verbs.claim(m, "file:src/app.py", 60))
    (_, old), _ = store.mutate("alice", lambda m: verbs.remember(m, "decision", "Use TOML"))
    (_, new), _ = store.mutate("bob", lambda m: verbs.remember(
        m, "decision", "Use TOML 1.0", "multi-line tables are out", supersedes=old))
    (_, handoff), _ = store.mutate("bob", lambda m: verbs.send_handoff(
        m, "carol", "Take the grammar", "notes"))
    (_, message), _ = store.mutate("carol", lambda m: verbs.send_message(m, "*", "hello all"))
    now.advance(10)
    return {"plan": plan_id, "step_claim": step_claim, "file_claim": file_claim,
            "old_memory": old, "memory": new, "handoff": handoff, "message": message}

