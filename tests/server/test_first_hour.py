"""The first hour of a new user: every command's bad arguments are one line with a next step
(never a traceback), no command makes a store by accident, health reports say what is
expected and what was verified, progress moves, and the MCP errors are as good as the
store's."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from agentjournal.cli import main
from mcp import Client
from support.mcp import call, call_error

from journal_core import Store, StoreConfig, doctor, federation, verbs


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exited:  # argparse refusing a command line
        code = int(exited.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def made(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A store with some work in it, named by AGENTJOURNAL_STORE; the working directory is an
    empty folder outside any store."""
    store_path = tmp_path / "store"
    with Store(str(store_path)) as store:
        store.mutate("alice", lambda m: verbs.plan_create(m, "Ship it", "", ["one", "two"]))
        store.mutate("bob", lambda m: verbs.claim(m, "file:src/app.py"))
    monkeypatch.setenv("AGENTJOURNAL_STORE", str(store_path))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    return store_path


def bad_command_lines(tmp_path: Path) -> list[list[str]]:
    not_a_slice = tmp_path / "not-a-slice"
    not_a_slice.write_text("hello\n", encoding="utf-8")
    return [
        ["nonsense"], ["init", "--track", "bogus"], ["init", "--client", "vim"],
        ["init", "--print"], ["init", "--actor", "x"],
        ["serve", "--port", "x"], ["serve", "--transport", "pigeon"],
        ["serve", "--transport", "http", "--host", "0.0.0.0", "--port", "0"],
        ["serve", "--log-level", "LOUD"],
        ["status", "--bogus"], ["--store", "postgresql://u@h/db", "status"],
        ["tail", "-n", "-3"], ["tail", "-n", "abc"], ["tail", "--lines"],
        ["doctor", "--redact", "1"], ["doctor", "--reason", "why"], ["doctor", "--redact", "x"],
        ["export", "--out", "/nonexistent-dir/x"], ["export", "--out", str(tmp_path)],
        ["export", "--since", "999999"], ["export", "--since", "-1"], ["export", "--since", "x"],
        ["import", "/nonexistent-dir/slice"], ["import", str(not_a_slice)],
        ["import", "--chunk", "0", str(not_a_slice)], ["import"],
        ["hook", "--as", "bogus"], ["hook", "--chars", "x"],
        ["guard", "--hook", "bogus"], ["ui", "--port", "x"],
    ]


