"""Connections to a PostgreSQL store: a small bounded pool, and the one place where the
driver's errors become the store's (docs/postgresql.md, "Faults").

psycopg 3 is an optional dependency (``pip install 'agentjournal[postgres]'``); this module
imports it only when a PostgreSQL store is opened, and says which extra to install when it
is missing.

The pool is ours, not psycopg_pool's, because what it must do is small and must be exact:

- at most ``limits.pg_connections_max - 1`` connections (the last one is the change
  watcher's ``LISTEN``), made on demand, each in autocommit mode (transactions are explicit
  ``BEGIN`` ... ``COMMIT``, so the write path knows exactly which statement it sent) with
  ``synchronous_commit = on``;
- a caller waits at most ``limits.pg_pool_wait_s`` for a free one, and a connection attempt
  at most ``limits.pg_connect_s``: a database that is down fails a call fast;
- a connection that broke is closed and forgotten, and so is every idle one with it (after
  a restart of the database they are all dead): the next call connects afresh, so a server
  recovers by itself once the database is back.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from . import limits
from .errors import StoreError, StoreUnavailable

T = TypeVar("T")
EXTRA_HINT = ("PostgreSQL stores need the driver: pip install 'agentjournal[postgres]' "
              "(psycopg 3)")


class DriverMissing(StoreError):
    """psycopg is not installed."""


def driver() -> Any:
    """The psycopg module, or DriverMissing naming the extra."""
    try:
        import psycopg
    except ImportError as exc:
        raise DriverMissing(f"{EXTRA_HINT}: {exc}") from exc
    return psycopg


def describe_fault(exc: BaseException) -> str:
    """The driver's message, on one line."""
    text = " ".join(str(exc).split())
    return text[:300] or type(exc).__name__


def unreachable(exc: BaseException) -> str:
    return f"the store's database is unreachable: {describe_fault(exc)}"


def connection_lost(conn: Any, exc: BaseException) -> bool:
    """Whether ``exc`` means the connection is gone (rather than a statement refused)."""
    psycopg = driver()
    return bool(conn.closed or conn.broken) or (isinstance(exc, psycopg.OperationalError) and \
        not isinstance(exc, psycopg.errors.LockNotAvailable | psycopg.errors.QueryCanceled))


def connect(dsn: str, *, application_name: str = "agentjournal") -> Any:
    """One connection, autocommit, durable commits; StoreUnavailable when it cannot."""
    psycopg = driver()
    try:
        conn = psycopg.connect(
            dsn, autocommit=True, connect_timeout=max(1, int(limits.pg_connect_s)),
            application_name=application_name)
        conn.execute("SET synchronous_commit = on")
        conn.execute(f"SET statement_timeout = {int(limits.pg_statement_s * 1000)}")
    except psycopg.Error as exc:
        raise StoreUnavailable(f"{unreachable(exc)}; nothing was written") from exc
    return conn


class ConnectionPool:
    """At most ``size_max`` connections to one database, shared by the threads of a process."""

    def __init__(self, dsn: str, size_max: int = limits.pg_connections_max - 1,
                 application_name: str = "agentjournal") -> None:
        self.dsn = dsn
        self.application_name = application_name
        self.size_max = size_max
        self._idle: list[Any] = []
        self._count = 0  # connections made and not yet closed (idle or in use)
        self._cond = threading.Condition()
        self._closed = False
        self.made = 0  # connections made over the pool's life (status, tests)

    @property
    def in_use(self) -> int:
        with self._cond:
            return self._count - len(self._idle)

    @property
    def open_connections(self) -> int:
        with self._cond:
            return self._count

    @contextmanager
    def connection(self) -> Iterator[Any]:
        conn = self.take()
        try:
            yield conn
        finally:
            self.give(conn)

    def take(self) -> Any:
        """A connection of the pool (give it back with ``give``)."""
        deadline = time.monotonic() + limits.pg_pool_wait_s
        with self._cond:
            while True:
                if self._closed:
                    raise StoreUnavailable("the store was closed")
                if self._idle:
                    return self._idle.pop()
                if self._count < self.size_max:
                    self._count += 1
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    raise StoreUnavailable(
                        f"no free connection to the store's database within "
                        f"{limits.pg_pool_wait_s:g}s ({self.size_max} in use: "
                        "limits.pg_connections_max); nothing was written")
                self._cond.wait(left)
        conn = None
        try:
            conn = connect(self.dsn, application_name=self.application_name)
        finally:
            if conn is None:  # the slot goes back; the error itself propagates
                with self._cond:
                    self._count -= 1
                    self._cond.notify()
        self.made += 1
        return conn

    def replace(self, dead: Any) -> Any:
        """A new connection in place of a dead one the caller holds (the count stays; when
        this raises, the caller still holds the dead one and gives it back)."""
        _close_quietly(dead)
        self.discard_idle()
        conn = connect(self.dsn, application_name=self.application_name)
        self.made += 1
        return conn

    def give(self, conn: Any) -> None:
        psycopg = driver()
        healthy = not (conn.closed or conn.broken) and \
            conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        with self._cond:
            if healthy and not self._closed:
                self._idle.append(conn)
                self._cond.notify()
                return
            self._count -= 1
            self._cond.notify()
        _close_quietly(conn)
        if not healthy:
            self.discard_idle()  # one died: the others most likely with it

    def discard_idle(self) -> None:
        """Forget every idle connection (the database restarted: they are all dead)."""
        with self._cond:
            stale, self._idle = self._idle, []
            self._count -= len(stale)
            self._cond.notify_all()
        for conn in stale:
            _close_quietly(conn)

    def run(self, work: Callable[[Any], T], *, retry: bool = True) -> T:
        """``work(conn)`` on a pooled connection. A connection found dead is replaced and
        the work run once more when ``retry`` (reads and idempotent writes only); a database
        that stays unreachable raises StoreUnavailable."""
        psycopg = driver()
        attempts = 2 if retry else 1
        for attempt in range(attempts):
            with self.connection() as conn:
                try:
                    return work(conn)
                except psycopg.Error as exc:
                    if not connection_lost(conn, exc):
                        raise
                    _close_quietly(conn)
                    self.discard_idle()
                    if attempt + 1 == attempts:
                        raise StoreUnavailable(unreachable(exc)) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._count -= len(idle)
            self._cond.notify_all()
        for conn in idle:
            _close_quietly(conn)


def _close_quietly(conn: Any) -> None:
    try:
        conn.close()
    except (OSError, driver().Error):  # closing a dead connection: nothing more to do
        return


__all__ = [
    "ConnectionPool",
    "DriverMissing",
    "connect",
    "connection_lost",
    "describe_fault",
    "driver",
    "unreachable",
]
