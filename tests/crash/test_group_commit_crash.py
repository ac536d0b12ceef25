"""Crash points of group commit: one batch of BATCH mutations (each its own txn of two
records) from BATCH threads of one process, led by one of them while the others wait.

The batch is made deterministic: another handle holds the store lock while a first thread
(a mutation that writes nothing) waits for it and the BATCH threads queue behind; when the
lock goes, the first thread leads one batch of everything queued by then (the leader takes
its batch once it holds the lock), which commits all BATCH mutations with one write and one
fsync, then writes their projections (after the unlock). In the second shape the first
mutation writes, and the BATCH threads queue while it holds the lock: they are the next
batch, led by one of them.

The batch runs once to record its file operations. Then, for each operation N, it runs on
a copy of the store with a fault at the N-th: a crash (``SimulatedCrash``, the process
dies: every later operation crashes too) or an I/O error (the process lives on). Every
caller must get an answer within a bound, never hang: ok, the crash, or an error that says
*not applied* or *outcome unknown*. What is on disk is then taken as a process crash
leaves it, or as a power loss does (the segment cut at a random byte after its last
completed fsync, the unsynced projection writes lost). A cold open must show every
acknowledged mutation, each unacknowledged one whole or not at all (never one record of
its txn), nothing a caller was told was not applied; the next writer must succeed and
change nothing but its own entity; ``doctor --verify-journal`` must be clean (projections
healed).
"""

from __future__ import annotations

import os
import random
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.reliability import FIXED_NOW, Recorder, Step, gone, verify_problems

from journal_core import (
    FAMILIES,
    FaultPlan,
    FileIO,
    Mutation,
    NotApplied,
    OutcomeUnknown,
    SimulatedCrash,
    Store,
    verbs,
)

BATCH = 6  # mutations in the batch: one leader, five followers
ANSWER_WAIT_S = 20.0  # bound on every caller's answer (a hang fails the test)
QUEUE_WAIT_S = 10.0  # bound on the threads reaching the committer's queue
POLL_S = 0.002
NEXT = "the next writer's note"
PROCESS_CRASH = "process crash"
POWER_LOSS = "power loss"
OK = "ok"
ONE_BATCH = "one batch"
BEHIND_A_LEADER = "a batch behind a leader"
SHAPES = (ONE_BATCH, BEHIND_A_LEADER)


def pair(index: int) -> Callable[[Mutation], None]:
    """One mutation, one txn of two records: a cut between them must drop both."""

    def verb(m: Mutation) -> None:
        verbs.remember(m, "note", f"batch {index} a", "first of two")
        verbs.remember(m, "note", f"batch {index} b", "second of two")

    return verb


def writes_nothing(m: Mutation) -> None:
    return None


# -- what a reader sees ------------------------------------------------------------------
def titles(store: Store) -> dict[str, tuple[int, str]]:
    """Every live memory item by title: (rev, id); and every other entity by id."""
    seen: dict[str, tuple[int, str]] = {}
    for family in FAMILIES:
        rows, stale = store.entities(family)
        assert not stale
        for row in rows:
            title = row["entity"].get("title") if family == "memory" else None
            seen[title or f"{family}/{row['item_id']}"] = (row["entity_rev"], row["item_id"])
    return seen


def batch_titles(index: int) -> tuple[str, str]:
    return f"batch {index} a", f"batch {index} b"


# -- one run of the batch -----------------------------------------------------------------
@dataclass
class Run:
    answers: dict[int, str]  # mutation index -> "ok" or the exception's class name
    errors: dict[int, BaseException]
    steps: list[Step]
    first: str | None = None  # ONE_BATCH: the answer of the first caller (it writes nothing)


def queued(store: Store) -> int:
    """Mutations waiting in the committer's queue for the next batch (the committer's own
    field, read by the test only to know the batch has formed)."""
    return len(store.committer._queue)


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + QUEUE_WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(POLL_S)


