"""Crash-point enumeration: a crash after each file operation of a
mutation, a mutation with a blob, a segment roll, a checkpoint (compact), gc and redact.

The operation runs once to count its file operations. Then, for N = 1..K, it runs on a copy
of the store with ``FaultPlan(crash=True)`` raising ``SimulatedCrash`` at the N-th
operation; the crashed store object is abandoned as a killed process would be. What is on
disk is then taken three ways:
  - process crash: every byte written stays (the page cache survives a kill -9);
  - power loss: what was not made durable is lost -- segment bytes after the last fsync of
    the segment; renames and new files whose folder was not fsynced (each either lost or
    kept); of the unsynced in-place writes (projections, meta, cursors) after the last
    fsync, all of them (caches lost) or none (caches kept: the case the fsync-before-
    projections order exists for);
  - torn power loss: a random suffix of those cache writes lost, and the unsynced segment
    tail cut at a random byte -- or just before its final newline (the case the '#' seal
    of a torn tail exists for).
A power loss after the operation returned is taken too. Each time a cold open must
converge: it shows the state before the operation or after it (after it, once the
operation's append was durable), the next writer succeeds, a crashed maintenance operation
succeeds when run again, and the next writer changes nothing but its own entity (no
unacknowledged txn comes back), and doctor --verify-journal is clean.
"""

from __future__ import annotations

import os
import random
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.reliability import (
    FIXED_NOW,
    Context,
    DeterministicIds,
    Operation,
    Recorder,
    Step,
    View,
    describe,
    gone,
    verify_problems,
    visible,
)

import journal_core.clock
import journal_core.mutation
from journal_core import FaultPlan, FileIO, SimulatedCrash, Store, StoreConfig, doctor, verbs

SMALL_SEGMENTS = StoreConfig(segment_bytes_max=3_000)
ROLL_EVERY_MUTATION = StoreConfig(segment_bytes_max=1)
BIG_CONTEXT = "+ a line of a large diff\n" * 3000  # > 64 KiB: goes to a blob
CRASH_POINTS_MAX = 200  # a bound on the enumeration of one operation
IN_PLACE_PREFIXES = ("state/", "cursors/", "events/meta.json")  # (and meta's temp file)
ARCHIVE = "events/archive/"
NEXT = "the next writer's note"


def base_store(store: Store) -> Context:
    ctx: Context = {}
    (_, ctx["plan"]), _ = store.mutate("ann", lambda m: verbs.plan_create(
        m, "ship it", "goal", ["lexer", "parser"]))
    for index in range(14):
        _, committed = store.mutate("bob", lambda m, i=index: verbs.remember(
            m, "decision", f"decision {i}", "because " * 12))
        if index == 0:
            ctx["secret_seq"] = committed.first_seq
    store.ack("bob", 3)
    return ctx


OPERATIONS = [
    Operation("claim a plan step", lambda s, c: s.mutate("ann", lambda m: verbs.claim(
        m, f"step:{c['plan']}/s1", 600))),
    Operation("send a handoff with a blob", lambda s, c: s.mutate("ann", lambda m: (
        verbs.send_handoff(m, "bob", "take it", BIG_CONTEXT)))),
    Operation("segment roll", lambda s, c: s.mutate("ann", lambda m: verbs.remember(
        m, "note", "rolls", "x")), config=ROLL_EVERY_MUTATION),
    Operation("checkpoint (compact)", lambda s, c: s.compact("operator"), maintenance=True),
    Operation("gc", lambda s, c: doctor.gc(s, "operator"), maintenance=True),
    Operation("redact", lambda s, c: doctor.redact(s, [c["secret_seq"]], "leak", "operator"),
              maintenance=True),
]


# -- recording what was made durable ------------------------------------------------------------
def durable_point(steps: list[Step]) -> int | None:
    """1-based index of the fsync that makes the operation's entity append durable: the
    fsync after its last segment write (earlier ones are journal notes: a roll, a torn
    tail's adjudication), or None when it appends nothing."""
    last = last_append(steps)
    if last is None:
        return None
    for index, step in enumerate(steps[last:], start=last + 1):
        if step.op == "fsync" and step.path.startswith("events/seg-"):
            return index
    return None


def last_append(steps: list[Step]) -> int | None:
    """1-based index of the operation's last write to a segment (its entity append)."""
    found = None
    for index, step in enumerate(steps, start=1):
        if step.op == "write" and step.path.startswith("events/seg-"):
            found = index
    return found


