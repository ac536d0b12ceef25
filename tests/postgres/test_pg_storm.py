"""The kill storm on PostgreSQL: writer processes and stdio MCP servers on one store in the
database, SIGKILLed at random moments, round after round -- and, in every round of the
second storm, every connection of the store ended by the database (pg_terminate_backend)
at a random moment, as a restart of the database does to them.

After every round, on a cold open: every acknowledged mutation is in the records table and
in the state it gives, seqs run from 1 to the head without a duplicate or a hole, no claim
target ever had two active claims, the next writer runs, and doctor --verify-journal is
clean. A server whose connections were ended answers its next calls (it recovers by
itself).

Quick (default): 40 API kills, 18 in MCP rounds, 6 rounds of terminated connections.
--long: many more.
"""

from __future__ import annotations

import random
import threading
from pathlib import Path
from typing import Any

import anyio
import pytest
from support.kill_storm import StormSize, run_round, seed_plans, storm_problems
from support.mcp import SUBPROCESS_TEST_S, call, stdio_server
from support.postgres import (
    database_url,
    drop_store,
    new_store_name,
    require_postgres,
    store_url,
    terminate_connections,
)
from support.reliability import (
    JournalAudit,
)

from journal_core import Store
from journal_core.record import decode_line

API_QUICK = StormSize(rounds=10, writers=4, servers=0, rounds_per_store=5,
                      kill_window_s=0.15, startup_window_s=0.5)
API_LONG = StormSize(rounds=200, writers=8, servers=0, rounds_per_store=10,
                     kill_window_s=0.3, startup_window_s=0.5)
MCP_QUICK = StormSize(rounds=6, writers=1, servers=2, rounds_per_store=3,
                      kill_window_s=0.4, startup_window_s=1.5)
MCP_LONG = StormSize(rounds=60, writers=2, servers=3, rounds_per_store=6,
                     kill_window_s=0.6, startup_window_s=1.5)
WRITER_ARGS = ["--tolerate-faults"]  # an ended connection fails a call: not acknowledged


def audit_table(name: str) -> tuple[JournalAudit, int]:
    """Every row of the store's records table, parsed by the codec alone, and the head row,
    read in one snapshot (a killed writer's COMMIT may still land while we look)."""
    import psycopg

    audit = JournalAudit()
    with psycopg.connect(database_url()) as conn:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        head = conn.execute(f'SELECT head_seq FROM "{name}".head').fetchone()
        rows = conn.execute(f'SELECT line FROM "{name}".records ORDER BY seq').fetchall()
    for (line,) in rows:
        record = decode_line(bytes(line))
        audit.records.append(record)
        audit.by_seq.setdefault(record["seq"], []).append(record)
    return audit, int(head[0]) if head else 0


def check_store(url: str, name: str, api_acks: list[dict[str, Any]],
                mcp_acks: list[dict[str, Any]]) -> list[str]:
    store = Store(url, create=False)
    try:
        audit, head = audit_table(name)
        problems = storm_problems(store, audit, api_acks, mcp_acks)
        if head != max(audit.by_seq, default=0):
            problems.append(f"the head row says {head}, the records end at "
                            f"{max(audit.by_seq, default=0)}")
        return problems
    finally:
        store.close()


def new_store(url: str) -> list[str]:
    with Store(url) as store:
        return seed_plans(store)


