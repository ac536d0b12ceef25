"""Claim rules, renewal and emission, on an injected clock.

- A claim on a held target fails naming the holder and the expiry; nothing is written.
- An expired claim is released (summary ``expired``) by the mutation that takes the target
  over: two records, one txn.
- Completing a step's claim marks the plan step done in the same txn.
- Renewal moves only ephemeral fields: no record, no rev bump, the projection moves, and a
  conflict check in another Store honours it.
- A change a verb did not annotate is still journaled, as ``update``, and counted.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.engine import START, Clock, journal_records, projection

from journal_core import ClaimConflict, Committed, Store, clock, verbs
from journal_core.entities import Memory
from journal_core.mutation import Mutation

Record = dict[str, Any]
TARGET = "file:src/app.py"


@pytest.fixture
def now() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, now: Clock) -> Iterator[Store]:
    with Store(str(tmp_path / "store"), now=now) as opened:
        yield opened


def records_of(store: Store, committed: Committed) -> list[Record]:
    seqs = range(committed.first_seq, committed.first_seq + committed.count)
    return [r for r in journal_records(Path(store.root)) if r["seq"] in seqs]


def claim(store: Store, actor: str, target: str = TARGET, ttl_s: int = 60) -> tuple[str, Committed]:
    (_, claim_id), committed = store.mutate(actor, lambda m: verbs.claim(m, target, ttl_s))
    return claim_id, committed


def at(seconds: float) -> str:
    return clock.to_rfc3339(clock.plus_seconds(START, seconds))


# -- claims --------------------------------------------------------------------------------------
def test_a_claim_on_a_held_target_names_the_holder_and_the_expiry(store: Store, now: Clock) -> None:
    held, _ = claim(store, "ann", ttl_s=600)
    now.advance(599)
    head = store.head_seq

    with pytest.raises(ClaimConflict) as conflict:
        claim(store, "bob")

    assert (conflict.value.holder, conflict.value.claim_id) == ("ann", held)
    assert conflict.value.expires_at == at(600)
    assert "'ann'" in str(conflict.value) and at(600) in str(conflict.value)
    assert store.head_seq == head


def test_an_expired_claim_is_released_and_taken_over_in_the_same_txn(
    store: Store, now: Clock
) -> None:
    old, _ = claim(store, "ann", ttl_s=60)
    now.advance(60)  # expires_at is not in the future any more

    new, committed = claim(store, "bob")

    released, taken = records_of(store, committed)
    assert committed.count == 2
    assert released["txn"] == taken["txn"] == [committed.first_seq, 2]
    assert (released["item_id"], released["action"], released["summary"]) == (
        old,
        "release_claim",
        "expired; taken over by bob",
    )
    assert released["payload"]["taken_over_by"] == "bob"
    assert taken["payload"]["previous_holder"] == "ann"
    assert released["payload"]["status"] == "expired"
    assert (taken["item_id"], taken["action"], taken["payload"]["holder"]) == (new, "claim", "bob")
    assert store.state.claims.colliding(TARGET) == [(new, TARGET)]


def test_completing_a_step_claim_marks_the_step_done_in_the_same_txn(store: Store) -> None:
    (_, plan_id), _ = store.mutate("ann", lambda m: verbs.plan_create(m, "p", "g", ["a", "b"]))
    claim_id, claimed = claim(store, "bob", f"step:{plan_id}/s1")
    assert claimed.count == 2  # the claim, and the step marked claimed

    _, committed = store.mutate("bob", lambda m: verbs.complete(m, claim_id, "merged"))

    completed, updated = records_of(store, committed)
    assert completed["txn"] == updated["txn"] == [committed.first_seq, 2]
    assert (completed["item_id"], completed["action"]) == (claim_id, "complete")
    assert completed["payload"]["status"] == "completed"
    assert (updated["item_id"], updated["action"]) == (plan_id, "update")
    step = updated["payload"]["steps"][0]
    assert (step["status"], step["claim_id"], step["result"]) == ("done", claim_id, "merged")
    assert updated["payload"]["steps"][1]["status"] == "todo"


# -- renewal -------------------------------------------------------------------------------------
def test_renewal_moves_only_the_expiry_with_a_renew_record_and_no_rev_bump(
    store: Store, now: Clock, tmp_path: Path
) -> None:
    """A renewal is durable like any mutation (a renew record in the journal, so no
    process can take over a claim its holder renewed), but it is no entity record: the
    rev stays, and nothing but the ephemeral fields moves."""
    claim_id, _ = claim(store, "ann", ttl_s=60)
    before = store.entity_view("claim", claim_id)
    records_before = len(journal_records(Path(store.root)))
    now.advance(30)

    store.mutate("ann", lambda m: verbs.renew(m, claim_id, 600))

    renewal = journal_records(Path(store.root))[records_before:]
    assert [(r["action"], r["item_id"], r["entity_rev"], sorted(r["payload"]))
            for r in renewal] == [("renew", claim_id, 1, ["expires_at", "renewed_at"])]
    after = store.entity_view("claim", claim_id)
    assert after["entity_rev"] == before["entity_rev"] == 1
    assert after["entity"]["expires_at"] == at(630)
    assert after["entity"]["renewed_at"] == at(30)
    unchanged = {"expires_at", "renewed_at"}
    assert {k: v for k, v in after["entity"].items() if k not in unchanged} == {
        k: v for k, v in before["entity"].items() if k not in unchanged
    }
    written = projection(Path(store.root), "claim", claim_id)
    assert written is not None and written["payload"]["expires_at"] == at(630)

    now.advance(100)  # past the first expiry, before the renewed one
    with Store(store.root, now=now) as other:  # another process's view of the store
        with pytest.raises(ClaimConflict) as conflict:
            claim(other, "bob")
        assert conflict.value.expires_at == at(630)


def test_a_renewed_claim_completed_later_keeps_its_renewed_expiry(store: Store, now: Clock) -> None:
    claim_id, _ = claim(store, "ann", ttl_s=60)
    now.advance(30)
    store.mutate("ann", lambda m: verbs.renew(m, claim_id, 600))

    _, committed = store.mutate("ann", lambda m: verbs.complete(m, claim_id))

    (completed,) = records_of(store, committed)
    assert completed["payload"]["expires_at"] == at(630)
    assert completed["entity_rev"] == 2


# -- emission ------------------------------------------------------------------------------------
def retitle_without_annotation(memory_id: str) -> Any:
    def verb(m: Mutation) -> None:
        item = m.require(Memory, memory_id)
        item.title = "changed quietly"
        m.put(item)  # no m.annotate(...)

    return verb


def test_a_change_without_an_annotation_is_journaled_as_update_and_counted(
    store: Store,
) -> None:
    (_, memory_id), _ = store.mutate("ann", lambda m: verbs.remember(m, "note", "t", "b"))
    store.mutate("ann", lambda m: verbs.forget(m, memory_id, "annotated"))
    assert store.counters.unannotated_emissions == 0

    _, committed = store.mutate("ann", retitle_without_annotation(memory_id))

    (record,) = records_of(store, committed)
    assert (record["action"], record["summary"], record["entity_rev"]) == (
        "update",
        "unannotated change",
        3,
    )
    assert record["payload"]["title"] == "changed quietly"
    assert store.counters.unannotated_emissions == 1
    with Store(store.root) as reopened:  # counted from the journal: the same everywhere
        assert reopened.counters.unannotated_emissions == 1


def test_a_verb_that_changes_nothing_writes_nothing(store: Store) -> None:
    (_, memory_id), _ = store.mutate("ann", lambda m: verbs.remember(m, "note", "t", "b"))
    head = store.head_seq

    def put_back(m: Mutation) -> None:
        m.put(m.require(Memory, memory_id))

    _, committed = store.mutate("ann", put_back)

    assert committed.count == 0 and store.head_seq == head
