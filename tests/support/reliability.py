"""Helpers of the reliability suite (tests/crash, tests/stress): child processes read line
by line with bounded waits, and an independent audit of the journal files.

A plain module beside tests/conftest.py (pytest puts that folder on sys.path), imported by
name from the crash and stress tests.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import orjson

from journal_core import FAMILIES, Store, StoreConfig, doctor
from journal_core.entities import mask_ephemeral
from journal_core.errors import RecordInvalid
from journal_core.ids import FAMILY_PREFIXES
from journal_core.record import decode_line
from journal_core.replay import is_redacted
from journal_core.segment import list_segments

REPO = Path(__file__).resolve().parents[2]
WRITER_SCRIPT = REPO / "tests" / "support" / "storm_writer.py"
READY_WAIT_S = 30.0  # bound on a child's start-up (imports, store open) on a loaded machine
EXIT_WAIT_S = 30.0  # bound on a child's exit once killed or told to stop
READ_CHUNK_BYTES = 65536
# After a kill, a round's store is checked with diagnose(verify_journal=True); these are
# the only findings a healthy store may show (INFO level findings never fail a check).
Record = dict[str, Any]


def gone(store: Store) -> None:
    """A store whose process was killed: every fd it held is closed (its lock goes with
    them), nothing else it would have done runs."""
    store.journal.close()
    store.replica.close()


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a child: this checkout importable, no store of the caller's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTJOURNAL_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [env.get("PYTHONPATH"), str(REPO),
                                                     str(REPO / "tests")]))
    env.update(extra)
    return env


# -- children read line by line ----------------------------------------------------------
@dataclass
class Child:
    """A child process whose stdout is read as whole lines; a partial last line is not a
    line (it was never fully received, so nothing it says is acknowledged)."""

    name: str
    proc: subprocess.Popen[bytes]
    lines: list[str] = field(default_factory=list)
    buffer: bytes = b""
    closed: bool = False

    @property
    def pid(self) -> int:
        return self.proc.pid

    def feed(self, data: bytes) -> None:
        self.buffer += data
        *whole, self.buffer = self.buffer.split(b"\n")
        self.lines.extend(line.decode("utf-8", "replace") for line in whole)

    def send(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text.encode())
        self.proc.stdin.flush()

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)

    def reap(self) -> int:
        """Wait (bounded) for the exit; kill if it overstays."""
        try:
            return self.proc.wait(timeout=EXIT_WAIT_S)
        except subprocess.TimeoutExpired:
            self.kill()
            return self.proc.wait(timeout=EXIT_WAIT_S)

    def close_pipes(self) -> None:
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()


def spawn(name: str, command: list[str], stderr: IO[bytes], *, stdin: bool = False,
          env: dict[str, str] | None = None) -> Child:
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=stderr,
        stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
        env=env or child_env(), cwd=str(REPO), bufsize=0,
    )
    os.set_blocking(proc.stdout.fileno(), False)  # type: ignore[union-attr]
    return Child(name, proc)


def writer_command(store: Path, actor: str, seed: int, *extra: str) -> list[str]:
    return [sys.executable, str(WRITER_SCRIPT), "--store", str(store), "--actor", actor,
            "--seed", str(seed), *extra]


class Pump:
    """Reads the stdout of several children; every wait is bounded by a deadline."""

    def __init__(self, children: Iterable[Child]) -> None:
        self.selector = selectors.DefaultSelector()
        self.children = list(children)
        for child in self.children:
            self.selector.register(child.proc.stdout, selectors.EVENT_READ, child)  # type: ignore[arg-type]

    def close(self) -> None:
        self.selector.close()

    def pump(self, deadline: float) -> None:
        """Read what arrives until ``deadline`` (monotonic) or every pipe is closed."""
        while not all(child.closed for child in self.children):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            for key, _ in self.selector.select(timeout=remaining):
                self._read(key.data)

    def drain(self) -> None:
        """Read every pipe to its end (the children are dead or exiting), bounded."""
        self.pump(time.monotonic() + EXIT_WAIT_S)
        stuck = [child.name for child in self.children if not child.closed]
        if stuck:
            raise AssertionError(f"stdout of {stuck} did not close within {EXIT_WAIT_S}s")

    def wait_until(self, ready: Any, timeout_s: float, what: str) -> None:
        """Pump until ``ready()`` holds; fail after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while not ready():
            if time.monotonic() >= deadline or all(c.closed for c in self.children):
                if ready():
                    return
                raise AssertionError(f"timed out waiting for {what}")
            self.pump(min(deadline, time.monotonic() + 0.05))

    def _read(self, child: Child) -> None:
        assert child.proc.stdout is not None
        try:
            data = os.read(child.proc.stdout.fileno(), READ_CHUNK_BYTES)
        except BlockingIOError:
            return
        if not data:
            child.closed = True
            self.selector.unregister(child.proc.stdout)
            return
        child.feed(data)


