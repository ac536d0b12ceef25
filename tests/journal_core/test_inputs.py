"""Hostile input: path-like ids and oversized values are refused with a
typed error, and nothing is written -- every byte of the store folder is compared before
and after (except the lock file's holder note, which every lock acquisition rewrites).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support.engine import TS, WRITER_A, Clock, memory_record, store_image

from journal_core import (
    InvalidArgument,
    PayloadTooLarge,
    Store,
    StoreError,
    doctor,
    limits,
    verbs,
)
from journal_core.mutation import Mutation
from journal_core.record import encode_record

PATH_LIKE_IDS = [
    "../x",
    "a/b",
    "..",
    ".",
    "mem_\x00",
    "mem_../../etc/passwd",
    "/etc/passwd",
    "mem_x\\y",
    "mem_x\n",
    "MEM_X",
    "",
    "mem_" + "a" * limits.item_id_chars_max,
]
HUGE = "x" * 100_000
Call = Callable[[Store], Any]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(str(tmp_path / "store"), now=Clock()) as opened:
        (_, plan_id), _ = opened.mutate("ann", lambda m: verbs.plan_create(m, "p", "g", ["a"]))
        opened.mutate("ann", lambda m: verbs.claim(m, f"step:{plan_id}/s1"))
        opened.mutate("ann", lambda m: verbs.remember(m, "note", "kept", "body"))
        opened.entities("plan")  # every family read once: nothing left to heal
        yield opened


def refused(store: Store, call: Call, error: type[StoreError], match: str | None) -> StoreError:
    """Run ``call``; it must raise ``error`` and leave every byte of the store as it was,
    and nothing may appear beside the store either."""
    root = Path(store.root)
    before, beside = store_image(root), sorted(root.parent.iterdir())
    with pytest.raises(error, match=match) as raised:
        call(store)
    assert store_image(root) == before
    assert sorted(root.parent.iterdir()) == beside
    return raised.value


def mutation(verb: Callable[[Mutation], Any]) -> Call:
    return lambda store: store.mutate("ann", verb)


# -- path-like ids ---------------------------------------------------------------------------
def calls_with_id(bad: str) -> dict[str, Call]:
    return {
        "get": lambda s: s.entity_view("memory", bad),
        "forget": mutation(lambda m: verbs.forget(m, bad)),
        "supersede": mutation(lambda m: verbs.remember(m, "note", "t", supersedes=bad)),
        "plan update": mutation(lambda m: verbs.plan_update(m, bad, title="t")),
        "release": mutation(lambda m: verbs.release(m, bad)),
        "complete": mutation(lambda m: verbs.complete(m, bad)),
        "respond to handoff": mutation(lambda m: verbs.respond_handoff(m, bad, True)),
        "claim a step of it": mutation(lambda m: verbs.claim(m, f"step:{bad}/s1")),
    }


@pytest.mark.parametrize("bad", PATH_LIKE_IDS, ids=repr)
def test_a_path_like_id_is_refused_as_invalid_and_nothing_is_written(
    store: Store, bad: str
) -> None:
    for name, call in calls_with_id(bad).items():
        error = refused(store, call, InvalidArgument, match="id|target")
        assert "invalid" in str(error) or "step:<plan_id>/<step_id>" in str(error), name


@pytest.mark.parametrize("family", ["../memory", "memory/..", "state", "", "journal"])
def test_a_path_like_item_type_is_refused_and_nothing_is_written(store: Store, family: str) -> None:
    refused(store, lambda s: s.entity_view(family, "mem_x"), InvalidArgument, "item type")
    refused(store, lambda s: s.entities(family), InvalidArgument, "item type")


@pytest.mark.parametrize("actor", ["", "   ", "ann\x00", "ann\nbob", "a" * 129])
def test_an_unusable_actor_is_refused_and_nothing_is_written(store: Store, actor: str) -> None:
    remember = mutation(lambda m: verbs.remember(m, "note", "t"))
    refused(store, lambda s: s.mutate(actor, remember), InvalidArgument, "actor")
    refused(store, lambda s: s.read_unseen(actor), InvalidArgument, "actor")
    refused(store, lambda s: s.ack(actor, 1), InvalidArgument, "actor")


def test_a_path_like_actor_keeps_its_cursor_inside_the_cursors_folder(store: Store) -> None:
    root = Path(store.root)
    beside = sorted(root.parent.iterdir())
    before = set(store_image(root))

    store.ack("../../outside", store.head_seq)
    store.ack("..", store.head_seq)

    created = set(store_image(root)) - before
    assert len(created) == 2
    assert all(Path(name).parent == Path("cursors") for name in created), created
    assert sorted(root.parent.iterdir()) == beside
    assert store.cursors.get("../../outside") == store.head_seq


# -- oversized input ---------------------------------------------------------------------------
OVERSIZED: dict[str, Callable[[Mutation], Any]] = {
    "a huge plan title": lambda m: verbs.plan_create(m, HUGE),
    "a huge memory title": lambda m: verbs.remember(m, "note", HUGE),
    "a huge step title": lambda m: verbs.plan_create(m, "t", steps=[HUGE]),
    "too many steps": lambda m: verbs.plan_create(
        m, "t", steps=["s"] * (limits.plan_steps_max + 1)
    ),
    "a body over the text limit": lambda m: verbs.remember(
        m, "note", "t", "x" * (limits.text_chars_max + 1)
    ),
    "too many tags": lambda m: verbs.remember(m, "note", "t", tags=["t"] * (limits.tags_max + 1)),
    "a huge tag": lambda m: verbs.remember(m, "note", "t", tags=[HUGE]),
    "a huge claim target": lambda m: verbs.claim(m, "file:" + HUGE),
    "a huge message": lambda m: verbs.send_message(m, "bob", HUGE),
    "a huge handoff summary": lambda m: verbs.send_handoff(m, "bob", HUGE),
}


@pytest.mark.parametrize("verb", OVERSIZED.values(), ids=OVERSIZED.keys())
def test_an_oversized_field_is_refused_as_invalid_and_nothing_is_written(
    store: Store, verb: Callable[[Mutation], Any]
) -> None:
    error = refused(store, mutation(verb), InvalidArgument, "at most|characters|should have")
    assert len(str(error)) < 1000  # the error names the limit; it does not echo the input


def test_a_payload_beyond_the_blob_limit_is_refused_and_no_blob_is_written(
    store: Store,
) -> None:
    context = "x" * (limits.blob_bytes_max + 1)
    huge = mutation(lambda m: verbs.send_handoff(m, "bob", "a big diff", context))
    refused(store, huge, PayloadTooLarge, "at most")


def test_the_codec_refuses_to_encode_a_line_over_256_kib() -> None:
    record = memory_record(5, WRITER_A, "mem_big", 1, "big")
    record["payload"]["body"] = "x" * limits.record_line_bytes_max
    with pytest.raises(PayloadTooLarge, match=str(limits.record_line_bytes_max)):
        encode_record(record)
    record["payload"]["body"] = "x" * 1000
    assert encode_record(record).startswith(b'{"v":1,"seq":5,"ts":"' + TS.encode())


def test_a_journal_meta_payload_over_64_kib_is_refused_and_nothing_is_written(
    store: Store,
) -> None:
    note = {"kind": "store_marker", "text": "x" * (limits.payload_inline_bytes_max + 1)}
    refused(
        store,
        lambda s: s.append_notes("operator", [("journal_note", note, "big")]),
        PayloadTooLarge,
        None,
    )


def test_a_redaction_with_an_oversized_reason_is_refused_and_nothing_is_written(
    store: Store,
) -> None:
    seq = next(e.seq for e in store.state.live("memory"))
    huge_reason = "x" * limits.record_line_bytes_max
    refused(
        store,
        lambda s: doctor.redact(s, [seq], huge_reason, "operator"),
        StoreError,
        None,
    )


def test_an_imported_record_with_a_path_like_id_is_refused_by_the_codec() -> None:
    record = memory_record(5, WRITER_A, "mem_ok", 1, "t")
    for bad in ("../x", "mem_../x", "mem_a/b", "mem_\x00"):
        record["item_id"] = bad
        with pytest.raises(StoreError, match="item_id"):
            encode_record(record)
    assert record["ts"] == TS