# -- losing what was not durable ----------------------------------------------------------------
def lose_unsynced(root: Path, template: Path, completed: list[Step], rng: random.Random,
                  mode: str) -> None:
    """Apply a power loss to ``root`` after ``completed`` operations (see module doc)."""
    synced: dict[str, int] = {}
    dir_synced_after: dict[str, int] = {}  # folder -> index of its last completed fsync
    for index, step in enumerate(completed):
        if step.op == "fsync" and step.path.startswith("events/seg-"):
            synced[step.path] = step.size
        if step.op == "fsync_dir":
            dir_synced_after[step.path] = index
    # Unsynced in-place writes: those before the last completed fsync reached the disk with
    # it (ordered writeback; the reboot test below covers a file system that reorders);
    # of the later ones all, none, or a random prefix did.
    barrier = max((i for i, step in enumerate(completed) if step.op.startswith("fsync")),
                  default=-1)
    in_place = [i for i, step in enumerate(completed) if i > barrier
                and step.op == "write_file" and step.path.startswith(IN_PLACE_PREFIXES)]
    kept = {CACHES_KEPT: len(in_place), CACHES_LOST: 0}.get(mode, rng.randint(0, len(in_place)))
    kept_in_place = set(in_place[:kept])
    for index, step in enumerate(completed):
        target = root / step.path
        folder = os.path.dirname(step.path)
        folder_synced = dir_synced_after.get(folder, -1) > index
        if step.op in ("rename", "create") and not folder_synced and rng.random() < 0.5:
            if step.path.startswith(ARCHIVE):  # gc's move: the file stays where it was
                source = root / "events" / step.path[len(ARCHIVE):]
                if target.exists():
                    os.replace(target, source)
            else:
                restore(template, root, step.path)  # the new name never reached the disk
        elif index in in_place and index not in kept_in_place:
            restore(template, root, step.path)  # an unsynced in-place write is lost
        elif step.op == "write" and step.path.startswith("events/seg-") and target.exists():
            keep = synced.get(step.path, template_size(template, step.path))
            size = target.stat().st_size
            if size > keep:
                cut = {TORN_RANDOM: rng.randint(keep, size), TORN_AT_NEWLINE: size - 1}
                os.truncate(target, cut.get(mode, keep))


def template_size(template: Path, relative: str) -> int:
    path = template / relative
    return path.stat().st_size if path.exists() else 0


def restore(template: Path, root: Path, relative: str) -> None:
    source, target = template / relative, root / relative
    if source.exists():
        shutil.copyfile(source, target)
    elif target.exists():
        target.unlink()


# -- the enumeration ----------------------------------------------------------------------------
@dataclass
class Prepared:
    template: Path
    ctx: Context
    before: View
    after: View
    steps: list[Step]


def prepare(tmp_path: Path, operation: Operation, ids: DeterministicIds) -> Prepared:
    template = tmp_path / "template"
    ids.reset("base")
    with Store(str(template), SMALL_SEGMENTS, now=lambda: FIXED_NOW) as store:
        ctx = base_store(store)
        before = visible(store)
    clean = tmp_path / "clean"
    shutil.copytree(template, clean)
    fileio = FileIO()
    recorder = Recorder(str(clean))
    config = operation.config or SMALL_SEGMENTS
    with Store(str(clean), config, fileio=fileio, now=lambda: FIXED_NOW) as store:
        fileio.observer = recorder
        ids.reset("op")
        operation.run(store, ctx)
        fileio.observer = None
        after = visible(store)
    assert 0 < len(recorder.steps) <= CRASH_POINTS_MAX
    return Prepared(template, ctx, before, after, recorder.steps)


PROCESS_CRASH = "process crash"
CACHES_LOST = "power loss, unsynced caches lost"
CACHES_KEPT = "power loss, unsynced caches kept"
TORN_RANDOM = "power loss, segment torn at a random byte"
TORN_AT_NEWLINE = "power loss, only the final newline lost"
MODES = (PROCESS_CRASH, CACHES_LOST, CACHES_KEPT, TORN_RANDOM, TORN_AT_NEWLINE)


def crash_at(tmp_path: Path, prepared: Prepared, operation: Operation, at: int, mode: str,
             ids: DeterministicIds) -> list[str]:
    root = tmp_path / f"crash-{at}-{mode.replace(' ', '-')}"
    shutil.copytree(prepared.template, root)
    fileio = FileIO()
    recorder = Recorder(str(root))
    store = Store(str(root), operation.config or SMALL_SEGMENTS, fileio=fileio,
                  now=lambda: FIXED_NOW)
    fileio.observer = recorder
    fileio.plan = FaultPlan(at=at, crash=True)
    ids.reset("op")
    try:
        operation.run(store, prepared.ctx)
    except SimulatedCrash:
        pass
    else:
        if at <= len(prepared.steps):
            return [f"no crash at operation {at}"]
    finally:
        gone(store)  # the process is gone: its fds (and its lock) with it
    completed = recorder.steps[: at - 1]
    if mode != PROCESS_CRASH:
        lose_unsynced(root, prepared.template, completed, random.Random(at), mode)
    step = recorder.steps[at - 1] if at <= len(recorder.steps) else None
    where = f"crash at {step.op} {step.path} ({mode})" if step else f"crash after it ({mode})"
    try:
        return [f"{where}: {p}" for p in converges(root, prepared, operation, at, mode)]
    finally:
        shutil.rmtree(root, ignore_errors=True)


