"""A whole store on PostgreSQL: the URL, init and the schema version, the same semantics as
the local store across handles, cold opens from a checkpoint in the database, the faults a
database brings, bounded connections, and the operations commands (status, tail, doctor,
export, import) -- a team moved from a local store to PostgreSQL and back."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from agentjournal.cli import main
from support.engine import entity_image
from support.postgres import admin, database_url, require_postgres

from journal_core import (
    ClaimConflict,
    NotApplied,
    OutcomeUnknown,
    Store,
    StoreError,
    StoreNotFound,
    limits,
    pg_schema,
    verbs,
)
from journal_core.store_url import parse_store_url


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def schema_of(url: str) -> str:
    return parse_store_url(url).store


# -- the URL ---------------------------------------------------------------------------------
def test_a_url_of_a_scheme_not_served_is_refused_and_no_folder_is_made(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, "--store", "mysql://127.0.0.1:3306/x", "init")
    assert code == 2 and "does not serve (mysql://" in err
    assert list(tmp_path.iterdir()) == []  # never taken for a folder name
    with pytest.raises(StoreError, match="does not serve"):
        Store("sqlite://x/y")


def test_a_store_name_picks_the_schema_and_the_password_is_never_shown() -> None:
    url = parse_store_url("postgresql://ann:secret@db.example:5432/team?store=web&sslmode=require")
    assert url.store == "web" and "sslmode=require" in url.dsn and "store=" not in url.dsn
    assert "secret" not in url.where and url.where.endswith("store=web")
    assert parse_store_url("postgres://db/team").store == "agentjournal"
    with pytest.raises(StoreError, match="store name"):
        parse_store_url("postgresql://db/team?store=Bad-Name")


def test_without_the_driver_the_error_names_the_postgres_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(StoreError, match=r"agentjournal\[postgres\]"):
        Store("postgresql://127.0.0.1:5432/test?store=never_made")


# -- init and the schema ---------------------------------------------------------------------
def test_init_creates_the_schema_once_with_its_version_and_can_run_again(
    pg_url: str, capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = run_cli(capsys, "--store", pg_url, "init")
    assert code == 0 and "initialized" in err
    first = admin(f'SELECT value FROM "{schema_of(pg_url)}".meta ORDER BY key')
    code, _, err = run_cli(capsys, "--store", pg_url, "init")
    assert code == 0 and "already initialized" in err
    assert admin(f'SELECT value FROM "{schema_of(pg_url)}".meta ORDER BY key') == first
    assert first[0][0] == pg_schema.SCHEMA_VERSION


def test_an_older_schema_asks_for_init_which_migrates_it_and_a_newer_one_is_refused(
    pg_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    Store(pg_url).close()
    monkeypatch.setattr(pg_schema, "SCHEMA_VERSION", 2)
    monkeypatch.setitem(pg_schema.MIGRATIONS, 2, ["CREATE TABLE {s}.notes (id int)"])
    with pytest.raises(StoreError, match="run `agentjournal init"):
        Store(pg_url, create=False)
    code, _, _ = run_cli(capsys, "--store", pg_url, "init")
    assert code == 0
    assert admin("SELECT to_regclass(%s) IS NOT NULL", [f'"{schema_of(pg_url)}".notes']) == [
        (True,)]
    Store(pg_url, create=False).close()
    admin(f"UPDATE \"{schema_of(pg_url)}\".meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(StoreError, match="upgrade agentjournal"):
        Store(pg_url, create=False)


def test_a_command_on_a_database_without_the_store_says_to_run_init(
    pg_url: str, capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = run_cli(capsys, "--store", pg_url, "status")
    assert code == 1 and "agentjournal init" in err
    with pytest.raises(StoreNotFound):
        Store(pg_url, create=False)


# -- the same semantics, across handles --------------------------------------------------------
def test_two_handles_on_one_database_share_claims_events_and_cursors(pg_url: str) -> None:
    with Store(pg_url) as one, Store(pg_url, create=False) as two:
        key, _ = one.mutate("ann", lambda m: verbs.claim(m, "file:src/app.py"))
        with pytest.raises(ClaimConflict, match="ann"):
            two.mutate("bob", lambda m: verbs.claim(m, "file:src/app.py"))
        assert two.backend.journal.head_seq() == one.head_seq  # the refusal wrote nothing
        two.mutate("bob", lambda m: verbs.remember(m, "trap", "flaky", "retry the suite"))
        unseen = one.read_unseen("ann")
        assert [(e["actor"], e["item_type"]) for e in unseen["events"]] == [("bob", "memory")]
        one.ack("ann", unseen["last_seq"])
        assert two.cursor("ann") == unseen["last_seq"]
        assert two.entity_view(*key)["entity"]["holder"] == "ann"


def test_a_retry_with_the_same_request_id_is_recognized_by_another_server(pg_url: str) -> None:
    with Store(pg_url) as one, Store(pg_url, create=False) as two:
        def verb(m: Any) -> Any:
            return verbs.remember(m, "fact", "once", "only once")

        _, first = one.mutate("ann", verb, request_id="r-1", fingerprint_of=("once",))
        _, again = two.mutate("ann", verb, request_id="r-1", fingerprint_of=("once",))
        assert again.replayed and again.first_seq == first.first_seq
        assert len(two.entities("memory")[0]) == 1


def test_a_cold_open_starts_from_the_newest_checkpoint_in_the_database(
    pg_url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(limits, "pg_checkpoint_every_records", 40)
    with Store(pg_url) as store:
        for n in range(130):
            store.mutate("ann", lambda m, n=n: verbs.remember(m, "note", f"n{n}", "body"))
        image = entity_image(store)
        heads = store.checkpoints.heads()
    assert len(heads) >= 3
    with Store(pg_url, create=False) as reopened:
        assert reopened.state.floor_seq == heads[-1]  # replayed only the records after it
        assert entity_image(reopened) == image
        assert reopened.rebuild_state().head_seq == reopened.head_seq


def test_a_blob_commits_with_the_record_that_references_it(pg_url: str) -> None:
    context = "x" * (limits.payload_inline_bytes_max + 10)
    with Store(pg_url) as store:
        key, _ = store.mutate("ann", lambda m: verbs.send_handoff(m, "bob", "big", context))
        assert len(store.blobs.all_hashes()) == 1
    with Store(pg_url, create=False) as reopened:
        assert reopened.state.entity(*key).payload["context"] == context


# -- faults -----------------------------------------------------------------------------------
def test_a_database_that_is_down_fails_a_mutation_fast_and_the_store_recovers(
    pg_url: str,
) -> None:
    with Store(pg_url) as store:
        pool = store.backend.journal.pool
        good = pool.dsn
        pool.dsn = "postgresql://postgres@127.0.0.1:1/test"  # the database is gone
        pool.discard_idle()
        with pytest.raises(NotApplied, match=r"unreachable.*nothing was written"):
            store.mutate("ann", lambda m: verbs.remember(m, "note", "lost", "never"))
        pool.dsn = good  # it is back
        store.mutate("ann", lambda m: verbs.remember(m, "note", "kept", "after"))
        assert [e["entity"]["title"] for e in store.entities("memory")[0]] == ["kept"]


def test_a_connection_ended_by_the_server_is_replaced_without_a_failed_call(
    pg_url: str,
) -> None:
    with Store(pg_url) as store:
        store.mutate("ann", lambda m: verbs.remember(m, "note", "one", "1"))
        pids = admin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                     "application_name = %s", [f"agentjournal:{schema_of(pg_url)}"])
        assert pids  # the pool's idle connections were ended
        store.mutate("ann", lambda m: verbs.remember(m, "note", "two", "2"))
        assert store.refresh() is False and len(store.entities("memory")[0]) == 2


def test_a_connection_lost_during_commit_says_the_outcome_is_unknown(
    pg_url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from journal_core.pg_journal import PgJournal

    real = PgJournal.commit

    def cut_then_commit(self: PgJournal, hold: Any, what: str) -> None:
        pid = hold.conn.info.backend_pid
        admin("SELECT pg_terminate_backend(%s)", [pid])  # the server dies before COMMIT
        real(self, hold, what)

    with Store(pg_url) as store:
        monkeypatch.setattr(PgJournal, "commit", cut_then_commit)
        with pytest.raises(OutcomeUnknown, match="may have been applied"):
            store.mutate("ann", lambda m: verbs.remember(m, "note", "maybe", "?"),
                         request_id="r-7", fingerprint_of=("maybe",))
        monkeypatch.setattr(PgJournal, "commit", real)
        _, retried = store.mutate("ann", lambda m: verbs.remember(m, "note", "maybe", "?"),
                                  request_id="r-7", fingerprint_of=("maybe",))
        assert len(store.entities("memory")[0]) == 1 and not retried.replayed


def test_one_store_holds_no_more_connections_than_its_limit(pg_url: str) -> None:
    from journal_core.watch import watcher_for

    with Store(pg_url) as store:
        watcher_for(store.backend)  # the listener's connection too
        errors: list[BaseException] = []

        def work(n: int) -> None:
            try:
                for i in range(15):
                    store.mutate(f"a{n}", lambda m, i=i: verbs.remember(m, "note", f"{i}", "b"))
                    store.read_unseen(f"a{n}")
                    store.ack(f"a{n}", store.head_seq)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not errors, errors
        assert store.backend.journal.pool.made <= limits.pg_connections_max - 1
        rows = admin("SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE %s",
                     [f"agentjournal%:{schema_of(pg_url)}"])
        assert 1 <= rows[0][0] <= limits.pg_connections_max


# -- operations -------------------------------------------------------------------------------
def test_status_tail_and_doctor_verify_journal_work_on_a_postgresql_store(
    pg_url: str, capsys: pytest.CaptureFixture[str],
) -> None:
    with Store(pg_url) as store:
        store.mutate("ann", lambda m: verbs.remember(m, "decision", "pg", "shared journal"))
    code, out, _ = run_cli(capsys, "--store", pg_url, "status", "--json")
    assert code == 0 and '"backend": "postgresql"' in out
    code, out, _ = run_cli(capsys, "--store", pg_url, "status")
    assert code == 0 and "postgresql:" in out and "segments" not in out  # no files there
    code, out, _ = run_cli(capsys, "--store", pg_url, "tail", "-n", "5")
    assert code == 0 and "ann" in out
    code, out, _ = run_cli(capsys, "--store", pg_url, "doctor", "--verify-journal")
    assert code == 0 and "healthy" in out


def test_a_team_moves_from_a_local_store_to_postgresql_and_back_with_export_import(
    pg_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    local, back = str(tmp_path / "local"), str(tmp_path / "back")
    with Store(local) as store:
        key, _ = store.mutate("ann", lambda m: verbs.claim(m, "file:src/a.py", ttl_s=3600))
        store.mutate("ann", lambda m: verbs.remember(m, "trap", "flaky", "retry"))
        plan, _ = store.mutate("bob", lambda m: verbs.plan_create(
            m, "ship", steps=["build", "test"]))
        store.mutate("bob", lambda m: verbs.send_handoff(m, "ann", "big", "y" * 70_000))
        original = entity_image(store)
    slice_1, slice_2 = str(tmp_path / "to-pg.jsonl"), str(tmp_path / "to-local.jsonl")
    assert run_cli(capsys, "--store", local, "export", "--out", slice_1)[0] == 0
    assert run_cli(capsys, "--store", pg_url, "import", "--init", slice_1)[0] == 0
    with Store(pg_url, create=False) as on_pg:
        assert _entities(entity_image(on_pg)) == _entities(original)
    assert run_cli(capsys, "--store", pg_url, "export", "--out", slice_2)[0] == 0
    assert run_cli(capsys, "--store", back, "init")[0] == 0
    assert run_cli(capsys, "--store", back, "import", slice_2)[0] == 0
    with Store(back, create=False) as returned:
        assert _entities(entity_image(returned)) == _entities(original)
        assert returned.entity_view(*key)["entity"]["holder"] == "ann"
        assert returned.entity_view(*plan)["entity"]["title"] == "ship"
    code, out, _ = run_cli(capsys, "--store", pg_url, "doctor", "--verify-journal")
    assert code == 0 and "healthy" in out


def _entities(image: dict[tuple[str, str], tuple[int, Any]]) -> dict[tuple[str, str], Any]:
    """Every entity with its rev and payload (ephemeral claim fields kept: they travel)."""
    return dict(image)


def test_the_database_url_of_the_tests_is_reachable() -> None:
    require_postgres()
    assert admin("SELECT 1") == [(1,)], database_url()


# -- the git-diffable face ----------------------------------------------------------------------
def test_project_writes_the_projection_files_and_keeps_them_up_to_date_with_follow(
    pg_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    import subprocess

    from support.mcp import child_env

    folder = tmp_path / "face"
    with Store(pg_url) as store:
        first, _ = store.mutate("ann", lambda m: verbs.remember(m, "decision", "pg", "yes"))
    code, _, err = run_cli(capsys, "--store", pg_url, "project", str(folder))
    assert code == 0 and "wrote 1 projection file" in err
    path = folder / "state" / "memory" / f"{first[1]}.json"
    assert '"title": "pg"' in path.read_text(encoding="utf-8")
    follower = subprocess.Popen(
        [sys.executable, "-m", "agentjournal", "project", str(folder), "--follow"],
        env=child_env(pg_url), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert follower.stderr is not None
        assert "wrote" in follower.stderr.readline().decode()  # it is following now
        with Store(pg_url, create=False) as store:
            later, _ = store.mutate("bob", lambda m: verbs.remember(m, "trap", "t", "later"))
        written = folder / "state" / "memory" / f"{later[1]}.json"
        deadline = time.monotonic() + 20  # bounded: woken by NOTIFY, it takes a moment
        while not written.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert written.exists() and '"title": "t"' in written.read_text(encoding="utf-8")
    finally:
        follower.terminate()
        follower.wait(10)
        if follower.stderr is not None:
            follower.stderr.close()


def test_project_refuses_a_local_store(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    Store(str(tmp_path / "local")).close()
    code, _, err = run_cli(capsys, "--store", str(tmp_path / "local"), "project",
                           str(tmp_path / "face"))
    assert code == 2 and "local store" in err
