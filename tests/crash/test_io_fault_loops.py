"""I/O fault loops through the I/O seam (SQLite's I/O-error tests; STYLE "Shape of the code").

For every kind of mutation, and for a segment roll, a checkpoint (compact), gc and redact:
count the file operations it makes, then for N = 1, 2, ... fail the N-th one -- once, and
for good (EIO, ENOSPC), or as a short write. Each time:
  - a mutation tells the caller the truth. A fault before the journal's fsync is an error
    that says it was not applied (``NotApplied``), a fault of that fsync says the outcome is
    unknown (``OutcomeUnknown``), and a fault after it -- a projection or meta.json write, a
    cache -- is no error at all: the mutation happened, and the caller hears ok;
  - nothing half-applied is visible: the same open store (a long-lived server) and a fresh
    cold open both show the state before the operation or the state after it, never a mix,
    and "after" whenever the caller heard ok;
  - once the fault clears, the next mutation succeeds (and a failed maintenance operation
    succeeds when run again), and doctor --verify-journal is clean.

Ids and the clock are made deterministic, so "the state after" is computed by running the
operation once without a fault.
"""

from __future__ import annotations

import errno
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support.reliability import (
    FIXED_NOW,
    Context,
    DeterministicIds,
    Operation,
    View,
    describe,
    verify_problems,
    visible,
)

from journal_core import (
    FaultPlan,
    FileIO,
    NotApplied,
    OutcomeUnknown,
    Store,
    StoreConfig,
    StoreIOError,
    doctor,
    verbs,
)

SMALL_SEGMENTS = StoreConfig(segment_bytes_max=2_500)
ROLL_EVERY_MUTATION = StoreConfig(segment_bytes_max=1)
BIG_CONTEXT = "diff --git a/x b/x\n" + "+ a line of a large diff\n" * 4000  # > 64 KiB: a blob
OP_COUNT_MAX = 200  # a bound on the fault loop of one operation


@dataclass(frozen=True)
class Mode:
    name: str
    error_number: int = errno.EIO
    persistent: bool = False
    short_write: bool = False


QUICK_MODES = [
    Mode("EIO once"), Mode("EIO for good", persistent=True),
    Mode("ENOSPC once", errno.ENOSPC), Mode("short write", short_write=True),
]
LONG_MODES = [
    Mode("ENOSPC for good", errno.ENOSPC, persistent=True), Mode("EDQUOT once", errno.EDQUOT),
    Mode("EROFS for good", errno.EROFS, persistent=True),
    Mode("short write for good", short_write=True, persistent=True),
]


# -- the operations under test -----------------------------------------------------------------
def base_store(store: Store) -> Context:
    """The store every operation starts from: a plan, claims, memory, a handoff, several
    segments and checkpoints (small segments), a blob."""
    ctx: Context = {}
    (_, ctx["plan"]), _ = store.mutate("ann", lambda m: verbs.plan_create(
        m, "ship it", "goal", ["lexer", "parser", "docs"]))
    (_, ctx["step_claim"]), _ = store.mutate("ann", lambda m: verbs.claim(
        m, f"step:{ctx['plan']}/s1", 600))
    (_, ctx["file_claim"]), _ = store.mutate("bob", lambda m: verbs.claim(m, "file:a.py", 600))
    memory = []
    for index in range(12):
        (_, item_id), committed = store.mutate("bob", lambda m, i=index: verbs.remember(
            m, "decision", f"decision {i}", "because " * 20))
        memory.append((item_id, committed.first_seq))
    ctx["memory"], ctx["old_seq"] = memory[0]
    ctx["memory_2"] = memory[1][0]
    (_, ctx["handoff"]), _ = store.mutate("ann", lambda m: verbs.send_handoff(
        m, "bob", "take the parser", BIG_CONTEXT))
    store.compact("operator")
    (_, ctx["new_memory"]), committed = store.mutate("bob", lambda m: verbs.remember(
        m, "trap", "the active one", "in the active segment"))
    ctx["new_seq"] = committed.first_seq
    return ctx


def mutation(verb: Callable[[Any, Context], object]) -> Callable[[Store, Context], object]:
    return lambda store, ctx: store.mutate("ann", lambda m: verb(m, ctx))


