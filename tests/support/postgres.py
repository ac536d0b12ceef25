"""Where the PostgreSQL tests find a database, and a store of their own in it.

The database is ``$AGENTJOURNAL_TEST_POSTGRES`` (a libpq URL), else the development and CI
machines' ``postgresql://postgres@127.0.0.1:5432/test``. Where none is reachable, or
psycopg is not installed, the PostgreSQL tests skip with how to enable them -- or, with
``AGENTJOURNAL_REQUIRE_POSTGRES=1`` (``.ci/run``), fail: CI has the database, so a skip
there would hide a regression.

Each test gets a store (a schema) of its own, ``t_<pid>_<hex>``, dropped afterwards.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import cache
from typing import Any

import pytest

URL_ENV = "AGENTJOURNAL_TEST_POSTGRES"
REQUIRE_ENV = "AGENTJOURNAL_REQUIRE_POSTGRES"
URL_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"
HOW_TO = (f"run PostgreSQL on 127.0.0.1:5432 (trust auth, database `test`) or set {URL_ENV}="
          "postgresql://user@host:5432/db, and install the test extra "
          "(`pip install -e '.[test]'`, which brings psycopg)")


def database_url() -> str:
    return os.environ.get(URL_ENV) or URL_DEFAULT


@cache
def postgres_missing() -> str | None:
    """Why no PostgreSQL test can run here, or None."""
    if importlib.util.find_spec("psycopg") is None:
        return "psycopg is not installed"
    import psycopg

    try:
        with psycopg.connect(database_url(), connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"no PostgreSQL at {database_url()}: {' '.join(str(exc).split())[:200]}"
    return None


def verdict(missing: str | None, environ: Mapping[str, str]) -> tuple[str, str] | None:
    """None (run), or ("skip" | "fail", the message)."""
    if missing is None:
        return None
    message = f"PostgreSQL tests need a database: {missing}; {HOW_TO}"
    if environ.get(REQUIRE_ENV) == "1":
        return "fail", f"{message} ({REQUIRE_ENV}=1: they must run here, not skip)"
    return "skip", message


def require_postgres() -> None:
    """Skip (or fail, when required) a test that needs PostgreSQL and has none."""
    found = verdict(postgres_missing(), os.environ)
    if found is None:
        return
    kind, message = found
    if kind == "fail":
        pytest.fail(message)
    pytest.skip(message)


def new_store_name() -> str:
    return f"t_{os.getpid()}_{secrets.token_hex(4)}"


def store_url(name: str) -> str:
    base = database_url()
    return f"{base}{'&' if '?' in base else '?'}store={name}"


def admin(sql: str, params: Any = None) -> list[Any]:
    """Run one statement on the test database (autocommit) and return its rows."""
    import psycopg

    with psycopg.connect(database_url(), autocommit=True) as conn:
        cur = conn.execute(sql, params)
        return cur.fetchall() if cur.description else []


def drop_store(name: str) -> None:
    admin(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@contextmanager
def pg_store_url() -> Iterator[str]:
    """A URL naming a store of this test's own; its schema is dropped afterwards."""
    require_postgres()
    name = new_store_name()
    try:
        yield store_url(name)
    finally:
        drop_store(name)


def terminate_connections(name: str) -> int:
    """pg_terminate_backend for every session of the store (by its application name or
    its lock hold) but this one; how many were ended."""
    rows = admin(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid()"
        " AND (application_name LIKE %s OR application_name LIKE %s)",
        [f"agentjournal%:{name}", f"aj-lock:{name}:%"])
    return sum(1 for (ended,) in rows if ended)