def run_batch(root: Path, plan: FaultPlan | None, shape: str,
              then: Callable[[Store], None] | None = None) -> Run:
    """The batch on the store at ``root`` with ``plan`` installed once it has formed;
    ``then`` runs on the same store afterwards (a process that lives on). ``shape``:
    ONE_BATCH (the first batch writes nothing), or BEHIND_A_LEADER (the first batch is
    mutation -1 alone, and the BATCH others wait behind it as the next batch)."""
    fileio = FileIO()
    recorder = Recorder(str(root))
    store = Store(str(root), fileio=fileio, now=lambda: FIXED_NOW)
    holder = Store(str(root), now=lambda: FIXED_NOW)  # another handle: another lock holder
    answers: dict[int, str] = {}
    errors: dict[int, BaseException] = {}

    def call(index: int, verb: Callable[[Mutation], None]) -> None:
        try:
            store.mutate(f"agent#{index}", verb)
            answers[index] = OK
        except BaseException as exc:  # every answer (the crash too) is recorded and judged
            answers[index], errors[index] = type(exc).__name__, exc

    reached, gate = threading.Event(), threading.Event()

    def gated(m: Mutation) -> None:  # the first batch, holding the lock, until the rest queue
        reached.set()
        gate.wait(QUEUE_WAIT_S)
        pair(-1)(m)

    def start_the_batch() -> None:
        for index in range(BATCH):
            threads.append(threading.Thread(target=call, args=(index, pair(index)),
                                            daemon=True))
            threads[-1].start()

    first = writes_nothing if shape == ONE_BATCH else gated
    threads = [threading.Thread(target=call, args=(-1, first), daemon=True)]
    try:
        with holder.locked_maintenance("holder"):
            threads[0].start()
            wait_for(store.committer.waiting_for_lock, "the first batch to wait for the lock")
            if shape == ONE_BATCH:
                start_the_batch()  # the leader's own request is still queued: BATCH + 1
                wait_for(lambda: queued(store) == BATCH + 1, f"{BATCH} mutations to queue")
            fileio.observer = recorder
            fileio.plan = plan
        if shape == BEHIND_A_LEADER:
            wait_for(lambda: reached.is_set() or not threads[0].is_alive(),
                     "the first batch to hold the lock")
            start_the_batch()
            wait_for(lambda: queued(store) == BATCH or not threads[0].is_alive(),
                     f"{BATCH} mutations to queue behind the first batch")
            gate.set()
        deadline = time.monotonic() + ANSWER_WAIT_S
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        hung = [index for index, thread in enumerate(threads, start=-1) if thread.is_alive()]
        assert not hung, f"callers {hung} got no answer within {ANSWER_WAIT_S}s"
        fileio.observer = fileio.plan = None
        if then is not None:
            then(store)
    finally:
        holder.close()
        if plan is not None and plan.crash:
            gone(store)  # the process is gone: its fds (and its lock) with it
        else:
            store.close()
    first_answer = None
    if shape == ONE_BATCH:
        first_answer = answers.pop(-1, None)
        errors.pop(-1, None)
    return Run(answers, errors, recorder.steps, first_answer)


# -- losing what was not durable -------------------------------------------------------------
def lose_unsynced(root: Path, template: Path, completed: list[Step], seed: int) -> None:
    """A power loss after ``completed``: each segment is cut at a random byte past what its
    last completed fsync made durable; projection and meta writes (unsynced caches written
    after the fsync) are lost."""
    rng = random.Random(seed)
    synced: dict[str, int] = {}
    for step in completed:
        if step.op == "fsync" and step.path.startswith("events/seg-"):
            synced[step.path] = step.size
    for step in completed:
        target, source = root / step.path, template / step.path
        if step.op == "write" and step.path.startswith("events/seg-") and target.exists():
            keep = synced.get(step.path, source.stat().st_size if source.exists() else 0)
            size = target.stat().st_size
            if size > keep:
                os.truncate(target, rng.randint(keep, size))
        elif step.op == "write_file":
            if source.exists():
                shutil.copyfile(source, target)
            elif target.exists():
                target.unlink()