OPERATIONS = [
    Operation("plan create", mutation(lambda m, c: verbs.plan_create(m, "p2", "", ["a", "b"]))),
    Operation("plan update", mutation(lambda m, c: verbs.plan_update(
        m, c["plan"], goal="new goal", add_steps=["tests"],
        step_updates=[{"id": "s3", "status": "blocked"}]))),
    Operation("claim a file", mutation(lambda m, c: verbs.claim(m, "file:b.py", 60))),
    Operation("claim a plan step", mutation(lambda m, c: verbs.claim(
        m, f"step:{c['plan']}/s2", 60))),
    Operation("renew (ephemeral only)", mutation(lambda m, c: verbs.renew(
        m, c["step_claim"], 3600))),
    Operation("release a step claim", mutation(lambda m, c: verbs.release(
        m, c["step_claim"], "later"))),
    Operation("complete a step claim", mutation(lambda m, c: verbs.complete(
        m, c["step_claim"], "merged"))),
    Operation("remember", mutation(lambda m, c: verbs.remember(m, "trap", "t", "body"))),
    Operation("remember superseding", mutation(lambda m, c: verbs.remember(
        m, "decision", "newer", "body", supersedes=c["memory_2"]))),
    Operation("forget", mutation(lambda m, c: verbs.forget(m, c["memory"], "wrong"))),
    Operation("send a message", mutation(lambda m, c: verbs.send_message(m, "*", "hello"))),
    Operation("send a handoff with a blob", mutation(lambda m, c: verbs.send_handoff(
        m, "bob", "another", BIG_CONTEXT + "more\n"))),
    Operation("accept a handoff", lambda store, c: store.mutate("bob", lambda m: (
        verbs.respond_handoff(m, c["handoff"], accept=True)))),
    Operation("ack a cursor", lambda store, c: store.ack("bob", c["new_seq"])),
    Operation("segment roll", mutation(lambda m, c: verbs.remember(m, "note", "rolls", "x")),
              config=ROLL_EVERY_MUTATION),
    Operation("checkpoint (compact)", lambda store, c: store.compact("operator"),
              maintenance=True),
    Operation("gc", lambda store, c: doctor.gc(store, "operator"), maintenance=True),
    Operation("redact a sealed record", lambda store, c: doctor.redact(
        store, [c["old_seq"]], "leaked a secret", "operator"), maintenance=True),
    Operation("redact a record of the active segment", lambda store, c: doctor.redact(
        store, [c["new_seq"]], "leaked a secret", "operator"), maintenance=True),
]


@dataclass
class Prepared:
    template: Path
    ctx: Context
    before: View
    after: View
    op_count: int
    write_count: int
    durable_at: int | None  # the op that makes a mutation durable: the fsync of its append
    durable_write_at: int | None  # the same point counted in write operations only


def durable_points(log: list[str]) -> tuple[int | None, int | None]:
    """(op index, write index), 1-based, of the fsync after the last segment write -- the
    mutation's append (earlier segment writes are journal notes: a roll, an adjudication)."""
    writes = [i for i, entry in enumerate(log, start=1)
              if entry.startswith("write ") and "/events/seg-" in entry]
    if not writes:
        return None, None
    fsync = next((i for i, entry in enumerate(log, start=1)
                  if i > writes[-1] and entry.startswith("fsync ") and "/events/seg-" in entry),
                 None)
    write_index = sum(1 for entry in log[:writes[-1]] if entry.startswith("write "))
    return fsync, write_index


def prepare(tmp_path: Path, operation: Operation, ids: DeterministicIds) -> Prepared:
    template = tmp_path / "template"
    ids.reset("base")
    with Store(str(template), SMALL_SEGMENTS, now=lambda: FIXED_NOW) as store:
        ctx = base_store(store)
        before = visible(store)
    clean = tmp_path / "clean"
    shutil.copytree(template, clean)
    counting = FileIO()
    with Store(str(clean), operation.config or SMALL_SEGMENTS, fileio=counting,
               now=lambda: FIXED_NOW) as store:
        counting.plan = FaultPlan(at=10**9)  # never fires: counts the operations
        ids.reset("op")
        operation.run(store, ctx)
        op_count, log = counting.plan.seen, counting.plan.log
        counting.plan = None
        after = visible(store)
        assert not verify_problems(store)
    assert 0 < op_count <= OP_COUNT_MAX, log
    write_count = sum(1 for entry in log if entry.startswith("write "))
    durable_at, durable_write_at = durable_points(log)
    return Prepared(template, ctx, before, after, op_count, write_count, durable_at,
                    durable_write_at)