class Terminator:
    """Ends every connection of the store again and again, at random moments, until the
    round is over; how many it ended, and in how many rounds."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.ended = 0
        self.rounds_hit = 0

    def during(self, name: str) -> tuple[threading.Event, threading.Thread]:
        stop = threading.Event()

        def run() -> None:
            hit = 0
            while not stop.wait(self.rng.uniform(0.1, 0.4)):
                hit += terminate_connections(name)
            self.ended += hit
            self.rounds_hit += hit > 0

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return stop, thread


def run_storm(tmp_path: Path, size: StormSize, seed: int,
              terminate: bool) -> tuple[int, int, int, int]:
    require_postgres()
    rng = random.Random(seed)
    logs = tmp_path / "logs"
    logs.mkdir()
    kills = acked = 0
    terminator = Terminator(random.Random(rng.randrange(2**31)))
    names: list[str] = []
    url, name, plans = "", "", []
    api_acks: list[dict[str, Any]] = []
    mcp_acks: list[dict[str, Any]] = []
    try:
        for round_no in range(size.rounds):
            if round_no % size.rounds_per_store == 0:
                name = new_store_name()
                names.append(name)
                url = store_url(name)
                plans = new_store(url)
                api_acks, mcp_acks = [], []
            stop, thread = terminator.during(name) if terminate else (None, None)
            try:
                api, mcp, killed = run_round(url, size, rng, plans, logs, round_no,
                                             WRITER_ARGS, startup_exits_ok=terminate)
            finally:
                if stop is not None and thread is not None:
                    stop.set()
                    thread.join(10)
            kills += killed
            api_acks += api
            mcp_acks += mcp
            acked += len(api) + len(mcp)
            problems = check_store(url, name, api_acks, mcp_acks)
            assert not problems, (f"round {round_no} (seed {seed}, store {name}):\n"
                                  + "\n".join(problems[:40]))
    finally:
        for made in names:
            drop_store(made)
    return kills, acked, terminator.ended, terminator.rounds_hit


@pytest.mark.parametrize("size", [API_QUICK, pytest.param(API_LONG, marks=pytest.mark.long)],
                         ids=["quick", "long"])
def test_writers_killed_at_random_moments_lose_nothing_acknowledged_on_postgresql(
    tmp_path: Path, size: StormSize, summary_lines: list[str],
) -> None:
    seed = random.randrange(2**31)
    kills, acked, _, _ = run_storm(tmp_path, size, seed, terminate=False)
    summary_lines.append(f"kill storm (PostgreSQL, API): {kills} kills, {acked} acknowledged "
                         f"mutations checked, seed {seed}")
    assert kills >= size.rounds * size.writers * 0.9, f"only {kills} writers died alive"
    assert acked > size.rounds * size.writers, "the writers acknowledged almost nothing"


@pytest.mark.parametrize("size", [MCP_QUICK, pytest.param(MCP_LONG, marks=pytest.mark.long)],
                         ids=["quick", "long"])
def test_servers_killed_and_connections_ended_mid_storm_lose_no_acknowledged_call(
    tmp_path: Path, size: StormSize, summary_lines: list[str],
) -> None:
    seed = random.randrange(2**31)
    kills, acked, ended, rounds_hit = run_storm(tmp_path, size, seed, terminate=True)
    summary_lines.append(f"kill storm (PostgreSQL, stdio MCP + API, connections ended "
                         f"mid-round): {kills} kills, {ended} connections ended in "
                         f"{rounds_hit} of {size.rounds} rounds, {acked} acknowledged calls "
                         f"checked, seed {seed}")
    assert kills >= size.rounds * (size.writers + size.servers) * 0.7  # some exit at start
    assert rounds_hit >= size.rounds * 0.8, "connections were ended in too few rounds"
    assert acked > size.rounds, "the servers acknowledged almost nothing: storm too short"


@pytest.mark.anyio
async def test_a_server_whose_connections_the_database_ended_answers_its_next_calls(
    pg_url: str, tmp_path: Path,
) -> None:
    name = pg_url.rsplit("store=", 1)[1]
    with anyio.fail_after(SUBPROCESS_TEST_S):
        async with (
            stdio_server(pg_url, tmp_path / "a.err", "--actor", "alice") as alice,
            stdio_server(pg_url, tmp_path / "b.err", "--actor", "bob") as bob,
        ):
            await call(alice, "remember", kind="note", title="before", body="1")
            await call(bob, "read_unseen")
            for _ in range(2):  # twice: the replaced connections are ended too
                assert await anyio.to_thread.run_sync(terminate_connections, name) >= 2
                claimed = await call(alice, "claim", target="file:src/after.py")
                seen = await call(bob, "read_unseen")
                woke = await call(bob, "wait", timeout_s=1)
            listed = await call(alice, "list", item_type="memory")
    assert claimed["entity"]["holder"] == "alice"
    assert [e["actor"] for e in seen["events"]] == ["alice", "alice"]
    assert woke["events"] and listed["items"]
