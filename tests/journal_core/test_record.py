"""Record classes and the payload migration registry (migrations.py).

Every action class accepts a record that keeps its rules and refuses, with RecordInvalid
before anything is encoded, a record that breaks them. A v1 plan (steps as titles) is
migrated to v2 step objects, on its own and when replay meets it in a journal.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support.engine import TS, WRITER_A, Clock, append_bytes, framed, journal_records

from journal_core import InvalidArgument, RecordInvalid, Store, verbs
from journal_core.migrations import upgrade
from journal_core.record import check_record, encode_record

Record = dict[str, Any]


def envelope(action: str, item_type: str, **fields: Any) -> Record:
    return {
        "v": 1, "seq": 7, "ts": TS, "writer": WRITER_A, "actor": "ann", "action": action,
        "item_type": item_type, "txn": [7, 1], **fields,
    }  # fmt: skip


def entity_state(action: str = "update") -> Record:
    payload = {"schema_version": 1, "id": "mem_a1", "title": "t"}
    return envelope(action, "memory", item_id="mem_a1", entity_rev=2, payload=payload)


def tombstone() -> Record:
    return envelope("delete", "memory", item_id="mem_a1", entity_rev=3)


def journal_meta(action: str = "journal_note") -> Record:
    payloads = {
        "journal_note": {"kind": "genesis"},
        "seq_repair": {"meta_next_seq": 2, "tail_seq": 6, "repaired_next_seq": 7},
        "checkpoint_ref": {
            "file": "ckpt-000000000006.json", "sha256": "0" * 64, "head_seq": 6,
            "entities": 1, "bytes": 10, "blobs": [],
        },
    }  # fmt: skip
    return envelope(action, "journal", payload=payloads[action])


def observability(action: str = "progress") -> Record:
    return envelope(action, "plan", item_id="pln_a1")


VALID: dict[str, Callable[[], Record]] = {
    **{f"entity-state {a}": (lambda a=a: entity_state(a)) for a in (  # type: ignore[misc]
        "create", "update", "claim", "release_claim", "complete", "accept", "reject",
        "backfill")},
    "tombstone": tombstone,
    **{f"journal-meta {a}": (lambda a=a: journal_meta(a)) for a in (  # type: ignore[misc]
        "journal_note", "seq_repair", "checkpoint_ref")},
    **{f"observability {a}": (lambda a=a: observability(a)) for a in (  # type: ignore[misc]
        "session_start", "session_end", "progress")},
}  # fmt: skip


@pytest.mark.parametrize("make", VALID.values(), ids=VALID.keys())
def test_a_record_that_keeps_its_class_rules_is_accepted_and_encodes_to_one_line(
    make: Callable[[], Record],
) -> None:
    record = make()
    assert check_record(record) is record
    line = encode_record(record)
    assert b"\n" not in line and line.startswith(b'{"v":1,"seq":7,')


def without(record: Record, key: str) -> Record:
    return {k: v for k, v in record.items() if k != key}


BROKEN: dict[str, Callable[[], Record]] = {
    "entity-state without a payload": lambda: without(entity_state(), "payload"),
    "entity-state with payload and payload_ref": lambda: {
        **entity_state(), "payload_ref": {"sha256": "0" * 64, "bytes": 1}},
    "entity-state without an item_id": lambda: without(entity_state(), "item_id"),
    "entity-state without an entity_rev": lambda: without(entity_state(), "entity_rev"),
    "entity-state whose id lacks its family prefix": lambda: {
        **entity_state(), "item_id": "pln_a1"},
    "entity-state on the journal": lambda: {**entity_state(), "item_type": "journal"},
    "tombstone with a payload": lambda: {**tombstone(), "payload": {"id": "mem_a1"}},
    "tombstone without an entity_rev": lambda: without(tombstone(), "entity_rev"),
    "journal-meta with an item_id": lambda: {**journal_meta(), "item_id": "mem_a1"},
    "journal-meta with an entity_rev": lambda: {**journal_meta(), "entity_rev": 1},
    "journal-meta on an entity family": lambda: {**journal_meta(), "item_type": "memory"},
    "journal_note of an unknown kind": lambda: {**journal_meta(), "payload": {"kind": "x"}},
    "seq_repair missing a field": lambda: {
        **journal_meta("seq_repair"), "payload": {"meta_next_seq": 2, "tail_seq": 6}},
    "checkpoint_ref missing its sha256": lambda: {
        **journal_meta("checkpoint_ref"),
        "payload": without(journal_meta("checkpoint_ref")["payload"], "sha256")},
    "observability with a payload": lambda: {**observability(), "payload": {"pct": 5}},
    "observability with an entity_rev": lambda: {**observability(), "entity_rev": 1},
    "an unknown action": lambda: {**entity_state(), "action": "upsert"},
    "envelope version 2": lambda: {**entity_state(), "v": 2},
    "a seq outside its txn": lambda: {**entity_state(), "txn": [1, 3]},
    "a writer of the wrong shape": lambda: {**entity_state(), "writer": "w_1-XYZ"},
    "a timestamp that is not RFC 3339 UTC": lambda: {**entity_state(), "ts": "yesterday"},
    "a summary over 500 characters": lambda: {**entity_state(), "summary": "s" * 501},
    "an unknown envelope field": lambda: {**entity_state(), "priority": 1},
    "a seq given as a string": lambda: {**entity_state(), "seq": "7"},
}  # fmt: skip


@pytest.mark.parametrize("make", BROKEN.values(), ids=BROKEN.keys())
def test_a_record_that_breaks_its_class_is_refused_before_it_is_encoded(
    make: Callable[[], Record],
) -> None:
    with pytest.raises(RecordInvalid):
        check_record(make())
    with pytest.raises(RecordInvalid):
        encode_record(make())


def test_a_verb_annotating_an_action_outside_the_entity_classes_is_refused(
    tmp_path: Path,
) -> None:
    with Store(str(tmp_path / "store")) as store:
        head = store.head_seq

        def bad_intent(m: Any) -> None:
            verbs.remember(m, "note", "t")
            m.annotate("journal_note", "memory", "mem_a1", "not an entity action")

        with pytest.raises(InvalidArgument, match="not an entity action"):
            store.mutate("ann", bad_intent)
        assert store.head_seq == head


# -- the plan v1 -> v2 migration -----------------------------------------------------------------
def plan_v1(steps: object) -> dict[str, Any]:
    return {
        "schema_version": 1, "id": "pln_old1", "created_at": TS, "created_by": "ann",
        "title": "old plan", "goal": "", "status": "active", "steps": steps,
        "owner": "ann", "tags": [],
    }  # fmt: skip


def test_a_v1_plan_gets_step_objects_numbered_from_s1_all_to_do() -> None:
    upgraded = upgrade("plan", plan_v1(["lexer", "parser"]))

    assert upgraded["schema_version"] == 2
    assert upgraded["steps"] == [
        {"id": "s1", "title": "lexer", "status": "todo", "claim_id": None, "result": None},
        {"id": "s2", "title": "parser", "status": "todo", "claim_id": None, "result": None},
    ]
    assert {k: v for k, v in upgraded.items() if k not in ("steps", "schema_version")} == {
        k: v for k, v in plan_v1([]).items() if k not in ("steps", "schema_version")
    }


def test_the_migration_leaves_its_input_untouched_and_a_current_plan_as_it_is() -> None:
    original = plan_v1(["lexer"])
    upgraded = upgrade("plan", original)

    assert original["steps"] == ["lexer"] and original["schema_version"] == 1
    assert upgrade("plan", upgraded) == upgraded


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (plan_v1([{"id": "s1"}]), "list of titles"),
        (plan_v1("lexer"), "list of titles"),
        ({**plan_v1([]), "schema_version": 3}, "unknown schema_version"),
        ({**plan_v1([]), "schema_version": 0}, "unknown schema_version"),
        (without(plan_v1([]), "schema_version"), "unknown schema_version"),
        ({**plan_v1(["a"]), "title": ""}, "title"),
    ],
    ids=["steps of objects", "steps as text", "a future version", "version 0",
         "no version", "an invalid v1 plan"],
)  # fmt: skip
def test_a_payload_that_cannot_be_migrated_or_validated_is_refused(
    payload: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidArgument, match=message):
        upgrade("plan", payload)


def test_replay_migrates_a_v1_plan_in_the_journal_and_skips_one_it_cannot(
    tmp_path: Path,
) -> None:
    root = tmp_path / "store"
    with Store(str(root), now=Clock()):
        pass
    head = max(r["seq"] for r in journal_records(root))
    good = envelope("create", "plan", item_id="pln_old1", entity_rev=1,
                    payload=plan_v1(["lexer"]))  # fmt: skip
    bad = envelope("create", "plan", item_id="pln_bad1", entity_rev=1,
                   payload={**plan_v1(["x"]), "id": "pln_bad1", "schema_version": 9})  # fmt: skip
    good.update(seq=head + 1, txn=[head + 1, 1])
    bad.update(seq=head + 2, txn=[head + 2, 1])
    append_bytes(root, framed(encode_record(good), encode_record(bad)))

    with Store(str(root)) as store:
        view = store.entity_view("plan", "pln_old1")
        assert view["entity"]["schema_version"] == 2
        assert view["entity"]["steps"][0]["title"] == "lexer"
        assert store.state.entity("plan", "pln_bad1") is None
        assert store.counters.payloads_invalid == 1
        (_, claim_id), _ = store.mutate("bob", lambda m: verbs.claim(m, "step:pln_old1/s1"))
        assert store.entity_view("plan", "pln_old1")["entity"]["steps"][0]["claim_id"] == claim_id
