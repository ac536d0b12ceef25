"""Federation: slices converge, conflicts surface, bad slices are
refused whole, and a big import never holds the lock for more than one chunk."""

from __future__ import annotations

import hashlib
import os
import random
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest

from journal_core import ClaimConflict, Conflict, Store, StoreConfig, verbs
from journal_core.federation import SliceRefused, export_slice, import_slice
from journal_core.local_journal import LocalTransaction

Opener = Callable[..., Store]


@pytest.fixture
def open_store(tmp_path: Path) -> Iterator[Opener]:
    """Open stores under tmp_path by name; every one is closed at teardown."""
    opened: list[Store] = []

    def opener(name: str, config: StoreConfig | None = None) -> Store:
        store = Store(str(tmp_path / name), config)
        opened.append(store)
        return store

    yield opener
    for store in opened:
        store.close()


def projection_bytes(store: Store) -> dict[str, bytes]:
    root = Path(store.root) / "state"
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.json"))}


def store_files(root: str) -> dict[str, str]:
    files = {}
    for path in sorted(Path(root).rglob("*")):
        if path.is_file() and path.name != "lock":
            files[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return files


def conflict_keys(conflicts: list[dict]) -> set[tuple[str, str, int]]:
    return {(c["item_type"], c["item_id"], c["entity_rev"]) for c in conflicts}


def random_edit(store: Store, actor: str, plans: list[str], memories: list[str],
                rng: random.Random) -> None:
    choice = rng.random()
    if choice < 0.4:
        plan_id = rng.choice(plans)
        store.mutate(actor, lambda m: verbs.plan_update(m, plan_id, goal=f"{actor} {rng.random()}"))
    elif choice < 0.7:
        memory_id = rng.choice(memories)
        store.mutate(actor, lambda m: verbs.forget(m, memory_id, reason=f"{actor} {rng.random()}")
                     if rng.random() < 0.1 else verbs.plan_update(
                         m, plans[0], title=f"{actor} title {rng.randint(0, 9)}"))
    elif choice < 0.85:
        store.mutate(actor, lambda m: verbs.remember(m, "note", f"{actor} note", "body"))
    else:
        store.mutate(actor, lambda m: verbs.send_message(m, "*", f"hello from {actor}"))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_three_stores_exchanging_in_random_order_converge_and_agree_on_conflicts(
    open_store: Opener, seed: int,
) -> None:
    rng = random.Random(seed)
    stores = [open_store(name, StoreConfig(fsync="never")) for name in "abc"]
    first = stores[0]
    plans = [
        first.mutate("a", lambda m, i=i: verbs.plan_create(m, f"plan {i}", "goal", ["x"]))[0][1]
        for i in range(3)
    ]
    memories = [first.mutate("a", lambda m, i=i: verbs.remember(m, "fact", f"m{i}", "b"))[0][1]
                for i in range(3)]
    for other in stores[1:]:
        import_slice(other, export_slice(first))
    conflicts: list[set[tuple[str, str, int]]] = [set(), set(), set()]
    slices = []
    for _ in range(30):
        index = rng.randrange(3)
        random_edit(stores[index], f"agent-{'abc'[index]}", plans, memories, rng)
        if rng.random() < 0.3:
            slices.append(export_slice(stores[rng.randrange(3)], since_seq=rng.choice([0, 5])))
    # deliver the slices taken along the way in random order, some twice, then a full mesh
    deliveries = [(rng.randrange(3), data) for data in slices for _ in range(rng.choice([1, 2]))]
    rng.shuffle(deliveries)
    for target, data in deliveries:
        conflicts[target] |= conflict_keys(import_slice(stores[target], data).conflicts)
    for _ in range(2):
        for source in range(3):
            data = export_slice(stores[source])
            for target in range(3):
                if target != source:
                    found = import_slice(stores[target], data).conflicts
                    conflicts[target] |= conflict_keys(found)
    images = [projection_bytes(store) for store in stores]
    assert images[0] == images[1] == images[2]
    assert conflicts[0] == conflicts[1] == conflicts[2]


def test_offline_edits_surface_exactly_one_conflict_and_the_newer_rev_stays(
    open_store: Opener,
) -> None:
    a, b = open_store("a"), open_store("b")
    plan_id = a.mutate("alice", lambda m: verbs.plan_create(m, "ship", "goal"))[0][1]
    for index in range(6):
        a.mutate("alice", lambda m, i=index: verbs.plan_update(m, plan_id, goal=f"goal {i}"))
    assert a.entity_view("plan", plan_id)["entity_rev"] == 7
    import_slice(b, export_slice(a))
    a.mutate("alice", lambda m: verbs.plan_update(m, plan_id, goal="alice 8"))
    a.mutate("alice", lambda m: verbs.plan_update(m, plan_id, goal="alice 9"))
    b.mutate("bob", lambda m: verbs.plan_update(m, plan_id, goal="bob 8"))

    result = import_slice(a, export_slice(b))

    assert [(c["item_id"], c["entity_rev"]) for c in result.conflicts] == [(plan_id, 8)]
    view = a.entity_view("plan", plan_id)
    assert (view["entity_rev"], view["entity"]["goal"]) == (9, "alice 9")
    # the losing version stays readable in the journal, and a journal_note names the conflict
    events = a.read_unseen("someone-else", limit=1000, item_types=["plan", "journal"])["events"]
    assert any(e.get("payload", {}).get("goal") == "bob 8" for e in events)
    notes = [e for e in events if e["item_type"] == "journal"
             and e["payload"].get("kind") == "import_conflict"]
    assert [(n["payload"]["item_id"], n["payload"]["entity_rev"]) for n in notes] == [(plan_id, 8)]


def test_importing_the_same_slice_twice_changes_nothing(open_store: Opener) -> None:
    a, b = open_store("a"), open_store("b")
    a.mutate("alice", lambda m: verbs.remember(m, "decision", "use orjson", "fast"))
    data = export_slice(a)
    assert import_slice(b, data).applied == 1
    before = store_files(b.root)

    again = import_slice(b, data)

    assert (again.applied, again.skipped, again.conflicts) == (0, 1, [])
    assert store_files(b.root) == before


@pytest.mark.parametrize("damage", ["truncate", "flip", "foreign", "header"])
def test_a_damaged_or_foreign_slice_is_refused_with_nothing_applied(
    open_store: Opener, damage: str,
) -> None:
    a, b = open_store("a"), open_store("b")
    for index in range(5):
        a.mutate("alice", lambda m, i=index: verbs.remember(m, "fact", f"fact {i}", "body"))
    data = export_slice(a)
    if damage == "truncate":
        data = data[: len(data) - 40]
    elif damage == "flip":
        position = len(data) - 100
        data = data[:position] + bytes([data[position] ^ 0x01]) + data[position + 1:]
    elif damage == "foreign":
        header, _, body = data.partition(b"\n")
        data = orjson.dumps({**orjson.loads(header), "version": 99}) + b"\n" + body
    else:
        data = b"not a slice\n" + data
    before = store_files(b.root)

    with pytest.raises(SliceRefused):
        import_slice(b, data)

    assert store_files(b.root) == before


def test_a_big_import_holds_the_lock_for_one_chunk_at_a_time(
    open_store: Opener, monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = open_store("a", StoreConfig(fsync="never"))
    total = 10_000
    for index in range(total):
        source.mutate("alice", lambda m, i=index: verbs.send_message(m, "*", f"message {i}"))
    data = export_slice(source)
    target = open_store("b")
    holds: list[int] = []  # entity records appended during each lock hold
    lock = target.journal.lock
    real_acquire = lock.acquire
    real_append = LocalTransaction.append

    def acquire(*args: object, **kwargs: object) -> bool:
        got = real_acquire(*args, **kwargs)  # type: ignore[arg-type]
        if got and lock._depth == 1:
            holds.append(0)
        return got

    def append(txn: LocalTransaction, groups: list[list[dict[str, object]]]) -> None:
        holds[-1] += sum(1 for group in groups for record in group if "origin" in record)
        real_append(txn, groups)

    lock.acquire = acquire  # type: ignore[method-assign]
    monkeypatch.setattr(LocalTransaction, "append", append)

    result = import_slice(target, data, chunk_records=500)

    assert result.applied == total and result.chunks == total // 500
    assert max(holds) == 500
    assert sum(holds) == total
    assert len([h for h in holds if h]) == total // 500


def test_a_claim_imported_from_another_store_blocks_locally_and_cannot_be_released_here(
    open_store: Opener,
) -> None:
    a, b = open_store("a"), open_store("b")
    (_, claim_id), _ = a.mutate("alice", lambda m: verbs.claim(m, "file:src/app.py"))
    import_slice(b, export_slice(a))

    with pytest.raises(ClaimConflict, match="alice"):
        b.mutate("bob", lambda m: verbs.claim(m, "file:src/app.py"))
    with pytest.raises(Conflict, match="belongs to store"):
        b.mutate("alice", lambda m: verbs.release(m, claim_id))
    with pytest.raises(Conflict, match="belongs to store"):
        b.mutate("alice", lambda m: verbs.complete(m, claim_id, "done"))

    a.mutate("alice", lambda m: verbs.release(m, claim_id))
    import_slice(b, export_slice(a))
    (_, taken), _ = b.mutate("bob", lambda m: verbs.claim(m, "file:src/app.py"))
    assert b.entity_view("claim", taken)["entity"]["holder"] == "bob"


def test_imported_records_are_unseen_events_except_for_their_own_actor(open_store: Opener) -> None:
    a, b = open_store("a"), open_store("b")
    a.mutate("alice", lambda m: verbs.send_message(m, "bob", "please review"))
    import_slice(b, export_slice(a))

    for_bob = b.read_unseen("bob")["events"]
    for_alice = b.read_unseen("alice")["events"]

    assert [e["payload"]["body"] for e in for_bob] == ["please review"]
    assert for_alice == []
    assert b.origins() == {a.store_id: a.head_seq}


def test_an_oversized_payload_travels_with_its_blob(open_store: Opener) -> None:
    a, b = open_store("a"), open_store("b")
    context = "diff line\n" * 20_000
    (_, handoff_id), _ = a.mutate(
        "alice", lambda m: verbs.send_handoff(m, "bob", "big refactor", context))
    blobs_in_a = list((Path(a.root) / "events" / "blobs").rglob("*"))
    assert any(p.is_file() for p in blobs_in_a)

    import_slice(b, export_slice(a))

    assert b.entity_view("handoff", handoff_id)["entity"]["context"] == context
    assert os.path.isdir(Path(b.root) / "events" / "blobs")
