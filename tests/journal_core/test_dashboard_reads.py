"""The read models behind the dashboard (board, claim overview, feed pages, revisions with
their changes, superseded chains, health), on an injected clock."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.engine import Clock

from journal_core import (
    InvalidArgument,
    Store,
    board,
    claim_overview,
    events,
    health,
    limits,
    queries,
    revisions,
    supersession,
    verbs,
)


@pytest.fixture
def now() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, now: Clock) -> Iterator[Store]:
    with Store(str(tmp_path / "store"), now=now) as opened:
        yield opened


def make_plan(store: Store, title: str = "Parser", actor: str = "alice") -> str:
    (_, plan_id), _ = store.mutate(actor, lambda m: verbs.plan_create(m, title, steps=[
        "Tokenizer", {"title": "Grammar", "after": ["s1"]}, {"title": "Docs", "after": ["s2"]},
        "Bench"]))
    return plan_id


def claim_step(store: Store, actor: str, plan_id: str, step: str, ttl_s: int = 600) -> str:
    (_, claim_id), _ = store.mutate(actor, lambda m: verbs.claim(
        m, f"step:{plan_id}/{step}", ttl_s))
    return claim_id


def columns(lane: board.Lane) -> dict[str, list[str]]:
    return {column: [s.step_id for s in steps] for column, steps in lane.columns.items()}


# -- board ---------------------------------------------------------------------------------
def test_board_puts_each_step_in_the_column_its_claims_and_blockers_decide(
    store: Store, now: Clock,
) -> None:
    plan_id = make_plan(store)
    claim_id = claim_step(store, "bob", plan_id, "s1", ttl_s=90)
    store.mutate("alice", lambda m: verbs.plan_update(
        m, plan_id, step_updates=[{"id": "s4", "status": "blocked"}]))
    now.advance(30)
    found = board.board(store)
    lane = found.lanes[0]
    assert columns(lane) == {"todo": ["s2", "s3"], "ready": [], "claimed": ["s1"],
                             "blocked": ["s4"], "done": []}
    held = lane.columns["claimed"][0]
    assert (held.holder, held.claim_id, held.seconds_left) == ("bob", claim_id, 60)
    assert held.unblocks == ["s2"]
    waiting = lane.columns["todo"][0]
    assert [(b.text, b.status, b.holder) for b in waiting.waits_for] == [("s1", "claimed", "bob")]
    store.mutate("bob", lambda m: verbs.complete(m, claim_id, "done"))
    lane = board.board(store).lanes[0]
    assert columns(lane)["done"] == ["s1"] and columns(lane)["ready"] == ["s2"]
    assert lane.columns["ready"][0].waits_for[0].status == "done"
    assert (lane.steps_done, lane.steps_total) == (1, 4)


def test_board_ready_column_is_what_ready_offers_including_lapsed_claims(
    store: Store, now: Clock,
) -> None:
    first = make_plan(store, "One")
    now.advance(1)
    second = make_plan(store, "Two")
    claim_step(store, "bob", first, "s1", ttl_s=10)
    claim_step(store, "carol", second, "s4", ttl_s=600)
    now.advance(11)
    found = board.board(store)
    on_board = [(lane.plan_id, s.step_id) for lane in found.lanes
                for s in lane.columns["ready"]]
    offered = [(row["plan"], row["step"]) for row in queries.ready(store)["steps"]]
    assert on_board == offered
    lapsed = next(s for s in found.lanes[0].columns["ready"] if s.step_id == "s1")
    assert lapsed.lapsed_holder == "bob" and lapsed.holder is None


def test_board_pages_plans_in_work_queue_order(store: Store, now: Clock) -> None:
    ids = []
    for number in range(5):
        now.advance(1)
        ids.append(make_plan(store, f"Plan {number}"))
    first = board.board(store, page=1, per_page=2)
    last = board.board(store, page=3, per_page=2)
    assert [lane.plan_id for lane in first.lanes] == ids[:2]
    assert [lane.plan_id for lane in last.lanes] == ids[4:]
    assert (first.pages, first.plans_total) == (3, 5)
    with pytest.raises(InvalidArgument, match="page"):
        board.board(store, page=0)


def test_board_shows_what_a_step_waits_for_and_unblocks_across_plans(
    store: Store, now: Clock,
) -> None:
    first = make_plan(store, "First")
    now.advance(1)
    (_, second), _ = store.mutate("alice", lambda m: verbs.plan_create(
        m, "Second", steps=[{"title": "Uses the tokenizer", "after": [f"{first}/s1"]}]))
    lanes = {lane.plan_id: lane for lane in board.board(store).lanes}
    assert f"{second}/s1" in lanes[first].columns["ready"][0].unblocks
    assert lanes[second].columns["todo"][0].waits_for[0].text == f"{first}/s1"


# -- claims ---------------------------------------------------------------------------------
def test_claim_overview_orders_live_claims_by_expiry_and_marks_the_expiring_soon(
    store: Store, now: Clock,
) -> None:
    store.mutate("bob", lambda m: verbs.claim(m, "file:src/app.py", 600))
    store.mutate("carol", lambda m: verbs.claim(m, "file:docs/", 60))
    store.mutate("dave", lambda m: verbs.claim(m, "release notes", 30))
    now.advance(40)
    found = claim_overview.claim_overview(store)
    assert [row.holder for row in found.active] == ["carol", "bob"]
    assert found.active[0].expiring_soon and not found.active[1].expiring_soon
    assert found.active[0].targets[0] == claim_overview.Target("file", "docs/")
    assert found.expiring_soon_total == 1
    assert [row.holder for row in found.lapsed] == ["dave"]


def test_claim_overview_lists_claims_taken_over_recently(store: Store, now: Clock) -> None:
    store.mutate("bob", lambda m: verbs.claim(m, "file:src/app.py", 10))
    now.advance(11)
    store.mutate("carol", lambda m: verbs.claim(m, "file:src/app.py", 600))
    found = claim_overview.claim_overview(store)
    assert [(r.holder, r.taken_over_by) for r in found.taken_over] == [("bob", "carol")]
    assert [r.holder for r in found.active] == ["carol"]
    assert found.active[0].previous_holder == "bob"
    now.advance(limits.claim_recent_s + 1)
    assert claim_overview.claim_overview(store).taken_over == []


# -- events -----------------------------------------------------------------------------------
def test_event_pages_go_back_in_time_and_filter_by_actor_family_and_action(
    store: Store,
) -> None:
    for number in range(7):
        store.mutate("bob" if number % 2 else "alice", lambda m, n=number: verbs.remember(
            m, "note", f"note {n}"))
    store.mutate("alice", lambda m: verbs.send_message(m, "*", "hello"))
    everything = events.events_before(store, limit=3)
    assert [e["seq"] for e in everything.events] == [9, 8, 7]
    older = events.events_before(store, before=everything.older, limit=3)
    assert [e["seq"] for e in older.events] == [6, 5, 4]
    bob = events.events_before(store, where=events.EventFilter(actor="bob"))
    assert {e["actor"] for e in bob.events} == {"bob"} and len(bob.events) == 3
    assert bob.older is None
    messages = events.events_before(store, where=events.EventFilter(family="message",
                                                                     action="create"))
    assert [e["item_type"] for e in messages.events] == ["message"]
    with pytest.raises(InvalidArgument, match="unknown family"):
        events.EventFilter(family="plans")


def test_events_after_moves_past_what_the_filter_leaves_out(store: Store) -> None:
    head = store.head_seq
    store.mutate("alice", lambda m: verbs.remember(m, "note", "one"))
    store.mutate("bob", lambda m: verbs.remember(m, "note", "two"))
    found, last = events.events_after(store, head, events.EventFilter(actor="bob"))
    assert [e["actor"] for e in found] == ["bob"] and last == store.head_seq
    assert events.events_after(store, last) == ([], last)


# -- revisions ------------------------------------------------------------------------------------
def test_entity_history_names_every_rev_its_writer_and_what_changed(
    store: Store, now: Clock,
) -> None:
    plan_id = make_plan(store)
    claim_id = claim_step(store, "bob", plan_id, "s1")
    now.advance(5)
    store.mutate("bob", lambda m: verbs.complete(m, claim_id, "tokens work"))
    found = revisions.entity_history(store, "plan", plan_id)
    assert [r.entity_rev for r in found.revisions] == [3, 2, 1]
    assert [r.actor for r in found.revisions] == ["bob", "bob", "alice"]
    assert found.reached_first and found.older is None and not found.archived_before
    done = {c.path: c for c in found.revisions[0].changes}
    assert (done["steps[s1].status"].before, done["steps[s1].status"].after) == ("claimed",
                                                                                  "done")
    assert done["steps[s1].result"].after == "tokens work"
    created = {c.path: c.kind for c in found.revisions[-1].changes}
    assert created["title"] == "added" and created["steps"] == "added"


def test_a_renew_shows_as_a_change_of_the_expiry(store: Store, now: Clock) -> None:
    (_, claim_id), _ = store.mutate("bob", lambda m: verbs.claim(m, "file:a.py", 60))
    now.advance(30)
    store.mutate("bob", lambda m: verbs.renew(m, claim_id))
    newest = revisions.entity_history(store, "claim", claim_id).revisions[0]
    assert newest.action == "renew"
    assert {c.path for c in newest.changes} == {"expires_at", "renewed_at"}


def test_a_long_text_change_comes_as_a_line_diff() -> None:
    before = {"body": "first line\nsecond line\nthird line"}
    after = {"body": "first line\nsecond line, edited\nthird line"}
    (change,) = revisions.payload_changes(before, after)
    assert change.lines is not None
    assert [line for line in change.lines if not line.startswith("@@")] == [
        " first line", "-second line", "+second line, edited", " third line"]


# -- memory -------------------------------------------------------------------------------------
def test_memory_page_carries_the_chain_of_superseded_items(store: Store) -> None:
    (_, first), _ = store.mutate("alice", lambda m: verbs.remember(m, "decision", "Use v1"))
    (_, second), _ = store.mutate("bob", lambda m: verbs.remember(
        m, "decision", "Use v2", supersedes=first))
    (_, third), _ = store.mutate("carol", lambda m: verbs.remember(
        m, "decision", "Use v3", supersedes=second))
    page = supersession.memory_page(store, kind="decision", status="active")
    assert [row["id"] for row in page.items] == [third]
    assert [link.id for link in page.chains[third]] == [second, first]
    assert page.chains[third][0].status == "superseded"


# -- health ---------------------------------------------------------------------------------
def test_health_of_a_clean_store_says_healthy_in_words(store: Store) -> None:
    make_plan(store)
    found = health.health(store)
    assert found.verdict == health.VERDICT_HEALTHY
    assert found.words.startswith("Healthy: the journal reads to seq")
    assert found.status["head_seq"] == store.head_seq


def test_entity_history_pages_back_with_each_diff_against_the_revision_before(
    store: Store,
) -> None:
    (_, memory_id), _ = store.mutate("alice", lambda m: verbs.remember(m, "note", "v0"))
    for number in range(1, 5):
        store.mutate("alice", lambda m, n=number: verbs.forget(m, memory_id, f"why {n}")
                     if n == 4 else verbs.remember(m, "note", f"other {n}"))
    first = revisions.entity_history(store, "memory", memory_id, per_page=1)
    assert [r.entity_rev for r in first.revisions] == [2]
    assert {c.path: c.after for c in first.revisions[0].changes}["status"] == "archived"
    assert first.older == first.revisions[0].seq and not first.reached_first
    second = revisions.entity_history(store, "memory", memory_id, before=first.older,
                                      per_page=1)
    assert [r.entity_rev for r in second.revisions] == [1]
    assert second.reached_first and second.older is None


def test_an_old_entitys_history_reads_a_bounded_stretch_of_journal_per_page(
    store: Store, monkeypatch: pytest.MonkeyPatch,
) -> None:
    (_, memory_id), _ = store.mutate("alice", lambda m: verbs.remember(m, "note", "old"))
    store.mutate("bob", lambda m: [verbs.remember(m, "note", f"filler {n}") for n in range(700)])
    store.mutate("alice", lambda m: verbs.forget(m, memory_id, "stale"))
    monkeypatch.setattr(limits, "history_scan_seqs_max", limits.history_window_seqs_min)
    first = revisions.entity_history(store, "memory", memory_id)
    assert [r.entity_rev for r in first.revisions] == [2]
    assert first.revisions[0].changes == [] and first.revisions[0].note is not None
    assert "older page" in first.revisions[0].note and first.older is not None
    pages = 1
    page = first
    while page.older is not None and pages < 10:
        page = revisions.entity_history(store, "memory", memory_id, before=page.older)
        pages += 1
    assert page.reached_first and [r.entity_rev for r in page.revisions] == [1]
