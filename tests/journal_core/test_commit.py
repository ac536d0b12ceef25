"""A crash between the append and the projection writes.

The mutation's records are fsynced; the process dies before (or while) it writes the
projections and meta.json. The journal is the truth: a fresh Store's reads answer from it at
once, the next writer heals the projections forward, and nothing acknowledged -- before the
crash, or the crashed txn itself, which was durable -- is lost. The crash is taken two
ways: the FaultPlan seam (SimulatedCrash at the N-th cache write) and a real child process
killed with SIGKILL.

Run as a script, this file is that child (see ``killed_child``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from support.engine import journal_records, projection, script_env
from support.reliability import gone, verify_problems

from journal_core import FaultPlan, FileIO, SimulatedCrash, Store, verbs
from journal_core.meta import parse_meta

CHILD_FLAG = "--killed-after-append"
CHILD_WAIT_S = 60.0


def prepared(root: Path) -> tuple[str, str]:
    """A store with an acknowledged plan and memory item; returns their ids."""
    with Store(str(root)) as store:
        (_, plan_id), _ = store.mutate(
            "ann", lambda m: verbs.plan_create(m, "ship", "goal", ["lexer", "parser"])
        )
        (_, memory_id), _ = store.mutate(
            "ann", lambda m: verbs.remember(m, "decision", "use flock", "portable")
        )
    return plan_id, memory_id


def claim_step(store: Store, plan_id: str) -> None:
    """Two records in one txn: the claim and the plan step it marks claimed."""
    store.mutate("bob", lambda m: verbs.claim(m, f"step:{plan_id}/s1", 600))


def check_healed(root: Path, plan_id: str, memory_id: str) -> None:
    """A fresh Store shows the crashed txn (it was fsynced) and everything before it; its
    reads write nothing, and its first write brings the projections the crash left behind
    up to date."""
    claim = next(r for r in journal_records(root) if r["item_type"] == "claim")
    claim_id = claim["item_id"]
    with Store(str(root)) as store:
        head = store.head_seq
        assert head == claim["txn"][0] + 1  # the whole txn is in the journal

        claim_view = store.entity_view("claim", claim_id)
        plan_view = store.entity_view("plan", plan_id)
        memory_view = store.entity_view("memory", memory_id)

        assert claim_view["entity"]["status"] == "active"
        assert claim_view["entity"]["holder"] == "bob"
        assert plan_view["entity"]["steps"][0]["status"] == "claimed"
        assert plan_view["entity"]["steps"][0]["claim_id"] == claim_id
        assert memory_view["entity"]["title"] == "use flock"
        assert not (claim_view["stale"] or plan_view["stale"] or memory_view["stale"])
        # The next writer continues the journal after its tail (no seq is reused) and
        # writes the projections the crash left behind.
        store.mutate("cy", lambda m: verbs.remember(m, "note", "after the crash", "x"))
        claimed = projection(root, "claim", claim_id)
        planned = projection(root, "plan", plan_id)
        assert claimed is not None and claimed["entity_rev"] == 1
        assert planned is not None and planned["entity_rev"] == 2
        assert planned["payload"]["steps"][0]["claim_id"] == claim_id
        meta = parse_meta((root / "events" / "meta.json").read_bytes())
        assert meta is not None and meta.applied["claim"] == meta.applied["plan"] == head + 1
        assert not verify_problems(store)
    seqs = [r["seq"] for r in journal_records(root)]
    assert seqs == list(range(1, len(seqs) + 1)) and seqs[-1] > head


@pytest.mark.parametrize(
    "cache_write", [1, 2, 3], ids=["before any projection", "between projections", "at meta"]
)
def test_a_crash_after_the_append_heals_forward_on_the_next_write_from_a_fresh_store(
    tmp_path: Path,
    cache_write: int,
) -> None:
    root = tmp_path / "store"
    plan_id, memory_id = prepared(root)
    fileio = FileIO()
    crashed = Store(str(root), fileio=fileio)
    fileio.plan = FaultPlan(at=cache_write, ops=frozenset({"write_file"}), crash=True)
    with pytest.raises(SimulatedCrash):
        claim_step(crashed, plan_id)
    gone(crashed)  # the process is gone: its fds and its lock with it

    fired_at = fileio.plan.log[-1]
    expected_path = ("state/plan/", "state/claim/", "events/meta.json")[cache_write - 1]
    assert expected_path in fired_at, fileio.plan.log
    claim_id = next(r["item_id"] for r in journal_records(root) if r["item_type"] == "claim")
    plan_left = projection(root, "plan", plan_id)
    assert plan_left is not None and plan_left["entity_rev"] == (1 if cache_write == 1 else 2)
    assert (projection(root, "claim", claim_id) is None) == (cache_write < 3)
    check_healed(root, plan_id, memory_id)


def test_a_process_killed_after_the_append_heals_forward_on_the_next_write(
    tmp_path: Path,
) -> None:
    root = tmp_path / "store"
    plan_id, memory_id = prepared(root)

    child = subprocess.run(
        [sys.executable, __file__, CHILD_FLAG, str(root), plan_id],
        env=script_env(),
        capture_output=True,
        timeout=CHILD_WAIT_S,
        check=False,
    )

    assert child.returncode == -signal.SIGKILL, child.stderr.decode()[-2000:]
    claims = [r for r in journal_records(root) if r["item_type"] == "claim"]
    assert len(claims) == 1
    assert projection(root, "claim", claims[0]["item_id"]) is None  # killed before it
    check_healed(root, plan_id, memory_id)


def killed_child(root: str, plan_id: str) -> None:
    """Claim a step; SIGKILL this process at the first projection write after the append."""
    fileio = FileIO()
    store = Store(root, fileio=fileio)
    appended = False

    def observer(op: str, path: str) -> None:
        nonlocal appended
        if op == "fsync" and "seg-" in path:
            appended = True
        elif appended and op == "write_file" and f"{os.sep}state{os.sep}" in path:
            os.kill(os.getpid(), signal.SIGKILL)

    fileio.observer = observer
    claim_step(store, plan_id)
    raise SystemExit("not killed: the mutation wrote no projection after its append")


if __name__ == "__main__" and sys.argv[1:2] == [CHILD_FLAG]:
    killed_child(sys.argv[2], sys.argv[3])


def test_mutations_that_arrive_while_the_leader_waits_for_the_lock_join_its_batch(
    tmp_path: Path,
) -> None:
    """The leader takes its batch once it holds the lock: whatever queued while another
    process held it is committed with one append and one fsync, not one lock hold later."""
    import threading
    import time

    root = str(tmp_path / "store")
    with Store(root) as store, Store(root) as other:
        store.mutate("ann", lambda m: verbs.remember(m, "note", "warm", "up"))
        batches, batched = store.committer.batches, store.committer.batched
        threads = [threading.Thread(target=store.mutate, args=(f"agent#{n}", lambda m, n=n:
                                    verbs.remember(m, "note", f"n{n}", "x")))
                   for n in range(6)]
        with other.locked_maintenance("holder"):
            threads[0].start()
            deadline = time.monotonic() + 10
            while not store.committer.waiting_for_lock() and time.monotonic() < deadline:
                time.sleep(0.005)
            for thread in threads[1:]:
                thread.start()
            while len(store.committer._queue) < 6 and time.monotonic() < deadline:
                time.sleep(0.005)
        for thread in threads:
            thread.join(10)
        assert store.committer.batched - batched == 6
        assert store.committer.batches - batches == 1
