"""kill -9 storm: writer processes doing real mutations, through the public
API and through stdio MCP servers, are SIGKILLed at random moments, round after round.

Each writer prints one line per mutation AFTER the call returned (a stdio server answers
after the store returned); lines the driver received whole are the acknowledged mutations.
After every round, on a cold open: every acknowledged mutation is in the journal and in the
state it gives, no seq is on two lines and none is missing, no claim target ever had two
active claims, and -- once the next writer has run -- doctor --verify-journal is clean.

Quick (default): 160 API kills + 48 in MCP rounds = 208 kills. --long: 4,480 + 560.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from support.kill_storm import StormSize, run_round, seed_plans, storm_problems
from support.reliability import (
    audit_journal,
    open_checked,
)

from journal_core import Store, StoreConfig

SEGMENT_BYTES = 48_000  # small segments: rolls (and their checkpoints) happen under the kills
CONFIG = StoreConfig(segment_bytes_max=SEGMENT_BYTES)
API_QUICK = StormSize(rounds=40, writers=4, servers=0, rounds_per_store=5,
                      kill_window_s=0.08, startup_window_s=0.3)
API_LONG = StormSize(rounds=560, writers=8, servers=0, rounds_per_store=8,
                     kill_window_s=0.12, startup_window_s=0.3)
MCP_QUICK = StormSize(rounds=16, writers=1, servers=2, rounds_per_store=4,
                      kill_window_s=0.15, startup_window_s=1.2)
MCP_LONG = StormSize(rounds=140, writers=1, servers=3, rounds_per_store=8,
                     kill_window_s=0.25, startup_window_s=1.2)


# -- checks ---------------------------------------------------------------------------------
def check_store(root: Path, api_acks: list[dict[str, Any]],
                mcp_acks: list[dict[str, Any]]) -> list[str]:
    """Cold open; every acknowledged mutation holds; seqs and claims are sound; the next
    writer runs; doctor --verify-journal is clean."""
    store = open_checked(root, CONFIG)
    try:
        return storm_problems(store, audit_journal(root), api_acks, mcp_acks)
    finally:
        store.close()


def new_store(root: Path) -> list[str]:
    with Store(str(root), CONFIG) as store:
        return seed_plans(store)


def run_storm(tmp_path: Path, size: StormSize, seed: int) -> tuple[int, int]:
    rng = random.Random(seed)
    logs = tmp_path / "logs"
    logs.mkdir()
    kills = acked = 0
    root, plans = tmp_path / "store-0", []
    api_acks: list[dict[str, Any]] = []
    mcp_acks: list[dict[str, Any]] = []
    for round_no in range(size.rounds):
        if round_no % size.rounds_per_store == 0:
            root = tmp_path / f"store-{round_no}"
            plans = new_store(root)
            api_acks, mcp_acks = [], []
        api, mcp, killed = run_round(root, size, rng, plans, logs, round_no,
                                     ["--segment-bytes", str(SEGMENT_BYTES)])
        kills += killed
        api_acks += api
        mcp_acks += mcp
        acked += len(api) + len(mcp)
        problems = check_store(root, api_acks, mcp_acks)
        assert not problems, (f"round {round_no} (seed {seed}, store {root}):\n"
                              + "\n".join(problems[:40]))
    return kills, acked


@pytest.mark.parametrize("size", [API_QUICK, pytest.param(API_LONG, marks=pytest.mark.long)],
                         ids=["quick", "long"])
def test_api_writers_killed_at_random_moments_lose_nothing_acknowledged(
    tmp_path: Path, size: StormSize, summary_lines: list[str],
) -> None:
    seed = random.randrange(2**31)
    kills, acked = run_storm(tmp_path, size, seed)
    summary_lines.append(f"kill storm (API): {kills} kills, {acked} acknowledged mutations "
                         f"checked, seed {seed}")
    assert kills >= size.rounds * size.writers * 0.9, f"only {kills} writers died alive"


@pytest.mark.parametrize("size", [MCP_QUICK, pytest.param(MCP_LONG, marks=pytest.mark.long)],
                         ids=["quick", "long"])
def test_stdio_servers_killed_at_random_moments_lose_no_acknowledged_call(
    tmp_path: Path, size: StormSize, summary_lines: list[str],
) -> None:
    seed = random.randrange(2**31)
    kills, acked = run_storm(tmp_path, size, seed)
    summary_lines.append(f"kill storm (stdio MCP + API): {kills} kills, {acked} acknowledged "
                         f"calls checked, seed {seed}")
    assert kills >= size.rounds * (size.writers + size.servers) * 0.9
    assert acked > size.rounds, "the servers acknowledged almost nothing: storm too short"
