"""Two real OS processes on one store.

- 500 mutations each, started together: every line of the journal parses (no interleaved
  bytes), every acknowledged (seq, writer) is there exactly once, seqs run from 1 to the
  head without a gap or a repeat, and every entity's revs run 1..n in file order.
- A claim race: both claim one target at the same moment, round after round, then the
  winner releases or completes it. Exactly one wins each round, and replaying the journal
  record by record never finds two active claims on the target.

Run as a script, this file is one of those children (``--mutations`` or ``--claims``): it
prints READY, waits for GO on stdin, and reports each acknowledged mutation on stdout.
"""

from __future__ import annotations

import itertools
import os
import selectors
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from support.engine import journal_records, script_env
from support.reliability import (
    READ_CHUNK_BYTES,
    READY_WAIT_S,
    Child,
    audit_journal,
    seq_problems,
    spawn,
)

from journal_core import ClaimConflict, Store, verbs, writer_id

MUTATIONS_PER_PROCESS = 500
CLAIM_ROUNDS = 100
TARGET = "file:src/shared.py"
RUN_WAIT_S = 120.0  # bound on a child's whole run on a loaded 2-core machine
ROUND_WAIT_S = 30.0
Record = dict[str, Any]


def start(tmp_path: Path, mode: str, *extra: str) -> list[Child]:
    root = tmp_path / "store"
    stderr = open(tmp_path / f"{mode}.stderr", "wb")  # noqa: SIM115 -- the children's
    children = [
        spawn(
            f"child-{index}",
            [sys.executable, __file__, mode, str(root), f"agent#{index}", *extra],
            stderr,
            stdin=True,
            env=script_env(),
        )
        for index in range(2)
    ]
    stderr.close()
    read_until(children, lambda: all(lines_of(c, "READY") for c in children), READY_WAIT_S)
    return children


def read_until(children: list[Child], ready: Callable[[], bool], timeout_s: float) -> None:
    """Read the children's stdout as it arrives until ``ready()``; fail after timeout_s."""
    deadline = time.monotonic() + timeout_s
    with selectors.DefaultSelector() as selector:
        for child in children:
            if not child.closed:
                selector.register(child.proc.stdout, selectors.EVENT_READ, child)  # type: ignore[arg-type]
        while not ready():
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not selector.get_map():
                raise AssertionError(f"children stalled: {[c.lines[-3:] for c in children]}")
            for key, _ in selector.select(timeout=remaining):
                child = key.data
                data = os.read(key.fd, READ_CHUNK_BYTES)
                if data:
                    child.feed(data)
                else:
                    child.closed = True
                    selector.unregister(key.fileobj)


def lines_of(child: Child, kind: str) -> list[str]:
    return [line[len(kind) + 1 :] for line in child.lines if line.startswith(kind + " ")]


def finish(children: list[Child]) -> None:
    """Close the children's stdin (a child waiting for a command ends on EOF), wait for
    them to exit cleanly; kill any that do not."""
    for child in children:
        if child.proc.stdin is not None:
            child.proc.stdin.close()
    try:
        read_until(children, lambda: all(c.closed for c in children), RUN_WAIT_S)
        assert [child.reap() for child in children] == [0, 0]
    finally:
        for child in children:
            child.kill()
            child.reap()
            child.close_pipes()


# -- 500 mutations each ----------------------------------------------------------------------
def test_two_processes_of_500_mutations_each_lose_nothing_and_never_interleave(
    tmp_path: Path,
) -> None:
    root = tmp_path / "store"
    with Store(str(root)) as store:
        (_, plan_id), _ = store.mutate("planner", lambda m: verbs.plan_create(m, "shared"))
    children = start(tmp_path, "--mutations", plan_id)
    for child in children:
        child.send("GO\n")
    finish(children)

    acks = [orjson.loads(a) for child in children for a in lines_of(child, "A")]
    assert len(acks) == 2 * MUTATIONS_PER_PROCESS
    assert len({ack["writer"] for ack in acks}) == 2
    audit = audit_journal(root)
    assert audit.bad_lines == [] and audit.fragments == [], (audit.bad_lines, audit.fragments)
    assert seq_problems(audit) == []
    lines = Counter((r["seq"], r["writer"]) for r in audit.records)
    for ack in acks:
        for seq in range(ack["seq"], ack["seq"] + ack["count"]):
            assert lines[(seq, ack["writer"])] == 1, f"acknowledged seq {seq} of {ack}"
    assert rev_history_problems(audit.records) == []
    children_writers = {ack["writer"] for ack in acks}
    writers = [r["writer"] for r in audit.records if r["writer"] in children_writers]
    switches = sum(1 for a, b in itertools.pairwise(writers) if a != b)
    assert switches >= 10, f"the processes barely overlapped ({switches} turns)"
    with Store(str(root)) as reopened:
        plan = reopened.state.entity("plan", plan_id)
        updates = sum(1 for ack in acks if ack["op"] == "plan_update")
        assert plan is not None and plan.rev == 1 + updates
        counters = reopened.counters
        assert counters.dup_identical == counters.dup_conflicts == counters.dup_seq_writers == 0
        assert counters.rev_gaps == counters.rev_overwrites == counters.rev_regressions == 0
        assert counters.lines_skipped == counters.incomplete_txns == 0


