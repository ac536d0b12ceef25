"""Fixtures of the PostgreSQL suite: a store of each test's own in the test database
(tests/support/postgres.py says where that is, and skips -- or, in CI, fails -- without
one)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.postgres import pg_store_url


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """``postgresql://...?store=t_<pid>_<hex>``: dropped after the test."""
    with pg_store_url() as url:
        yield url