def fail_once_at(tmp_path: Path, prepared: Prepared, operation: Operation, mode: Mode, at: int,
                 ids: DeterministicIds) -> list[str]:
    """Run the operation with the at-th file operation failing; return what went wrong."""
    root = tmp_path / f"run-{mode.name.replace(' ', '-')}-{at}"
    shutil.copytree(prepared.template, root)
    fileio = FileIO()
    store = Store(str(root), operation.config or SMALL_SEGMENTS, fileio=fileio,
                  now=lambda: FIXED_NOW)
    try:
        plan = FaultPlan(at=at, error_number=mode.error_number, persistent=mode.persistent,
                         short_write=mode.short_write,
                         ops=frozenset({"write"}) if mode.short_write else None)
        fileio.plan = plan
        ids.reset("op")
        failed: StoreIOError | None = None
        try:
            operation.run(store, prepared.ctx)
        except StoreIOError as exc:
            failed = exc
        finally:
            fileio.plan = None
        told = the_truth(prepared, operation, mode, at, failed, plan)
        return told + after_the_fault(root, store, prepared, operation, plan, failed is None)
    finally:
        store.close()
        shutil.rmtree(root, ignore_errors=True)


def the_truth(prepared: Prepared, operation: Operation, mode: Mode, at: int,
              failed: StoreIOError | None, plan: FaultPlan) -> list[str]:
    """What the caller heard must be what happened."""
    where = f"fault fired {plan.fired}x at {plan.log[-1]}" if plan.log else "no fault fired"
    durable = prepared.durable_write_at if mode.short_write else prepared.durable_at
    if operation.maintenance or durable is None:
        if failed is not None or not plan.fired or a_cache(plan.log[-1]):
            return []  # (a cache write failing after the work is a miss, not a failure)
        return [f"no error reached the caller ({where})"]
    if at < durable:
        if failed is None:
            return [f"no error reached the caller ({where})"]
        return [] if isinstance(failed, NotApplied) else [
            f"a fault before the journal's fsync must say 'not applied', it said: {failed}"]
    if at == durable:
        if isinstance(failed, OutcomeUnknown) or (mode.short_write and failed is not None):
            return []
        return [f"a fault of the journal's fsync must say the outcome is unknown ({where}); "
                f"it said: {failed}"]
    return [] if failed is None else [
        f"the mutation was durable, yet the caller heard a failure ({where}): {failed}"]


CACHE_PATHS = ("/state/", "/events/meta.json")


def a_cache(entry: str) -> bool:
    """A projection or the watermarks: caches, whose write failing fails nothing."""
    return entry.startswith("write_file ") and any(part in entry for part in CACHE_PATHS)


def after_the_fault(root: Path, store: Store, prepared: Prepared, operation: Operation,
                    plan: FaultPlan, succeeded: bool) -> list[str]:
    where = f"fault at {plan.log[-1]}" if plan.log else "fault"
    problems = []
    same = visible(store)
    if same not in (prepared.before, prepared.after):
        problems.append(f"{where}: the open store shows a half-applied state:\n"
                        + describe(same, prepared.before, prepared.after))
    elif succeeded and same != prepared.after:
        problems.append(f"{where}: the caller heard ok, but the store does not show it:\n"
                        + describe(same, prepared.before, prepared.after))
    with Store(str(root), SMALL_SEGMENTS, now=lambda: FIXED_NOW) as fresh:
        cold = visible(fresh)
    if cold != same:
        problems.append(f"{where}: a cold open disagrees with the open store:\n"
                        + describe(cold, same, prepared.after))
    if operation.maintenance:
        try:
            operation.run(store, prepared.ctx)
        except StoreIOError as exc:  # pragma: no cover - reported below
            problems.append(f"{where}: run again once the fault cleared, it failed: {exc}")
    store.mutate("next-writer", lambda m: verbs.remember(m, "note", "next", "after the fault"))
    problems += [f"{where}: doctor: {p}" for p in verify_problems(store)]
    return problems