def converges(root: Path, prepared: Prepared, operation: Operation, at: int,
              mode: str) -> list[str]:
    if at > len(prepared.steps):  # it returned: the caller was told ok, so it is durable
        must_be_after = True
    elif mode == PROCESS_CRASH:
        written = last_append(prepared.steps)
        must_be_after = written is not None and at > written
    else:
        durable = durable_point(prepared.steps)
        must_be_after = durable is not None and at > durable
    with Store(str(root), operation.config or SMALL_SEGMENTS, now=lambda: FIXED_NOW) as store:
        seen = visible(store)
        problems = []
        if seen not in (prepared.before, prepared.after):
            problems.append("reopened half-applied:\n"
                            + describe(seen, prepared.before, prepared.after))
        elif must_be_after and seen != prepared.after and prepared.after != prepared.before:
            problems.append("a durable operation was lost on reopen:\n"
                            + describe(seen, prepared.before, prepared.after))
        if operation.maintenance:
            operation.run(store, prepared.ctx)
            seen = prepared.after
        store.mutate("next-writer", lambda m: verbs.remember(m, "note", NEXT, "x"))
        if without_next(visible(store)) != seen:  # e.g. an unacknowledged txn came back
            problems.append("the next writer changed what the reopened store showed:\n"
                            + describe(without_next(visible(store)), seen, seen))
        problems += verify_problems(store)
    return problems


def without_next(view: View) -> View:
    return {key: value for key, value in view.items()
            if not (isinstance(value[1], dict) and value[1].get("title") == NEXT)}


@pytest.mark.parametrize("operation", OPERATIONS, ids=[op.name for op in OPERATIONS])
def test_a_crash_after_any_file_operation_reopens_to_a_converged_store(
    tmp_path: Path, operation: Operation, deterministic_ids: DeterministicIds,
) -> None:
    prepared = prepare(tmp_path, operation, deterministic_ids)
    problems = []
    for at in range(1, len(prepared.steps) + 2):  # the last: power lost after it returned
        for mode in MODES if at <= len(prepared.steps) else MODES[1:]:
            problems += crash_at(tmp_path, prepared, operation, at, mode, deterministic_ids)
    assert not problems, "\n".join(problems[:20])


# -- regressions and known limits ------------------------------------------------------------------
def test_a_compact_whose_append_rolls_the_segment_writes_a_checkpoint_that_verifies(
    tmp_path: Path,
) -> None:
    """Found by this enumeration: on a full active segment, compact wrote ckpt-<head>, then
    the roll of its own append wrote ckpt-<head> again (other bytes: its ``created``), and the
    compact's ref, appended last, no longer matched the file."""
    config = StoreConfig(segment_bytes_max=1_500)
    with Store(str(tmp_path / "store"), config) as store:
        while store.fileio.size(store.journal.path(store.journal.segments()[-1])) < \
                config.segment_bytes_max:
            store.mutate("ann", lambda m: verbs.remember(m, "note", "fill", "x" * 100))
        segments = len(store.journal.segments())
        store.compact("operator")
        assert len(store.journal.segments()) == segments + 1  # the append rolled
        assert not verify_problems(store)


def test_a_projection_lost_in_a_power_loss_that_kept_meta_is_healed_after_the_reboot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Projections and meta.json are unsynced caches: a power loss may keep meta's
    watermark and lose a projection write it covers. Meta remembers the boot that wrote it;
    the first writer of a new boot re-checks every projection."""
    root = tmp_path / "store"
    monkeypatch.setattr(journal_core.clock, "boot_id", lambda: "boot-1")
    with Store(str(root)) as store:
        (_, lost), _ = store.mutate("ann", lambda m: verbs.remember(m, "note", "lost", "b"))
        (_, torn), _ = store.mutate("ann", lambda m: verbs.remember(m, "note", "torn", "b"))
        (_, old), _ = store.mutate("ann", lambda m: verbs.remember(m, "note", "old", "b"))
        behind = (root / "state" / "memory" / f"{old}.json").read_bytes()
        store.mutate("ann", lambda m: verbs.forget(m, old, "superseded"))
    memory = root / "state" / "memory"
    (memory / f"{lost}.json").unlink()  # these writes never reached the disk;
    (memory / f"{torn}.json").write_bytes(b"")  # meta.json, written after them, did
    (memory / f"{old}.json").write_bytes(behind)
    with Store(str(root)) as same_boot:  # same boot: the damage is real, and no writer
        same_boot.mutate("next-writer", lambda m: verbs.remember(m, "note", NEXT, "x"))
        assert verify_problems(same_boot)  # pays to look for what cannot happen
    monkeypatch.setattr(journal_core.clock, "boot_id", lambda: "boot-2")
    with Store(str(root)) as rebooted:
        rebooted.mutate("next-writer", lambda m: verbs.remember(m, "note", NEXT, "y"))
        assert not verify_problems(rebooted)
