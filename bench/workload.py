"""What the benchmark writes: stores of a given size, the SQLite baseline's schema and
transaction, the no-op MCP server, and the few file-system facts the rows need."""

from __future__ import annotations

import os
import sqlite3
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from journal_core import Mutation, Store, StoreConfig, verbs

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

BUILD_BATCH_RECORDS = 2000  # records per mutation while building a store (txn max 10,000)
PROGRESS_EVERY_EVENTS = 50_000
ENTITIES_PER_EVENTS = 50  # a built store holds one entity per 50 events (plans, memory)
PLAN_STEPS = 3
GOAL_CHARS = 120
SQLITE_BUSY_MS = 30_000
SEGMENT_PREFIX, SEGMENT_SUFFIX = "seg-", ".jsonl"

Progress = Callable[[str], None]


def quiet(_: str) -> None:
    return None


# -- building a store of N events -----------------------------------------------------------
@dataclass
class BuiltStore:
    root: str
    events: int  # records written by the builder (journal notes and checkpoints aside)
    plans: list[str]
    memory: list[str]
    build_s: float


def build_store(root: str, events: int, progress: Progress = quiet, *,
                goal_chars: int = GOAL_CHARS) -> BuiltStore:
    """A store of ``events`` entity records through the public API, in one process, in
    mutations of BUILD_BATCH_RECORDS records: first the entities (plans and memory items,
    one per ENTITIES_PER_EVENTS events), then plan updates round-robin until ``events``.
    Segments roll (with their checkpoints) exactly as in use: default config. Goals and
    bodies are ``goal_chars`` long (longer ones make bigger records)."""
    started = time.perf_counter()
    built = BuiltStore(root, 0, [], [], 0.0)
    entities = max(4, events // ENTITIES_PER_EVENTS)
    reported = 0
    with Store(root) as store:
        while built.events < events:
            batch = min(BUILD_BATCH_RECORDS, events - built.events)
            missing = entities - len(built.plans) - len(built.memory)
            if missing > 0:
                count = min(batch, missing)
                created, committed = store.mutate("builder", lambda m, n=count:
                                                  _create_entities(m, n, len(built.plans),
                                                                   goal_chars))
                built.plans += [key[1] for key in created if key[0] == "plan"]
                built.memory += [key[1] for key in created if key[0] == "memory"]
            else:
                batch = min(batch, len(built.plans))
                _, committed = store.mutate("builder", lambda m, n=batch, at=built.events:
                                            _update_plans(m, built.plans, at, n, goal_chars))
            built.events += committed.count
            if built.events - reported >= max(events // 10, PROGRESS_EVERY_EVENTS):
                reported = built.events
                progress(f"  built {built.events:,}/{events:,} events "
                         f"({time.perf_counter() - started:.0f}s)")
    built.build_s = time.perf_counter() - started
    return built


def build_agent_store(root: str, events: int, progress: Progress = quiet) -> BuiltStore:
    """A store of ``events`` records written as agents write them: one entity change per
    mutation (a plan or memory item created, or a plan updated), so every txn is one record.
    Built without fsync (the build is not what is measured)."""
    started = time.perf_counter()
    built = BuiltStore(root, 0, [], [], 0.0)
    entities = max(4, events // ENTITIES_PER_EVENTS)
    with Store(root, StoreConfig(fsync="never")) as store:
        while built.events < events:
            if len(built.plans) + len(built.memory) < entities:
                [key], committed = store.mutate("builder", lambda m: _create_entities(
                    m, 1, len(built.plans) + len(built.memory)))
                (built.plans if key[0] == "plan" else built.memory).append(key[1])
            else:
                _, committed = store.mutate("builder", lambda m, at=built.events:
                                            _update_plans(m, built.plans, at, 1))
            built.events += committed.count
            if built.events % PROGRESS_EVERY_EVENTS == 0:
                progress(f"  built {built.events:,}/{events:,} events "
                         f"({time.perf_counter() - started:.0f}s)")
    built.build_s = time.perf_counter() - started
    return built


def _create_entities(m: Mutation, count: int, plans_before: int,
                     goal_chars: int = GOAL_CHARS) -> list[tuple[str, str]]:
    keys = []
    for index in range(count):
        number = plans_before + index
        if index % 2 == 0:
            keys.append(verbs.plan_create(
                m, f"plan {number}", _text(number, goal_chars),
                steps=[f"step {s}" for s in range(1, PLAN_STEPS + 1)]))
        else:
            keys.append(verbs.remember(m, "decision", f"decision {number}",
                                       _text(number, goal_chars)))
    return keys


def _update_plans(m: Mutation, plans: list[str], at: int, count: int,
                  goal_chars: int = GOAL_CHARS) -> None:
    for index in range(count):
        verbs.plan_update(m, plans[(at + index) % len(plans)],
                          goal=_text(at + index, goal_chars))


def _text(number: int, chars: int = GOAL_CHARS) -> str:
    phrase = "keep the journal the truth "
    return (f"goal {number}: " + phrase * (chars // len(phrase) + 1))[:chars]


def top_up_tail(root: str, plans: list[str], tail_bytes: int, progress: Progress = quiet) -> int:
    """Append plan updates until the active segment holds about ``tail_bytes`` (stopping
    short of a roll): the tail a rebuild replays after the newest checkpoint."""
    written = 0
    with Store(root) as store:
        while True:
            size = os.path.getsize(segment_paths(root)[-1])
            line_bytes = 1 + size // max(1, _records_in(segment_paths(root)[-1]))
            room = (tail_bytes - size) // max(line_bytes, 1)
            if room < 1:
                break
            count = min(room, BUILD_BATCH_RECORDS, len(plans))
            _, committed = store.mutate("builder", lambda m, n=count, at=written:
                                        _update_plans(m, plans, at, n))
            written += committed.count
    progress(f"  topped up the tail with {written:,} events")
    return written


def _records_in(path: str) -> int:
    with open(path, "rb") as handle:
        return handle.read().count(b"\n{") or 1


# -- the journal on disk ------------------------------------------------------------
def segment_paths(root: str) -> list[str]:
    events = os.path.join(root, "events")
    names = sorted(n for n in os.listdir(events)
                   if n.startswith(SEGMENT_PREFIX) and n.endswith(SEGMENT_SUFFIX))
    return [os.path.join(events, name) for name in names]


def checkpoint_paths(root: str) -> list[str]:
    folder = os.path.join(root, "events", "checkpoints")
    if not os.path.isdir(folder):
        return []
    return [os.path.join(folder, n) for n in sorted(os.listdir(folder)) if n.endswith(".json")]


def read_bytes(paths: list[str]) -> int:
    """Open and read files whole: the I/O floor of anything that reads them."""
    total = 0
    for path in paths:
        with open(path, "rb") as handle:
            total += len(handle.read())
    return total


def journal_lines(root: str) -> list[bytes]:
    lines: list[bytes] = []
    for path in segment_paths(root):
        with open(path, "rb") as handle:
            lines += [line for line in handle.read().split(b"\n") if line.startswith(b"{")]
    return lines


def last_record_line(root: str) -> bytes:
    return journal_lines(root)[-1]


def dir_bytes(root: str) -> int:
    total = 0
    for folder, _, names in os.walk(root):
        total += sum(os.path.getsize(os.path.join(folder, n)) for n in names)
    return total


def fs_type(path: str) -> dict[str, str]:
    """The mount holding ``path`` (longest matching mount point in /proc/mounts)."""
    found = {"mount_point": "?", "fs_type": "?", "device": "?"}
    try:
        with open("/proc/mounts", encoding="utf-8") as handle:
            mounts = [line.split()[:3] for line in handle]
    except OSError:
        return found
    path = os.path.realpath(path)
    best = ""
    for device, point, kind in mounts:
        inside = path == point or path.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best = point
            found = {"mount_point": point, "fs_type": kind, "device": device}
    return found


# -- the SQLite baseline ----------------------------------------------------------------------
SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, ts TEXT NOT NULL, actor TEXT NOT NULL,
    action TEXT NOT NULL, item_type TEXT NOT NULL, item_id TEXT NOT NULL,
    entity_rev INTEGER NOT NULL, payload TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entities (
    item_type TEXT NOT NULL, item_id TEXT NOT NULL, entity_rev INTEGER NOT NULL,
    payload TEXT NOT NULL, PRIMARY KEY (item_type, item_id));
"""


def sqlite_connect(path: str) -> sqlite3.Connection:
    """One connection per process: WAL, synchronous=FULL (every commit fsynced)."""
    connection = sqlite3.connect(path, isolation_level=None, timeout=SQLITE_BUSY_MS / 1000)
    connection.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    connection.executescript(SQLITE_SCHEMA)
    return connection


def sqlite_claim(connection: sqlite3.Connection, actor: str, number: int) -> None:
    """One claim's worth of work: an event row and an entity upsert, in one txn."""
    item_id = f"clm_{actor.replace('#', '_')}_{number}"
    payload = orjson.dumps({
        "schema_version": 1, "id": item_id, "created_at": "2031-05-06T07:08:09Z",
        "created_by": actor, "target": f"file:{actor}/{number}.py", "holder": actor,
        "status": "active", "ttl_s": 900, "expires_at": "2031-05-06T07:23:09Z",
    }).decode()
    connection.execute("BEGIN IMMEDIATE")
    try:
        connection.execute(
            "INSERT INTO events (ts, actor, action, item_type, item_id, entity_rev, payload)"
            " VALUES (strftime('%Y-%m-%dT%H:%M:%fZ'), ?, 'claim', 'claim', ?, 1, ?)",
            (actor, item_id, payload))
        connection.execute(
            "INSERT INTO entities (item_type, item_id, entity_rev, payload) VALUES "
            "('claim', ?, 1, ?) ON CONFLICT (item_type, item_id) DO UPDATE SET "
            "entity_rev = entity_rev + 1, payload = excluded.payload", (item_id, payload))
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise


# -- the no-op MCP server ---------------------------------------------------------------------
def noop() -> dict[str, Any]:
    """Does nothing: the cost of one MCP tool call on this transport."""
    return {}


def noop_server() -> MCPServer:
    from mcp.server.mcpserver import MCPServer  # not imported by the writer processes

    server: MCPServer = MCPServer("noop", log_level="WARNING")
    server.add_tool(noop, name="noop", structured_output=True)
    return server


def python_env() -> dict[str, str]:
    """Environment of child processes: this checkout importable, nothing of ours inherited."""
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTJOURNAL_")}
    env["PYTHONPATH"] = repo + os.pathsep + env.get("PYTHONPATH", "")
    return env


PYTHON = sys.executable
# The write path as `agentjournal serve` runs it: projection files written by a thread after
# the unlock, off the caller's path (a Store's API default writes them in the caller).
SERVED = StoreConfig(projections="background")