def test_every_command_refuses_bad_arguments_in_one_line_with_a_next_step_and_no_traceback(
    made: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AGENTJOURNAL_TOKEN", raising=False)
    for argv in bad_command_lines(tmp_path):
        code, out, err = run_cli(capsys, *argv)
        said = [line for line in err.splitlines() if line.startswith("agentjournal")]
        assert code in (1, 2), (argv, code, err)
        assert "Traceback" not in err and "internal error" not in err, (argv, err)
        assert said and len(said[-1]) > len("agentjournal x: ") + 10, (argv, err)
        assert not out, (argv, out)


def test_export_to_a_missing_folder_or_a_folder_says_what_to_give(
    made: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    _, _, missing = run_cli(capsys, "export", "--out", "/nonexistent-dir/x")
    _, _, folder = run_cli(capsys, "export", "--out", str(tmp_path))
    _, _, past = run_cli(capsys, "export", "--since", "999999")
    _, _, negative = run_cli(capsys, "tail", "-n", "-3")
    assert "/nonexistent-dir does not exist" in missing
    assert "is a folder; give a file name" in folder
    assert "past the head of the journal (3)" in past and "1000000" not in past
    assert "-3 is negative; give 0 or more" in negative


def test_no_command_creates_a_store_where_it_happens_to_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AGENTJOURNAL_STORE", raising=False)
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)
    slice_file = tmp_path / "slice"
    slice_file.write_text("{}\n", encoding="utf-8")
    for argv in (["serve"], ["status"], ["tail"], ["doctor"], ["export"],
                 ["import", str(slice_file)]):
        code, _, err = run_cli(capsys, *argv)
        assert code == 1, (argv, err)
        assert f"no agentjournal store found from {empty.resolve()} upwards" in err, (argv, err)
        assert "agentjournal init" in err and "--store" in err
        assert list(empty.iterdir()) == [], argv
    assert run_cli(capsys, "hook", "--actor", "a")[:2] == (0, "")  # a hook never gets in the
    assert list(empty.iterdir()) == []  # way of a client: no store, nothing to say


# -- honest health ------------------------------------------------------------------------
def test_status_and_doctor_show_one_counter_set_under_one_spelling(
    made: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    _, status_json, _ = run_cli(capsys, "status", "--json")
    _, doctor_json, _ = run_cli(capsys, "doctor", "--json")
    names = list(json.loads(status_json)["counters"])
    assert names == list(json.loads(doctor_json)["counters"])
    _, status_table, _ = run_cli(capsys, "status")
    _, doctor_table, _ = run_cli(capsys, "doctor")
    for name in names:
        label = name.replace("_", " ")
        assert label in status_table and label in doctor_table, name
        assert name not in status_table and name not in doctor_table, name


def test_verify_journal_says_what_it_verified_and_plain_doctor_does_not_claim_it(
    made: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    with Store(str(made)) as store:
        store.compact("op")
        store.mutate("carol", lambda m: verbs.remember(m, "decision", "use orjson"))
        head = store.head_seq
    _, plain, _ = run_cli(capsys, "doctor")
    code, verified, _ = run_cli(capsys, "doctor", "--verify-journal")
    assert code == 0 and "verified 3 live entities" not in plain
    said = " ".join(verified.split())
    assert f"verified 3 live entities at head seq {head}: rebuilt from ckpt-000000000004.json" \
        " (and checkpoint+journal, journal replay), compared with every projection" in said
    _, as_json, _ = run_cli(capsys, "doctor", "--verify-journal", "--json")
    assert json.loads(as_json)["verified"] == {
        "entities": 3, "head_seq": head, "checkpoint": "ckpt-000000000004.json",
        "against": ["checkpoint+journal", "journal replay"]}


def test_gc_lists_each_superseded_checkpoint_once_and_archives_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    store_path = tmp_path / "store"
    with Store(str(store_path), StoreConfig(segment_bytes_max=4096, fsync="never")) as store:
        for i in range(40):
            store.mutate("alice", lambda m, i=i: verbs.plan_create(m, f"plan {i} " * 8, "",
                                                                   ["one"]))
    before = sorted(p.name for p in (store_path / "events" / "checkpoints").iterdir())
    code, out, _ = run_cli(capsys, "--store", str(store_path), "doctor", "--gc")
    assert code == 0 and len(before) > 3
    archived = [line for line in out.splitlines() if "archived ckpt-" in line]
    assert len(archived) == len(before) - 2 == len(set(archived))
    kept = sorted(p.name for p in (store_path / "events" / "checkpoints").iterdir())
    assert kept == before[-2:]
    assert sorted(p.name for p in (store_path / "events" / "archive" / "checkpoints")
                  .iterdir()) == before[:-2]
    for _ in range(2):  # every later run lists the two kept ones, once each
        _, report, _ = run_cli(capsys, "--store", str(store_path), "doctor", "--json")
        listed = [c["file"] for c in json.loads(report)["checkpoints"]]
        assert sorted(listed) == kept and all(c["verified"] for c in
                                              json.loads(report)["checkpoints"])


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_a_clones_backfill_is_information_and_its_superseded_checkpoint_is_archived(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AGENTJOURNAL_STORE", raising=False)
    origin, clone = tmp_path / "origin", tmp_path / "clone"
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q", str(origin)], check=True, timeout=30)
    monkeypatch.chdir(origin)
    assert run_cli(capsys, "init", "--track", "state")[0] == 0
    with Store(str(origin / ".git" / "agentjournal")) as store:
        store.compact("op")  # a checkpoint the clone's journal will start after
        (_, plan_id), _ = store.mutate("alice", lambda m: verbs.plan_create(m, "Ship", "",
                                                                             ["a", "b"]))
        store.compact("op")  # the plan at rev 1; its projection goes on to rev 4
        for status in ("draft", "active", "draft"):
            store.mutate("alice", lambda m, s=status: verbs.plan_update(m, plan_id, status=s))
    subprocess.run([*git, "add", "-A"], check=True, timeout=30)
    subprocess.run([*git, "commit", "-q", "-m", "store"], check=True, timeout=30)
    subprocess.run([*git, "clone", "-q", str(origin), str(clone)], check=True, timeout=30)
    monkeypatch.chdir(clone)
    assert run_cli(capsys, "init")[0] == 0
    code, out, _ = run_cli(capsys, "doctor")
    said = " ".join(out.split())
    assert code == 0 and "healthy" in said and "WARNING" not in said
    assert "INFO rev gaps: 1, all from backfilled entities" in said and "expected" in said
    first, second = sorted(p.name for p in (clone / ".agentjournal" / "checkpoints").iterdir())
    assert said.count(first) == 1 and f"{first} (seq {int(first[5:17])}): superseded" in said
    code, out, _ = run_cli(capsys, "doctor", "--gc")
    assert code == 0 and f"archived {first} (superseded" in " ".join(out.split())
    _, report, _ = run_cli(capsys, "doctor", "--json")
    assert [c["file"] for c in json.loads(report)["checkpoints"]] == [second]


def test_a_store_moved_from_the_working_tree_to_the_git_dir_is_found_there(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """docs/operations.md, 'Moving a store': what doctor's INFO about a journal in the
    working tree refers to."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    monkeypatch.delenv("AGENTJOURNAL_STORE", raising=False)
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True, timeout=30)
    monkeypatch.chdir(repo)
    assert run_cli(capsys, "--store", ".agentjournal", "init")[0] == 0
    _, out, _ = run_cli(capsys, "doctor")
    assert "docs/operations.md, 'Moving a store'" in " ".join(out.split())
    assert "## Moving a store" in (Path(__file__).resolve().parents[2] / "docs" /
                                   "operations.md").read_text(encoding="utf-8")
    (repo / ".agentjournal").rename(repo / ".git" / "agentjournal")
    _, out, _ = run_cli(capsys, "status", "--json")
    assert json.loads(out)["store"] == str(repo.resolve() / ".git" / "agentjournal")
    code, out, _ = run_cli(capsys, "doctor")
    assert code == 0 and "INFO" not in out


# -- progress -----------------------------------------------------------------------------
def test_progress_moves_through_scan_verify_export_import_gc_and_rebuild(tmp_path: Path) -> None:
    calls: list[tuple[str, int, int]] = []

    def progress(phase: str, done: int, total: int) -> None:
        calls.append((phase, done, total))

    config = StoreConfig(segment_bytes_max=256 * 1024, fsync="never")
    with Store(str(tmp_path / "a"), config) as store:
        for i in range(1600):
            store.mutate("alice", lambda m, i=i: verbs.plan_create(m, f"plan {i}", "", ["x"]))
        doctor.diagnose(store, verify_journal=True, progress=progress)
        sliced = io.BytesIO()
        federation.write_slice(store, sliced, 0, progress)
        doctor.gc(store, "op", progress)
        store.rebuild_projections(progress)
    sliced.seek(0)
    with Store(str(tmp_path / "b"), StoreConfig(fsync="never")) as other:
        federation.import_file(other, sliced, chunk_records=500, progress=progress)
    phases = {phase for phase, _, _ in calls}
    assert {"scan", "verify (checkpoint+journal)", "export", "verify slice", "import",
            "rebuild"} <= phases
    for phase in phases:
        seen = [(done, total) for p, done, total in calls if p == phase]
        between = {done for done, total in seen if 0 < done < total}
        assert between, (phase, seen)  # the bar moved before the end
        assert all(0 <= done <= total for done, total in seen), (phase, seen)
        assert seen[-1][0] == seen[-1][1] or phase == "verify slice", (phase, seen)


# -- MCP errors -----------------------------------------------------------------------------
@pytest.mark.anyio
async def test_a_message_to_an_unknown_actor_is_sent_with_a_hint_of_known_names(
    client: Client,
) -> None:
    await call(client, "send", actor="bob", to="alice", body="hi")
    sent = await call(client, "send", to="bobb", body="the lexer is done")
    assert sent["entity"]["to"] == "bobb"  # sent anyway: the actor may come later
    assert "no actor named 'bobb'" in sent["hint"] and "'bob'" in sent["hint"]
    known = await call(client, "send", to="bob", body="again")
    assert "hint" not in known


@pytest.mark.anyio
async def test_a_malformed_pagination_cursor_is_refused(client: Client) -> None:
    for title in ("one", "two", "three"):
        await call(client, "plan", title=title)
    page = await call(client, "list", item_type="plan", limit=1)
    assert page["next"]
    for bad in (f"{page['next']}|nope", "nope", "2026-01-01|"):
        refused = await call_error(client, "list", item_type="plan", after=bad)
        assert "is not the `next` of a plan list" in refused and "nothing was written" in refused


@pytest.mark.anyio
async def test_work_and_journal_status_name_the_store_they_answer_from(
    client: Client, store_path: Path,
) -> None:
    assert (await call(client, "work"))["store"] == str(store_path)
    assert (await call(client, "journal_status"))["store"] == str(store_path)