@pytest.mark.parametrize("operation", OPERATIONS, ids=[op.name for op in OPERATIONS])
def test_a_failing_file_operation_is_told_truthfully_and_leaves_nothing_half_applied(
    tmp_path: Path, operation: Operation, deterministic_ids: DeterministicIds,
) -> None:
    run_fault_loops(tmp_path, operation, QUICK_MODES, deterministic_ids)


@pytest.mark.long
@pytest.mark.parametrize("operation", OPERATIONS, ids=[op.name for op in OPERATIONS])
def test_more_errnos_and_persistent_short_writes_leave_nothing_half_applied(
    tmp_path: Path, operation: Operation, deterministic_ids: DeterministicIds,
) -> None:
    run_fault_loops(tmp_path, operation, LONG_MODES, deterministic_ids)


def run_fault_loops(tmp_path: Path, operation: Operation, modes: list[Mode],
                    ids: DeterministicIds) -> None:
    prepared = prepare(tmp_path, operation, ids)
    problems = []
    for mode in modes:
        count = prepared.write_count if mode.short_write else prepared.op_count
        for at in range(1, count + 1):
            found = fail_once_at(tmp_path, prepared, operation, mode, at, ids)
            problems += [f"[{mode.name}, op {at}/{count}] {p}" for p in found]
    assert not problems, "\n".join(problems[:30])


# -- regressions found by the loops ---------------------------------------------------------------
def test_records_of_a_roll_whose_projection_writes_failed_reach_readers_that_are_already_open(
    tmp_path: Path,
) -> None:
    """A roll whose projection writes failed after its append: the mutation succeeded (a
    cache miss), and readers already open find the new segment through the roll note."""
    root = str(tmp_path / "store")
    fileio = FileIO()
    with Store(root, ROLL_EVERY_MUTATION, fileio=fileio) as writer, Store(root) as reader:
        writer.mutate("ann", lambda m: verbs.remember(m, "note", "first", "x"))
        assert len(reader.entities("memory")[0]) == 1  # the reader follows meta from here

        def fail_after_the_append(op: str, path: str) -> None:
            if op == "write_file" and "/state/" in path:
                raise OSError(errno.EIO, "injected", path)

        fileio.observer = fail_after_the_append
        writer.mutate("ann", lambda m: verbs.remember(m, "note", "second", "x"))
        fileio.observer = None

        with Store(root) as cold:
            assert visible(reader) == visible(cold)
        assert len(reader.entities("memory")[0]) == 2


def files_holding(root: Path, secret: bytes) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                  if p.is_file() and secret in p.read_bytes())


def test_a_redaction_leaves_no_copy_of_the_payload_even_when_its_notes_roll_the_segment(
    tmp_path: Path,
) -> None:
    """The notes of a redaction rolled the segment: the roll's checkpoint was written from
    the in-memory state, which still held the payload; and every process that had it in
    memory wrote it into each checkpoint of its own later rolls. The summary quoted it too."""
    root = tmp_path / "store"
    with Store(str(root), SMALL_SEGMENTS) as store, Store(str(root), SMALL_SEGMENTS) as other:
        _, committed = store.mutate("ann", lambda m: verbs.remember(
            m, "note", "token hunter2", "the token is hunter2"))
        for index in range(20):
            store.mutate("ann", lambda m, i=index: verbs.remember(m, "note", f"n{i}", "x" * 90))
        other.entities("memory")  # a long-lived process holds the payload in memory

        doctor.redact(store, [committed.first_seq], "leaked token", "security")
        assert files_holding(root, b"hunter2") == []

        for index in range(20):
            other.mutate("bob", lambda m, i=index: verbs.remember(m, "note", f"o{i}", "y" * 90))
        assert files_holding(root, b"hunter2") == []
        assert not verify_problems(store)