def acks_of(child: Child) -> list[dict[str, Any]]:
    return [orjson.loads(line[2:]) for line in child.lines if line.startswith("A ")]


def is_ready(child: Child) -> bool:
    return any(line.startswith("READY ") for line in child.lines)


# -- an independent audit of the journal files -------------------------------------------
@dataclass
class JournalAudit:
    """Every line of every segment (kept and archived), parsed by the codec alone."""

    records: list[Record] = field(default_factory=list)  # parsed, in file order
    bad_lines: list[str] = field(default_factory=list)  # unparseable, not a final fragment
    fragments: list[str] = field(default_factory=list)  # unterminated final lines
    by_seq: dict[int, list[Record]] = field(default_factory=dict)

    def groups(self) -> list[list[Record]]:
        """Consecutive records of one txn, in file order, complete ones only."""
        out: list[list[Record]] = []
        current: list[Record] = []
        for record in self.records:
            key = (record["writer"], *record["txn"])
            if current and (current[0]["writer"], *current[0]["txn"]) != key:
                out.append(current)
                current = []
            current.append(record)
        if current:
            out.append(current)
        return [g for g in out if [r["seq"] for r in g] == list(
            range(g[0]["txn"][0], g[0]["txn"][0] + g[0]["txn"][1]))]


def segment_files(root: Path) -> list[Path]:
    events = root / "events"
    paths = []
    for folder in (events / "archive", events):
        if folder.is_dir():
            names = [n for n in os.listdir(folder) if n.startswith("seg-")]
            paths += [(first, folder / f"seg-{first:012d}.jsonl")
                      for first in list_segments(names)]
    return [path for _, path in sorted(paths)]


def audit_journal(root: Path) -> JournalAudit:
    audit = JournalAudit()
    for path in segment_files(root):
        data = path.read_bytes()
        *lines, tail = data.split(b"\n")
        if tail:
            audit.fragments.append(f"{path.name}: {tail[:80]!r}")
        for line in lines:
            if not line or line.isspace():
                continue
            try:
                record = decode_line(line)
            except RecordInvalid:
                audit.bad_lines.append(f"{path.name}: {line[:120]!r}")
                continue
            audit.records.append(record)
            audit.by_seq.setdefault(record["seq"], []).append(record)
    return audit


def seq_problems(audit: JournalAudit) -> list[str]:
    """Every seq from 1 to the head appears on exactly one valid line."""
    problems = [f"seq {seq} on {len(rs)} lines: {[r['writer'] for r in rs]}"
                for seq, rs in sorted(audit.by_seq.items()) if len(rs) > 1]
    head = max(audit.by_seq, default=0)
    missing = sorted(set(range(1, head + 1)) - set(audit.by_seq))
    if missing:
        problems.append(f"seqs missing below the head {head}: {missing[:20]}")
    return problems


def claim_problems(audit: JournalAudit) -> list[str]:
    """Replay the claims txn by txn: after every txn, no target has two active claims."""
    claims: dict[str, tuple[str, str, str]] = {}  # claim id -> (target, status, holder)
    problems = []
    for group in audit.groups():
        touched = set()
        for record in group:
            if record["item_type"] != "claim" or record["action"] == "delete":
                continue
            payload = record.get("payload") or {}
            claims[record["item_id"]] = (payload.get("target", ""), payload.get("status", ""),
                                         payload.get("holder", ""))
            touched.add(payload.get("target", ""))
        for target in touched:
            holders = [(cid, h) for cid, (t, s, h) in claims.items()
                       if t == target and s == "active"]
            if len(holders) > 1:
                problems.append(f"after seq {group[-1]['seq']}: {target} held by {holders}")
    return problems


# -- acknowledged mutations ---------------------------------------------------------------
def api_ack_problems(ack: dict[str, Any], audit: JournalAudit, store: Store) -> list[str]:
    """An acknowledged API mutation: its records are in the journal, written by its writer
    as one txn, and its effect holds in the state the journal gives (cold open)."""
    problems = []
    for seq in range(ack["seq"], ack["seq"] + ack["n"]):
        mine = [r for r in audit.by_seq.get(seq, [])
                if r["writer"] == ack["w"] and r["txn"] == [ack["seq"], ack["n"]]]
        if not mine:
            problems.append(f"acknowledged {ack['op']} lost seq {seq}: {ack}")
    family, item_id = ack["key"]
    entity = store.state.entity(family, item_id)
    if entity is None or entity.deleted or entity.payload is None:
        return [*problems, f"acknowledged {ack['op']} lost {family} {item_id}: {ack}"]
    payload = entity.payload
    expected = {"release": ("status", "released"), "forget": ("status", "archived"),
                "complete": ("status", "completed")}.get(ack["op"])
    if expected and payload.get(expected[0]) != expected[1]:
        problems.append(f"acknowledged {ack['op']} undone: {item_id} is {payload}")
    if ack["op"] == "complete":
        problems += step_done_problems(store, ack["plan"], ack["step"], ack)
    return problems