# -- judging a reopened store -----------------------------------------------------------------
def reopen_problems(root: Path, run: Run, base: dict[str, tuple[int, str]]) -> list[str]:
    problems = []
    with Store(str(root), now=lambda: FIXED_NOW) as store:
        seen = titles(store)
        problems += batch_problems(seen, run, base)
        store.mutate("next-writer", lambda m: verbs.remember(m, "note", NEXT, "x"))
        after = {title: found for title, found in titles(store).items() if title != NEXT}
        if after != seen:  # an unacknowledged txn came back, or something else changed
            problems.append(f"the next writer changed what the reopened store showed: "
                            f"{sorted(set(after) ^ set(seen))}")
        problems += verify_problems(store)
    return problems


def batch_problems(seen: dict[str, tuple[int, str]], run: Run,
                   base: dict[str, tuple[int, str]]) -> list[str]:
    problems = []
    for index in sorted(run.answers):
        present = [title in seen for title in batch_titles(index)]
        answer = run.answers.get(index)
        if any(present) and not all(present):
            problems.append(f"mutation {index} ({answer}) half applied: {present}")
        if answer == OK and not all(present):
            problems.append(f"mutation {index} was acknowledged and is lost")
        if answer == NotApplied.__name__ and any(present):
            problems.append(f"mutation {index} was reported not applied and is in the journal")
    unchanged = {title: seen.get(title) for title in base}
    if unchanged != base:
        problems.append("the entities before the batch changed")
    return problems


def answer_problems(run: Run, allowed: set[str]) -> list[str]:
    problems = [f"mutation {index} answered {answer}: {run.errors.get(index)}"
                for index, answer in sorted(run.answers.items()) if answer not in allowed]
    missing = set(range(BATCH)) - set(run.answers)  # (mutation -1 is answered by its shape)
    if missing:
        problems.append(f"mutations {sorted(missing)} got no answer")
    return problems


# -- the template and the enumeration --------------------------------------------------------
@dataclass
class Prepared:
    template: Path
    base: dict[str, tuple[int, str]]
    steps: list[Step]
    shape: str


def prepare(tmp_path: Path, shape: str = ONE_BATCH) -> Prepared:
    template = tmp_path / "template"
    with Store(str(template), now=lambda: FIXED_NOW) as store:
        for index in range(3):
            store.mutate("ann", lambda m, i=index: verbs.remember(
                m, "decision", f"before {i}", "because"))
        base = titles(store)
    clean = tmp_path / "clean"
    shutil.copytree(template, clean)
    run = run_batch(clean, None, shape)
    assert set(run.answers.values()) == {OK}, run.errors
    return Prepared(template, base, run.steps, shape)


def crash_at(tmp_path: Path, prepared: Prepared, at: int, mode: str) -> list[str]:
    root = tmp_path / f"crash-{at}-{mode.replace(' ', '-')}"
    shutil.copytree(prepared.template, root)
    run = run_batch(root, FaultPlan(at=at, crash=True, persistent=True), prepared.shape)
    step = prepared.steps[at - 1]
    where = f"{prepared.shape}: crash at {at} {step.op} {step.path} ({mode})"
    problems = answer_problems(run, {OK, SimulatedCrash.__name__})
    if SimulatedCrash.__name__ not in [*run.answers.values(), run.first]:
        problems.append("no caller saw the crash")
    if mode == POWER_LOSS:
        lose_unsynced(root, prepared.template, run.steps[: at - 1], seed=at)
    problems += reopen_problems(root, run, prepared.base)
    shutil.rmtree(root, ignore_errors=True)
    return [f"{where}: {p}" for p in problems]


def fail_at(tmp_path: Path, prepared: Prepared, at: int) -> list[str]:
    """An I/O error (EIO) at the at-th operation; the process lives on."""
    root = tmp_path / f"fail-{at}"
    shutil.copytree(prepared.template, root)
    run = run_batch(root, FaultPlan(at=at), prepared.shape, then=lambda store: store.mutate(
        "after-the-fault", lambda m: verbs.remember(m, "note", "after", "x")))
    step = prepared.steps[at - 1]
    problems = answer_problems(run, {OK, NotApplied.__name__, OutcomeUnknown.__name__})
    failed = {answer for answer in run.answers.values() if answer != OK}
    if len(failed) > 1:
        problems.append(f"one append, one fate: the batch's callers heard {sorted(failed)}")
    problems += reopen_problems(root, run, prepared.base)
    shutil.rmtree(root, ignore_errors=True)
    return [f"{prepared.shape}: EIO at {at} {step.op} {step.path}: {p}" for p in problems]