def rev_history_problems(records: list[Record]) -> list[str]:
    """Every entity's records, in file order, carry revs 1, 2, ..., n."""
    revs: dict[tuple[str, str], list[int]] = {}
    for record in records:
        if "entity_rev" in record:
            revs.setdefault((record["item_type"], record["item_id"]), []).append(
                record["entity_rev"]
            )
    return [f"{key}: {seen}" for key, seen in revs.items() if seen != list(range(1, len(seen) + 1))]


def mutations_child(store: Store, actor: str, plan_id: str) -> None:
    """A third of the mutations create a memory item, a third supersede the previous one
    (two records in one txn), a third retitle the plan both processes share."""
    previous: str | None = None
    for index in range(MUTATIONS_PER_PROCESS):
        kind = ("remember", "supersede", "plan_update")[index % 3]
        if kind == "plan_update":
            _, committed = store.mutate(
                actor, lambda m, i=index: verbs.plan_update(m, plan_id, title=f"{actor} {i}")
            )
        else:
            replaces = previous if kind == "supersede" else None
            (_, previous), committed = store.mutate(
                actor,
                lambda m, i=index, old=replaces: verbs.remember(
                    m, "note", f"{actor} {i}", "body", supersedes=old
                ),
            )
        report = {"op": kind, "seq": committed.first_seq, "count": committed.count}
        emit("A", orjson.dumps({**report, "writer": writer_id()}).decode())


# -- the claim race -------------------------------------------------------------------------
def test_two_processes_racing_for_one_target_never_both_hold_it(tmp_path: Path) -> None:
    root = tmp_path / "store"
    Store(str(root)).close()
    children = start(tmp_path, "--claims")
    winners: Counter[str] = Counter()
    try:
        for round_number in range(CLAIM_ROUNDS):
            order = children if round_number % 2 == 0 else children[::-1]
            for child in order:  # both are told at once; who goes first alternates
                child.send("GO\n")
            wait_for_lines(children, "R", 2 * round_number + 1)
            outcomes = [lines_of(child, "R")[-1] for child in children]
            won = [
                c.name for c, outcome in zip(children, outcomes, strict=True) if outcome == "won"
            ]
            assert len(won) == 1, f"round {round_number}: {outcomes}"
            winners[won[0]] += 1
            settle = "complete" if round_number % 2 else "release"
            for child in children:
                child.send(f"{settle}\n")
            wait_for_lines(children, "R", 2 * round_number + 2)
    finally:
        finish(children)

    assert sum(winners.values()) == CLAIM_ROUNDS
    records = journal_records(root)
    assert sum(1 for r in records if r["action"] == "claim") == CLAIM_ROUNDS
    assert double_holds(records) == []


def wait_for_lines(children: list[Child], kind: str, count: int) -> None:
    read_until(
        children, lambda: all(len(lines_of(c, kind)) >= count for c in children), ROUND_WAIT_S
    )


def double_holds(records: list[Record]) -> list[str]:
    """Replay the claims record by record, in file order: after every record, no target
    has two active claims."""
    claims: dict[str, tuple[str, str]] = {}  # claim id -> (target, status)
    found = []
    for record in records:
        if record["item_type"] != "claim" or "payload" not in record:
            continue
        payload = record["payload"]
        claims[record["item_id"]] = (payload["target"], payload["status"])
        active = [cid for cid, (target, status) in claims.items() if status == "active"]
        targets = Counter(claims[cid][0] for cid in active)
        found += [f"seq {record['seq']}: {t} held {n} times" for t, n in targets.items() if n > 1]
    return found


def claims_child(store: Store, actor: str) -> None:
    """GO: claim the target, answer ``R won`` or ``R lost``. Then ``release`` or
    ``complete``: the winner settles its claim; both answer ``R settled``. Ends on EOF."""
    held: str | None = None
    for command in iter(sys.stdin.readline, ""):
        command = command.strip()
        if command == "GO":
            try:
                (_, held), _ = store.mutate(actor, lambda m: verbs.claim(m, TARGET, 600))
                emit("R", "won")
            except ClaimConflict:
                held = None
                emit("R", "lost")
        elif command in ("release", "complete"):
            if held is not None:
                settle = verbs.release if command == "release" else verbs.complete
                store.mutate(actor, lambda m, c=held, s=settle: s(m, c))
            emit("R", "settled")


# -- the children -------------------------------------------------------------------------------
def emit(kind: str, text: str) -> None:
    sys.stdout.write(f"{kind} {text}\n")
    sys.stdout.flush()


def child_main(argv: list[str]) -> None:
    mode, root, actor, *rest = argv
    with Store(root) as store:
        emit("READY", writer_id())
        if mode == "--mutations":
            if sys.stdin.readline().strip() != "GO":
                raise SystemExit("expected GO")
            mutations_child(store, actor, rest[0])
        else:
            claims_child(store, actor)  # every round starts with its own GO


if __name__ == "__main__":
    child_main(sys.argv[1:])