def step_done_problems(store: Store, plan_id: str, step_id: str, ack: Any) -> list[str]:
    plan = store.state.entity("plan", plan_id)
    steps = {s["id"]: s for s in (plan.payload or {}).get("steps", [])} if plan else {}
    step = steps.get(step_id)
    if step is None or step.get("status") != "done":
        return [f"acknowledged completion of {plan_id}/{step_id} lost: {step} ({ack})"]
    return []


def mcp_ack_problems(ack: dict[str, Any], audit: JournalAudit, store: Store) -> list[str]:
    """An acknowledged tool call: the entity's record at the answered (seq, rev) is in the
    journal and the entity holds at least that rev."""
    family, item_id = ack["key"]
    found = [r for r in audit.by_seq.get(ack["seq"], [])
             if r.get("item_id") == item_id and r.get("entity_rev") == ack["rev"]]
    problems = [] if found or ack["seq"] is None else [
        f"acknowledged tool call lost its record: {ack}"]
    entity = store.state.entity(family, item_id)
    if entity is None or entity.rev < ack["rev"]:
        problems.append(f"acknowledged tool call lost {family} {item_id}: {ack}")
    elif ack["op"] == "complete":
        problems += step_done_problems(store, ack["plan"], ack["step"], ack)
    return problems


# -- doctor --------------------------------------------------------------------------------
def verify_problems(store: Store) -> list[str]:
    """doctor --verify-journal through the API: no ERROR or WARNING, nothing divergent."""
    report = doctor.diagnose(store, verify_journal=True)
    problems = [f"{f.level} {f.code}: {f.message}" for f in report.problems]
    problems += [f"divergent {row}" for row in report.divergent if not report.problems]
    return problems


def open_checked(root: Path, config: StoreConfig | None = None) -> Store:
    return Store(str(root), config, create=False)


def percentiles(values: list[float], points: Iterable[int] = (50, 95, 99)) -> dict[str, float]:
    """Nearest-rank percentiles (p50, p95, p99) of ``values``."""
    ordered = sorted(values)
    if not ordered:
        return {f"p{p}": 0.0 for p in points}
    out = {}
    for point in points:
        rank = max(1, -(-point * len(ordered) // 100))  # ceil(p/100 * n), 1-based
        out[f"p{point}"] = ordered[rank - 1]
    return out


# -- deterministic runs and what a reader sees ------------------------------------------------
FIXED_NOW = datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)
View = dict[tuple[str, str], tuple[int, Any]]


class DeterministicIds:
    """Stand-in for journal_core.mutation.new_item_id: ids from a counter in a namespace,
    so two runs of one operation write the same entities (with a fixed clock)."""

    def __init__(self) -> None:
        self.counter = itertools.count()
        self.namespace = "a"

    def reset(self, namespace: str) -> None:
        self.counter, self.namespace = itertools.count(), namespace

    def __call__(self, family: str) -> str:
        return f"{FAMILY_PREFIXES[family]}{self.namespace}{next(self.counter):015x}"


Context = dict[str, Any]  # what an operation's base store made (ids, seqs) for it to use


@dataclass(frozen=True)
class Operation:
    """One operation the crash and fault tests break: a mutation or maintenance."""

    name: str
    run: Callable[[Store, Context], object]
    config: StoreConfig | None = None  # None: the test file's default config
    maintenance: bool = False  # retried after the fault instead of assuming the next write


def visible(store: Store) -> View:
    """Every live entity as the fresh path serves it: (rev, payload without ephemeral
    fields; a redaction marker as just 'redacted')."""
    seen: View = {}
    for family in FAMILIES:
        rows, stale = store.entities(family)
        assert not stale
        for row in rows:
            payload = row["entity"]
            shown = "redacted" if is_redacted(payload) else mask_ephemeral(family, payload)
            seen[(family, row["item_id"])] = (row["entity_rev"], shown)
    return seen


def describe(view: View, before: View, after: View) -> str:
    """The entities on which three views do not all agree, one line each."""
    keys = sorted(set(view) | set(before) | set(after))
    rows = [f"{k}: seen {view.get(k, '-')!s:.90} | before {before.get(k, '-')!s:.90} | "
            f"after {after.get(k, '-')!s:.90}" for k in keys
            if not view.get(k) == before.get(k) == after.get(k)]
    return "\n".join(rows)


# -- the I/O seam, observed ------------------------------------------------------------------
@dataclass
class Step:
    op: str
    path: str  # relative to the store root
    size: int  # the file's size when the operation began (segments: what an fsync syncs)


@dataclass
class Recorder:
    """Observer of the I/O seam: the operations in order, with file sizes."""

    root: str
    steps: list[Step] = field(default_factory=list)

    def __call__(self, op: str, path: str) -> None:
        try:
            size = os.stat(path).st_size
        except OSError:
            size = -1
        self.steps.append(Step(op, os.path.relpath(path, self.root), size))
