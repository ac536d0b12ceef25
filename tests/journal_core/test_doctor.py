"""Checkpoints, blobs, doctor, gc and redaction: the journal heals and
proves itself."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from journal_core import Store, StoreConfig, doctor, verbs
from journal_core.commit import ContentMissing

SMALL_SEGMENTS = StoreConfig(segment_bytes_max=6_000)
Opener = Callable[..., Store]


@pytest.fixture
def open_store(tmp_path: Path) -> Iterator[Opener]:
    opened: list[Store] = []

    def opener(config: StoreConfig | None = None) -> Store:
        store = Store(str(tmp_path / "store"), config)
        opened.append(store)
        return store

    yield opener
    for store in opened:
        store.close()


def fill(store: Store, count: int, prefix: str = "note") -> list[str]:
    ids = []
    for index in range(count):
        (_, item_id), _ = store.mutate(
            "writer", lambda m, i=index: verbs.remember(m, "note", f"{prefix} {i}", "x" * 200))
        ids.append(item_id)
    return ids


def state_image(root: str) -> dict[str, bytes]:
    state = Path(root) / "state"
    return {str(p.relative_to(state)): p.read_bytes() for p in sorted(state.rglob("*.json"))}


def codes(report: doctor.Report) -> list[str]:
    return [finding.code for finding in report.findings]


def test_segment_rolls_write_checkpoints_that_doctor_verifies(open_store: Opener) -> None:
    store = open_store(SMALL_SEGMENTS)
    fill(store, 60)

    report = doctor.diagnose(store, verify_journal=True)

    assert len(store.journal.segments()) > 2
    assert len(report.checkpoints) == len(store.journal.segments()) - 1
    assert all(c["verified"] for c in report.checkpoints)
    assert report.exit_code == 0, report.findings


def test_a_corrupt_newest_checkpoint_falls_back_to_the_previous_one_and_doctor_says_so(
    open_store: Opener,
) -> None:
    store = open_store(SMALL_SEGMENTS)
    ids = fill(store, 60)
    store.close()
    newest = store.checkpoints.heads()[-1]
    path = Path(store.checkpoints_dir) / f"ckpt-{newest:012d}.json"
    path.write_bytes(path.read_bytes().replace(b'"note 1', b'"nope 1', 1))  # still valid

    reopened = open_store(SMALL_SEGMENTS)

    assert reopened.checkpoint_fallbacks and "sha256" in reopened.checkpoint_fallbacks[0]
    assert {e.item_id for e in reopened.state.live("memory")} == set(ids)
    report = doctor.diagnose(reopened)
    assert "checkpoint_failed" in codes(report)
    assert report.exit_code == 1


def test_a_deleted_blob_is_served_from_its_matching_projection_and_repair_writes_it_back(
    open_store: Opener,
) -> None:
    store = open_store()
    (_, handoff_id), _ = store.mutate(
        "writer", lambda m: verbs.send_handoff(m, "reviewer", "big diff", "+line\n" * 30_000))
    blob = next(p for p in (Path(store.root) / "events" / "blobs").rglob("*") if p.is_file())
    content = blob.read_bytes()
    blob.unlink()
    store.close()

    reopened = open_store()

    assert reopened.entity_view("handoff", handoff_id)["entity"]["context"].startswith("+line")
    assert not blob.exists()  # an open writes nothing
    actions = doctor.repair(reopened, "ops")
    assert any("wrote blob" in a for a in actions) and blob.read_bytes() == content


def test_a_deleted_blob_without_its_projection_is_content_missing_and_a_doctor_error(
    open_store: Opener,
) -> None:
    store = open_store()
    (_, handoff_id), _ = store.mutate(
        "writer", lambda m: verbs.send_handoff(m, "reviewer", "big diff", "+line\n" * 30_000))
    blob = next(p for p in (Path(store.root) / "events" / "blobs").rglob("*") if p.is_file())
    blob.unlink()
    (Path(store.root) / "state" / "handoff" / f"{handoff_id}.json").unlink()
    store.close()

    reopened = open_store()

    view = reopened.entity_view("handoff", handoff_id)
    assert view["entity"]["content_missing"] is True
    with pytest.raises(ContentMissing, match="content is missing"):
        reopened.mutate("reviewer", lambda m: verbs.respond_handoff(m, handoff_id, True))
    report = doctor.diagnose(reopened)
    assert any(f.level == "ERROR" and f.code == "blob" for f in report.findings)
    assert any(f.code == "content_missing" for f in report.findings)
    assert report.exit_code == 1


def test_a_flipped_byte_mid_segment_is_skipped_counted_and_named_by_verify(
    open_store: Opener,
) -> None:
    store = open_store()
    ids = fill(store, 10)
    segment = Path(store.journal.path(store.journal.segments()[-1]))
    data = bytearray(segment.read_bytes())
    victim = data.index(ids[4].encode())  # inside the record that created the 5th note
    data[victim - 3] ^= 0x20  # break the JSON around the id
    segment.write_bytes(bytes(data))
    store.close()

    reopened = open_store()
    report = doctor.diagnose(reopened, verify_journal=True)

    assert report.counters["lines_skipped"] == 1
    assert "corrupt_line" in codes(report)
    assert [row["item_id"] for row in report.divergent] == [ids[4]]
    assert report.exit_code == 1


def test_deleting_state_rebuilds_identical_projections_on_the_next_write(
    open_store: Opener,
) -> None:
    store = open_store(SMALL_SEGMENTS)
    fill(store, 40)
    store.mutate("writer", lambda m: verbs.plan_create(m, "ship", "goal", ["a", "b"]))
    before = state_image(store.root)
    store.close()
    shutil.rmtree(Path(store.root) / "state")

    reopened = open_store(SMALL_SEGMENTS)
    assert state_image(store.root) == {}  # an open writes nothing
    (_, later), _ = reopened.mutate("writer", lambda m: verbs.remember(m, "note", "n", "x"))

    after = state_image(store.root)
    assert {k: v for k, v in after.items() if later not in k} == before


def test_a_clone_with_only_projections_and_checkpoints_restarts_its_journal(
    open_store: Opener,
) -> None:
    store = open_store(SMALL_SEGMENTS)
    ids = fill(store, 40)
    before = state_image(store.root)
    store.close()
    for name in os.listdir(store.events_dir):
        if name.startswith("seg-") or name == "meta.json":
            os.unlink(os.path.join(store.events_dir, name))

    reopened = open_store(SMALL_SEGMENTS)

    assert {e.item_id for e in reopened.state.live("memory")} == set(ids)
    assert state_image(store.root) == before
    assert doctor.diagnose(reopened, verify_journal=True).exit_code == 0


def test_gc_keeps_two_verified_checkpoints_and_what_they_need(open_store: Opener) -> None:
    store = open_store(SMALL_SEGMENTS)
    fill(store, 80)
    store.mutate("writer", lambda m: verbs.send_handoff(m, "b", "big", "z" * 100_000))
    fill(store, 40, prefix="later")
    heads = store.checkpoints.heads()
    second_newest = heads[-2]

    actions = doctor.gc(store, "ops")

    kept = store.journal.segments()
    archived = sorted(os.listdir(Path(store.events_dir) / "archive"))
    assert archived and any("archived seg-" in a for a in actions)
    # every seq after the second-newest verified checkpoint is still in a kept segment
    assert kept[0] <= second_newest + 1
    assert all(int(name[4:16]) < kept[0] for name in archived if name.startswith("seg-"))
    # the blob the checkpoints need stays; reopening (from the checkpoints) loses nothing
    store.close()
    reopened = open_store(SMALL_SEGMENTS)
    assert len(reopened.state.live("memory")) == 120
    assert len(reopened.state.live("handoff")) == 1
    assert doctor.diagnose(reopened, verify_journal=True).exit_code == 0


def test_gc_archives_nothing_with_fewer_than_two_verified_checkpoints(
    open_store: Opener,
) -> None:
    store = open_store()
    fill(store, 5)
    store.compact()

    actions = doctor.gc(store, "ops")

    assert "fewer than two verified checkpoints" in actions[0]
    assert not (Path(store.events_dir) / "archive").exists()


def test_redaction_removes_the_secret_from_every_file_while_read_unseen_still_works(
    open_store: Opener,
) -> None:
    store = open_store(SMALL_SEGMENTS)
    fill(store, 20)
    secret = "sk-live-4242-SECRET"
    (_, memory_id), first = store.mutate(
        "leaky", lambda m: verbs.remember(m, "fact", "credentials", f"token is {secret}"))
    (_, handoff_id), second = store.mutate(
        "leaky", lambda m: verbs.send_handoff(m, "b", "env", f"{secret}\n" + "y" * 90_000))
    fill(store, 5, prefix="after")
    store.compact()
    before = store.read_unseen("reader", limit=1000)

    doctor.redact(store, [first.first_seq, second.first_seq], "leaked token", "security")

    leaks = [str(p) for p in Path(store.root).rglob("*")
             if p.is_file() and secret.encode() in p.read_bytes()]
    assert leaks == []
    after = store.read_unseen("reader", limit=1000, payloads=True)
    assert [e["seq"] for e in after["events"]] == [e["seq"] for e in before["events"]]
    redacted = {e["seq"]: e["payload"] if "payload" in e else
                store.blobs.get_payload(e["payload_ref"])  # a redacted payload of its own
                for e in after["events"] if e["seq"] in (first.first_seq, second.first_seq)}
    assert all(p["redacted"]["by"] == "security" for p in redacted.values())
    assert redacted[first.first_seq]["title"] == "[redacted]"  # the secret fields go ...
    assert redacted[first.first_seq]["kind"] == "fact"  # ... the coordination fields stay
    assert store.entity_view("memory", memory_id)["entity"]["redacted"]["by"] == "security"
    assert store.entity_view("handoff", handoff_id)["entity"]["to"] == "b"
    store.close()
    reopened = open_store(SMALL_SEGMENTS)
    assert doctor.diagnose(reopened, verify_journal=True).exit_code == 0


def test_redacting_a_seq_that_is_not_an_entity_record_is_refused(open_store: Opener) -> None:
    store = open_store()
    fill(store, 2)
    before = {p: p.read_bytes() for p in Path(store.root).rglob("*") if p.is_file()}

    with pytest.raises(doctor_errors()):
        doctor.redact(store, [1], "genesis is not an entity", "ops")
    with pytest.raises(doctor_errors()):
        doctor.redact(store, [999], "no such seq", "ops")

    after = {p: p.read_bytes() for p in Path(store.root).rglob("*") if p.is_file()}
    assert {p: b for p, b in after.items() if p.name != "lock"} == {
        p: b for p, b in before.items() if p.name != "lock"}


def doctor_errors() -> type[Exception]:
    from journal_core import InvalidArgument

    return InvalidArgument


def test_repair_parks_corrupt_bytes_and_rebuilds_projections(open_store: Opener) -> None:
    store = open_store()
    ids = fill(store, 6)
    segment = Path(store.journal.path(store.journal.segments()[-1]))
    data = bytearray(segment.read_bytes())
    start = data.index(ids[2].encode())
    data[start - 3] ^= 0x20
    segment.write_bytes(bytes(data))
    (Path(store.root) / "state" / "memory" / f"{ids[0]}.json").write_bytes(b"{not json")
    store.close()
    reopened = open_store()
    assert doctor.diagnose(reopened, verify_journal=True).exit_code == 1

    actions = doctor.repair(reopened, "ops")

    quarantine = Path(store.events_dir) / "quarantine"
    assert any(name.endswith(".bin") for name in os.listdir(quarantine))
    assert any("parked" in a for a in actions)
    report = doctor.diagnose(reopened, verify_journal=True)
    assert report.exit_code == 0, report.findings
    assert report.counters["lines_skipped"] == 0


def test_a_reader_whose_cursor_predates_the_archive_gets_a_gap_with_a_summary(
    open_store: Opener,
) -> None:
    store = open_store(SMALL_SEGMENTS)
    fill(store, 80)
    doctor.gc(store, "ops")

    page = store.read_unseen("late-agent", limit=5)

    assert page["gap"] is True
    summary = page["gap_summary"]
    newest = store.checkpoints.heads()[-1]
    assert summary["oldest_kept_seq"] == store.journal.segments()[0]
    assert summary["checkpoint_head_seq"] == newest
    assert 0 < summary["live"]["memory"]["active"] <= 80
    assert len(page["events"]) == 5


def test_network_file_systems_are_recognised_from_the_mount_table(tmp_path: Path) -> None:
    mounts = tmp_path / "mounts"
    mounts.write_text(
        "/dev/vda / ext4 rw 0 0\nserver:/export /mnt/shared nfs4 rw 0 0\n", encoding="utf-8")

    assert doctor.network_filesystem("/mnt/shared/repo/.agentjournal", str(mounts)) == "nfs4"
    assert doctor.network_filesystem("/home/me/repo", str(mounts)) is None
