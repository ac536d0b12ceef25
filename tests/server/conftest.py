"""Fixtures of the server suite: a temp store and the MCP server in memory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from agentjournal.app import build_server
from mcp import Client
from mcp.types import Implementation

from journal_core import Store


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def store(store_path: Path) -> Iterator[Store]:
    opened = Store(str(store_path))
    yield opened
    opened.close()


@pytest.fixture
async def client(store: Store) -> AsyncIterator[Client]:
    """The server in memory, as the client named 'alice' sees it (no --actor)."""
    async with Client(build_server(store), client_info=Implementation(name="alice", version="0"),
                      cache=None) as connected:
        yield connected
