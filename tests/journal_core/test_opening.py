"""Opening a store written by an older version: the on-disk format stays readable.

``tests/fixtures/store-54c294e`` was written by commit 54c294e (the engine before the
journal interface of records and seqs): three segments, two checkpoints, a blob, every
family, a cursor; ``store-54c294e.image.json`` is what that commit replayed from it. Today's
code opens it without writing, replays the same entities, verifies it clean, and writes to
it in today's format; the result opens again and still verifies clean.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from support.engine import Clock, entity_image, store_image

from journal_core import ClaimConflict, Store, doctor, verbs

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
OLD = FIXTURES / "store-54c294e"
WRITTEN_AT = datetime(2026, 11, 1, 9, 1, tzinfo=UTC)  # a minute after its last write


@pytest.fixture
def old_store(tmp_path: Path) -> Path:
    copy = tmp_path / "old"
    shutil.copytree(OLD, copy)
    return copy


def old_image() -> dict[str, Any]:
    return json.loads((FIXTURES / "store-54c294e.image.json").read_text())


def as_old_image(store: Store) -> dict[str, Any]:
    return {f"{family}/{item_id}": {"rev": rev, "deleted": payload is None, "payload": payload}
            for (family, item_id), (rev, payload) in sorted(entity_image(store).items())}


def test_a_store_of_the_old_format_opens_writing_nothing_and_replays_the_same(
    old_store: Path,
) -> None:
    before = store_image(old_store)
    expected = old_image()

    with Store(str(old_store), now=Clock(WRITTEN_AT)) as store:
        assert store.head_seq == expected["head_seq"]
        assert as_old_image(store) == expected["image"]
        assert store.cursor("bob") == expected["cursor_bob"]
        unseen = [event["seq"] for event in store.read_unseen("bob")["events"]]
        assert unseen and unseen == sorted(unseen) and unseen[0] > expected["cursor_bob"]

    assert store_image(old_store) == before


def test_a_store_of_the_old_format_verifies_clean(old_store: Path) -> None:
    with Store(str(old_store), now=Clock(WRITTEN_AT)) as store:
        report = doctor.diagnose(store, verify_journal=True)
        assert report.problems == [], report.problems
        assert len(report.checkpoints) == 2
        assert all(ckpt["verified"] for ckpt in report.checkpoints), report.checkpoints


def test_a_store_of_the_old_format_takes_new_writes_and_opens_again(old_store: Path) -> None:
    expected = old_image()
    held = next(e["payload"] for key, e in expected["image"].items()
                if key.startswith("claim/") and e["payload"]["status"] == "active")

    with Store(str(old_store), now=Clock(WRITTEN_AT)) as store:
        with pytest.raises(ClaimConflict, match="carol"):  # the old claim still excludes
            store.mutate("dave", lambda m: verbs.claim(m, held["target"], ttl_s=60))
        (_, memory_id), committed = store.mutate(
            "dave", lambda m: verbs.remember(m, "note", "after the upgrade", "new format"))
        assert committed.first_seq == expected["head_seq"] + 1
        (_, next_claim), _ = store.mutate("dave", lambda m: verbs.claim(m, "next"))
        after = entity_image(store)

    with Store(str(old_store), now=Clock(WRITTEN_AT)) as store:
        assert entity_image(store) == after
        assert store.state.entity("memory", memory_id) is not None
        claim = store.state.entity("claim", next_claim)
        assert claim is not None and claim.payload is not None
        assert claim.payload["target"].startswith("step:")  # the plan's next open step
        report = doctor.diagnose(store, verify_journal=True)
        assert report.problems == [], report.problems