def test_the_batch_is_one_write_and_one_fsync_then_its_projections(tmp_path: Path) -> None:
    """The order the enumeration relies on (and the group commit promises)."""
    steps = prepare(tmp_path).steps
    ops = [(step.op, step.path.split("/")[0]) for step in steps if step.op != "open"]
    assert ops[:2] == [("write", "events"), ("fsync", "events")], ops
    assert all(op == ("write_file", "state") for op in ops[2:-1]), ops
    assert len(ops[2:-1]) == 2 * BATCH and ops[-1] == ("write_file", "events"), ops  # meta


def test_a_crash_after_the_fsync_before_the_projections_loses_nothing_of_the_batch(
    tmp_path: Path,
) -> None:
    """The acknowledgement needs only the journal: a crash at the first projection write of
    the batch (after its fsync) leaves every mutation durable and visible on a cold open;
    the followers were answered ok, the leader (the first caller, which writes nothing)
    died with the process; the next writer heals
    the projections; doctor --verify-journal is clean."""
    prepared = prepare(tmp_path)
    first = next(index for index, step in enumerate(prepared.steps, start=1)
                 if step.path.startswith("state/"))
    fsync = next((index for index, step in enumerate(prepared.steps, start=1)
                  if step.op == "fsync" and step.path.startswith("events/seg-")), None)
    assert fsync is not None and fsync < first, "projections come after the journal's fsync"
    for mode in (PROCESS_CRASH, POWER_LOSS):
        root = tmp_path / f"after-fsync-{mode.replace(' ', '-')}"
        shutil.copytree(prepared.template, root)
        run = run_batch(root, FaultPlan(at=first, crash=True, persistent=True), ONE_BATCH)
        answers = sorted(run.answers.values())  # the batch's leader is the first caller
        assert answers == [OK] * BATCH and run.first == SimulatedCrash.__name__, (mode, answers)
        if mode == POWER_LOSS:
            lose_unsynced(root, prepared.template, run.steps[: first - 1], seed=first)
        with Store(str(root), now=lambda: FIXED_NOW) as store:
            seen = titles(store)
            for index in range(BATCH):
                assert set(batch_titles(index)) <= set(seen), (mode, index)
            projected = [title for title, (_, item_id) in seen.items()
                         if title.startswith("batch ") and os.path.exists(
                             store.projections.path("memory", item_id))]
            assert not projected, (mode, projected)  # the crash came before any of them
            store.mutate("next-writer", lambda m: verbs.remember(m, "note", NEXT, "x"))
            for title, (rev, item_id) in seen.items():
                if title.startswith("batch "):
                    found = store.projections.read("memory", item_id)
                    assert found.doc is not None and found.doc["entity_rev"] == rev, title
            assert not verify_problems(store), mode


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("mode", [PROCESS_CRASH, POWER_LOSS])
def test_a_crash_of_the_leader_at_any_file_operation_answers_every_follower(
    tmp_path: Path, mode: str, shape: str,
) -> None:
    prepared = prepare(tmp_path, shape)
    problems: list[str] = []
    for at in range(1, len(prepared.steps) + 1):
        problems += crash_at(tmp_path, prepared, at, mode)
    assert not problems, "\n".join(problems[:20])


@pytest.mark.parametrize("shape", SHAPES)
def test_an_io_error_in_the_leader_at_any_file_operation_tells_every_follower(
    tmp_path: Path, shape: str,
) -> None:
    """The error is handed to every mutation of the batch with the truth (not applied
    before the append, outcome unknown at the fsync, ok after it); a batch waiting behind
    a failed one still commits; the store writes on."""
    prepared = prepare(tmp_path, shape)
    problems: list[str] = []
    for at in range(1, len(prepared.steps) + 1):
        problems += fail_at(tmp_path, prepared, at)
    assert not problems, "\n".join(problems[:20])
