"""Replay converges, as a hypothesis property.

A real journal of confirmed mutations is damaged the ways crashes and rogue writers damage
journals: identical lines and whole txns appended again (right away or much later), older
revs re-appended by a writer with a stale view, torn fragments sealed by a later writer,
txns of a crashed writer that never completed (in the middle, or trailing), a torn final
line (even a whole record that lacks only its newline). Replaying the damaged journal must
give exactly the state a clean replay of the confirmed mutations gives. Through a whole
Store, the next writer then changes nothing but its own entity, and a reopen agrees.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.engine import Clock, entity_image, journal_records

from journal_core import Store, verbs
from journal_core.fileio import FileIO
from journal_core.local_journal import LocalJournal
from journal_core.replay import State

REDUCER_EXAMPLES = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
STORE_EXAMPLES = settings(REDUCER_EXAMPLES, max_examples=20)
SEGMENT = "seg-000000000001.jsonl"
GHOST_WRITER = "w_999-0123456789ab"  # a writer that crashed in the middle of its txns
ROGUE_WRITER = "w_998-0123456789ab"  # a second writer with a stale view (a broken lock)
Record = dict[str, Any]
Group = list[bytes]
Image = dict[tuple[str, str], tuple[int, Any]]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store whose journal holds single- and multi-record txns of every kind of change."""
    root = tmp_path_factory.mktemp("replay") / "store"
    clock = Clock()
    with Store(str(root), now=clock) as store:
        (_, plan), _ = store.mutate("ann", lambda m: verbs.plan_create(m, "p", "g", ["a", "b"]))
        (_, claim), _ = store.mutate("bob", lambda m: verbs.claim(m, f"step:{plan}/s1", 60))
        store.mutate("bob", lambda m: verbs.complete(m, claim, "done"))
        (_, old), _ = store.mutate("ann", lambda m: verbs.remember(m, "trap", "t", "b"))
        (_, new), _ = store.mutate(
            "ann", lambda m: verbs.remember(m, "trap", "t2", "b2", supersedes=old)
        )
        store.mutate("cy", lambda m: verbs.plan_update(m, plan, title="renamed"))
        store.mutate("cy", lambda m: verbs.claim(m, "file:x.py", 60))
        clock.advance(120)
        store.mutate("dee", lambda m: verbs.claim(m, "file:x.py", 60))  # takes it over
        store.mutate("dee", lambda m: verbs.send_message(m, "*", "hello"))
        store.mutate("ann", lambda m: verbs.forget(m, new, "stale"))
    return root


@pytest.fixture(scope="module")
def groups(template: Path) -> list[Group]:
    """The template's txns, as lists of lines, in file order."""
    out: list[Group] = []
    for record in journal_records(template):
        line = orjson.dumps(record)
        if out and orjson.loads(out[-1][-1])["txn"] == record["txn"]:
            out[-1].append(line)
        else:
            out.append([line])
    assert any(len(group) > 1 for group in out) and len(out) > 8
    return out


# -- damaging a journal -----------------------------------------------------------------------
def ghost_txn(draw: st.DrawFn, groups: list[Group], seq: int, count: int = 2) -> bytes:
    """A record never acknowledged: one record of a two-record txn that never completed
    (or, with ``count=1``, a whole txn whose line was torn off before its newline). It
    holds a newer rev of an entity, so it would win if replay ever applied it."""
    titled = [  # plans and memory items: a changed title is still a valid payload
        record
        for record in (orjson.loads(line) for group in groups for line in group)
        if record["item_type"] in ("plan", "memory") and "payload" in record
    ]
    record: Record = dict(draw(st.sampled_from(titled)))
    record.update(seq=seq, writer=GHOST_WRITER, txn=[seq, count])
    record["entity_rev"] += 5
    record["payload"] = {**record["payload"], "title": "GHOST"}
    return orjson.dumps(record)


