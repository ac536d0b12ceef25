"""Row 15: a store in PostgreSQL, against the database's own floor on the same server and
connection settings (``synchronous_commit = on``).

The database is ``$AGENTJOURNAL_BENCH_POSTGRES``, else ``$AGENTJOURNAL_TEST_POSTGRES``, else
``postgresql://postgres@127.0.0.1:5432/test``; where none is reachable (or psycopg is not
installed) the rows are left out, with the reason on stderr. Each run uses stores (schemas)
of its own and drops them.
"""

from __future__ import annotations

import multiprocessing
import os
import secrets
import sys
import time
from typing import TYPE_CHECKING, Any

import anyio

from journal_core import Store, verbs
from journal_core.record import encode_built

from .report import Row, Target, percentile
from .touch import _wake_latencies

if TYPE_CHECKING:
    from .rows import Sizes, Workspace

MS = 1000.0
URL_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"
RAW_TABLE = "raw_inserts"


def database_url() -> str:
    return (os.environ.get("AGENTJOURNAL_BENCH_POSTGRES")
            or os.environ.get("AGENTJOURNAL_TEST_POSTGRES") or URL_DEFAULT)


def missing() -> str | None:
    """Why row 15 cannot run here, or None."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install 'agentjournal[postgres]')"
    try:
        with psycopg.connect(database_url(), connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"no PostgreSQL at {database_url()}: {' '.join(str(exc).split())[:160]}"
    return None


def _admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(database_url(), autocommit=True) as conn:
        conn.execute(sql)


def _store_url(name: str) -> str:
    base = database_url()
    return f"{base}{'&' if '?' in base else '?'}store={name}"


def row_postgres(ws: Workspace, sizes: Sizes) -> list[Row]:
    reason = missing()
    if reason is not None:
        sys.stderr.write(f"row 15 left out: {reason}\n")
        return []
    name = f"bench_{secrets.token_hex(4)}"
    _admin(f'CREATE SCHEMA "{name}_raw"')
    _admin(f'CREATE TABLE "{name}_raw".{RAW_TABLE} (id bigserial PRIMARY KEY, line bytea)')
    try:
        return (_claim_latency(name, sizes) + _throughput(name, sizes)
                + _wake(name, ws, sizes))
    finally:
        for schema in (name, f"{name}_claims", f"{name}_writers", f"{name}_wake",
                       f"{name}_raw"):
            _admin(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


# -- 15a: claim p50 vs a raw INSERT + COMMIT ---------------------------------------------------
def _claim_latency(name: str, sizes: Sizes) -> list[Row]:
    import psycopg

    claims_s: list[float] = []
    raw_s: list[float] = []
    with Store(_store_url(f"{name}_claims")) as store, \
            psycopg.connect(database_url()) as raw:
        raw.execute("SET synchronous_commit = on")
        raw.commit()
        line = b""
        insert = f'INSERT INTO "{name}_raw".{RAW_TABLE} (line) VALUES (%s)'
        for number in range(sizes.warmup + sizes.claims):
            started = time.perf_counter()
            _, committed = store.mutate("bench", lambda m, n=number: verbs.claim(
                m, f"file:src/c{n}.py"))
            claim_s = time.perf_counter() - started
            if not line:
                record = next(iter(store.journal.scan(committed.first_seq - 1))).records[0]
                line = encode_built(record)
            started = time.perf_counter()
            raw.execute(insert, [line])
            raw.commit()
            raw_elapsed = time.perf_counter() - started
            if number >= sizes.warmup:
                claims_s.append(claim_s)
                raw_s.append(raw_elapsed)
    details = {"claims": sizes.claims, "claim_p99_ms": percentile(claims_s, 99) * MS,
               "raw_p99_ms": percentile(raw_s, 99) * MS, "record_bytes": len(line)}
    return [Row("15a", "PostgreSQL claim, p50", "ms", percentile(claims_s, 50) * MS,
                percentile(raw_s, 50) * MS, "raw single-row INSERT + COMMIT p50",
                Target("ratio_max", 2.0, "≤ 2x baseline"), details)]


# -- 15b: 8 writer processes vs 8 processes of raw INSERT + COMMIT -------------------------
def _throughput(name: str, sizes: Sizes) -> list[Row]:
    writers = max(sizes.writers)
    url = _store_url(f"{name}_writers")
    Store(url).close()
    context = multiprocessing.get_context("spawn")
    with context.Pool(writers) as pool:
        start = time.time() + 2.0  # every process is up by then
        ours = pool.starmap(_store_writer, [(url, n, start, sizes.throughput_s)
                                            for n in range(writers)])
        start = time.time() + 1.0
        raw = pool.starmap(_raw_writer, [(database_url(), f'"{name}_raw".{RAW_TABLE}',
                                          start, sizes.throughput_s, 400)
                                         for _ in range(writers)])
    rate = sum(ours) / sizes.throughput_s
    raw_rate = sum(raw) / sizes.throughput_s
    return [Row("15b", f"PostgreSQL: {writers} writer processes", "mutations/s", rate,
                raw_rate, f"{writers} processes of raw INSERT + COMMIT",
                Target("ratio_min", 0.5, "≥ 0.5x baseline"),
                {"writers": writers, "run_s": sizes.throughput_s, "mutations": sum(ours),
                 "raw_commits": sum(raw)})]


def _store_writer(url: str, number: int, start: float, run_s: float) -> int:
    with Store(url, create=False) as store:
        time.sleep(max(0.0, start - time.time()))
        done = 0
        deadline = time.monotonic() + run_s
        while time.monotonic() < deadline:
            store.mutate(f"w{number}", lambda m, d=done: verbs.claim(
                m, f"file:w{number}/{d}.py"))
            done += 1
    return done


def _raw_writer(url: str, table: str, start: float, run_s: float, size: int) -> int:
    import psycopg

    line = b"x" * size
    with psycopg.connect(url) as conn:
        conn.execute("SET synchronous_commit = on")
        conn.commit()
        time.sleep(max(0.0, start - time.time()))
        done = 0
        deadline = time.monotonic() + run_s
        while time.monotonic() < deadline:
            conn.execute(f"INSERT INTO {table} (line) VALUES (%s)", [line])
            conn.commit()
            done += 1
    return done


# -- 15c, 15d: wait woken across processes through NOTIFY ----------------------------------------
def _wake(name: str, ws: Workspace, sizes: Sizes) -> list[Row]:
    url = _store_url(f"{name}_wake")
    Store(url).close()
    waits_s = anyio.run(_wake_latencies, url, sizes.wakes, sizes.warmup,
                        ws.path("pgwake", "server.log"))
    raw_s = _notify_echoes(sizes.wakes, sizes.warmup)
    details: dict[str, Any] = {"wakes": sizes.wakes, "wait_max_ms": max(waits_s) * MS}
    return [
        Row("15c", "PostgreSQL wait woken by another process's commit, p50", "ms",
            percentile(waits_s, 50) * MS, percentile(raw_s, 50) * MS,
            "raw NOTIFY to LISTEN p50", Target("value_max", 100.0, "< 100 ms"), details),
        Row("15d", "PostgreSQL wait woken by another process's commit, p99", "ms",
            percentile(waits_s, 99) * MS, percentile(raw_s, 99) * MS,
            "raw NOTIFY to LISTEN p99", Target("value_max", 500.0, "< 500 ms"), details),
    ]


def _notify_echoes(wakes: int, warmup: int) -> list[float]:
    import psycopg

    times: list[float] = []
    with psycopg.connect(database_url(), autocommit=True) as listener, \
            psycopg.connect(database_url(), autocommit=True) as sender:
        listener.execute("LISTEN bench_echo")
        for number in range(warmup + wakes):
            started = time.perf_counter()
            sender.execute("NOTIFY bench_echo")
            for _ in listener.notifies(timeout=10, stop_after=1):
                break
            if number >= warmup:
                times.append(time.perf_counter() - started)
    return times


TITLES = {"15": "PostgreSQL: claim vs raw INSERT, 8 writers, wait via NOTIFY"}
ROWS = {"15": row_postgres}