@st.composite
def damaged(draw: st.DrawFn, groups: list[Group]) -> bytes:
    """The journal with damage between (and after) its confirmed txns."""
    lines: list[bytes] = []
    for index, group in enumerate(groups):
        earlier = groups[:index]
        for kind in draw(st.lists(st.sampled_from(JUNK if earlier else ["ghost"]), max_size=2)):
            lines += junk(draw, kind, earlier or groups[:1], groups)
        lines += group
        if draw(st.integers(0, 4)) == 0:
            lines += group  # the whole txn appended again at once
    data = b"".join(b"\n" + line + b"\n" for line in lines)
    head = orjson.loads(groups[-1][-1])["seq"]
    ending = draw(st.sampled_from(["clean", "trailing ghost", "torn line", "no newline"]))
    if ending == "trailing ghost":
        data += b"\n" + ghost_txn(draw, groups, head + 1) + b"\n"
    elif ending == "torn line":
        line = ghost_txn(draw, groups, head + 1, count=1)
        data += b"\n" + line[: draw(st.integers(1, len(line) - 1))]
    elif ending == "no newline":  # a whole record, but never acknowledged
        data += b"\n" + ghost_txn(draw, groups, head + 1, count=1)
    return data


JUNK = ["old line", "old txn", "stale copy", "sealed fragment", "ghost"]


def junk(draw: st.DrawFn, kind: str, earlier: list[Group], groups: list[Group]) -> list[bytes]:
    if kind == "old txn":
        return list(draw(st.sampled_from(earlier)))
    line = draw(st.sampled_from([line for group in earlier for line in group]))
    if kind == "old line":
        return [line]
    if kind == "stale copy":  # another writer re-appends an older rev
        record = orjson.loads(line)
        if "entity_rev" not in record:
            return []
        return [orjson.dumps({**record, "writer": ROGUE_WRITER})]
    if kind == "sealed fragment":  # a torn line that a later writer sealed with '#'
        return [line[: draw(st.integers(0, len(line) - 1))] + b"#"]
    return [ghost_txn(draw, groups, orjson.loads(line)["seq"])]


# -- replaying -----------------------------------------------------------------------------------
def replay(data: bytes) -> State:
    with tempfile.TemporaryDirectory(prefix="engine-replay-") as scratch:
        events = Path(scratch) / "events"
        events.mkdir()
        (events / SEGMENT).write_bytes(data)
        journal = LocalJournal(str(events), str(Path(scratch) / "lock"), FileIO())
        try:
            follower = journal.follower(0)
            state = State(counters=follower.counters)
            for group in follower.poll():
                state.apply_group(group)
            return state
        finally:
            journal.close()


def image(state: State) -> Image:
    return {
        (family, item_id): (entity.rev, entity.payload)
        for family, entities in state.families.items()
        for item_id, entity in entities.items()
    }


def clean_bytes(groups: list[Group]) -> bytes:
    return b"".join(b"\n" + line + b"\n" for group in groups for line in group)


@REDUCER_EXAMPLES
@given(data=st.data())
def test_a_damaged_journal_replays_to_the_state_of_its_confirmed_mutations(
    groups: list[Group], data: st.DataObject
) -> None:
    clean = replay(clean_bytes(groups))
    damaged_state = replay(data.draw(damaged(groups)))

    assert image(damaged_state) == image(clean)
    assert damaged_state.claims.exact == clean.claims.exact
    assert damaged_state.head_seq == clean.head_seq


# -- through a whole Store ----------------------------------------------------------------------
@STORE_EXAMPLES
@given(data=st.data())
def test_a_store_on_a_damaged_journal_converges_and_its_next_writer_adds_only_its_own(
    template: Path, groups: list[Group], tmp_path: Path, data: st.DataObject
) -> None:
    with Store(str(template), create=False) as clean_store:
        clean = entity_image(clean_store)
    root = tmp_path / "store"  # one folder for every example: start it afresh
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(template, root)
    (root / "events" / SEGMENT).write_bytes(data.draw(damaged(groups)))

    with Store(str(root), create=False) as store:
        assert entity_image(store) == clean
        (_, mine), _ = store.mutate("next", lambda m: verbs.remember(m, "note", "mine", "x"))
    with Store(str(root), create=False) as reopened:
        after = entity_image(reopened)
        assert after.pop(("memory", mine))[0] == 1
        assert after == clean
