"""The ``agentjournal`` command: init, status, tail, and --help everywhere."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest
from agentjournal.cli import build_parser, main
from anyio.streams.memory import MemoryObjectReceiveStream
from support.mcp import SUBPROCESS_TEST_S, child_env

from journal_core import Store, verbs

COMMANDS = ("init", "serve", "status", "tail")


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def write_some(store_path: Path) -> None:
    with Store(str(store_path)) as store:
        store.mutate("alice", lambda m: verbs.plan_create(m, "Ship it", "", ["one", "two"]))
        store.mutate("bob", lambda m: verbs.claim(m, "file:src/app.py"))
        store.mutate("alice", lambda m: verbs.send_message(m, "bob", "the lexer is done"))


# -- init -------------------------------------------------------------------------------
def test_init_creates_the_store_and_its_gitignore_and_can_run_again(
    store_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run_cli(capsys, "--store", str(store_path), "init")
    assert code == 0 and out == "" and "initialized" in err and ".gitignore" in err
    assert (store_path / "store.json").exists() and (store_path / ".gitignore").exists()
    code, _, err = run_cli(capsys, "init", "--store", str(store_path))
    assert code == 0 and "already initialized" in err


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_tracks_projections_and_checkpoints_and_ignores_machine_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True, timeout=30)
    store_path = tmp_path / ".agentjournal"
    assert run_cli(capsys, "--store", str(store_path), "init")[0] == 0
    write_some(store_path)
    with Store(str(store_path)) as store:
        store.compact("operator")
        store.read_unseen("alice")
        store.ack("alice", store.head_seq)
    listed = subprocess.run(
        ["git", "-C", str(tmp_path), "status", "--porcelain", "--untracked-files=all"],
        check=True, capture_output=True, text=True, timeout=30,
    ).stdout.split()
    tracked = {name for name in listed if name.startswith(".agentjournal/")}
    assert ".agentjournal/.gitignore" in tracked and ".agentjournal/store.json" in tracked
    assert any(name.startswith(".agentjournal/state/plan/") for name in tracked)
    assert any(name.startswith(".agentjournal/events/checkpoints/ckpt-") for name in tracked)
    machine = ("/events/seg-", "/events/meta.json", "/lock", "/cursors/")
    assert not [name for name in tracked if any(part in name for part in machine)]


@pytest.fixture
def repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git repository as the working directory, with no store in the environment."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True, timeout=30)
    monkeypatch.chdir(repo)
    monkeypatch.delenv("AGENTJOURNAL_STORE", raising=False)
    return repo


def test_init_client_claude_code_writes_absolute_paths_and_merges_what_is_there(
    repository: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    (repository / ".mcp.json").write_text(json.dumps(
        {"mcpServers": {"other": {"command": "/bin/other"}}}), encoding="utf-8")
    settings = repository / ".claude" / "settings.local.json"
    settings.parent.mkdir()
    mine = {"type": "command", "command": "echo mine"}
    settings.write_text(json.dumps({"model": "x", "hooks": {"Stop": [{"hooks": [mine]}]}}),
                        encoding="utf-8")
    for _ in range(2):  # again: replaces its own entries, never duplicates them
        code, out, err = run_cli(capsys, "init", "--client", "claude-code")
        assert code == 0 and out == "" and "keep them out of git" in err
    servers = json.loads((repository / ".mcp.json").read_text(encoding="utf-8"))["mcpServers"]
    entry = servers["agentjournal"]
    store_root = str(repository.resolve() / ".git" / "agentjournal")
    assert servers["other"] == {"command": "/bin/other"}
    assert os.path.isabs(entry["command"]) and os.access(entry["command"], os.X_OK)
    assert entry["args"] == ["serve", "--store", store_root, "--actor", "claude-code"]
    merged = json.loads(settings.read_text(encoding="utf-8"))
    assert merged["model"] == "x" and merged["hooks"]["Stop"][0]["hooks"] == [mine]
    assert len(merged["hooks"]["Stop"]) == 2 and len(merged["hooks"]["SessionStart"]) == 1
    ours = merged["hooks"]["Stop"][1]["hooks"][0]["command"]
    assert ours.startswith(entry["command"] + " hook --as claude-stop --store " + store_root)


def test_init_client_generic_prints_and_a_store_named_in_the_git_dir_is_the_git_layout(
    repository: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run_cli(capsys, "init", "--client", "generic", "--actor", "codex #1")
    entry = json.loads(out)["mcpServers"]["agentjournal"]
    assert code == 0 and entry["args"][-2:] == ["--actor", "codex #1"]
    code, out, _ = run_cli(capsys, "--store", entry["args"][2], "status", "--json")
    assert code == 0 and json.loads(out)["layout"] == "git"
    code, out, _ = run_cli(capsys, "init", "--client", "cursor", "--print")
    assert code == 0 and json.loads(out)["mcpServers"]["agentjournal"]["args"][-1] == "cursor"
    assert not (repository / ".cursor").exists()


def test_init_client_refuses_to_rewrite_a_config_that_does_not_parse(
    repository: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    (repository / ".mcp.json").write_text("{not json", encoding="utf-8")
    code, _, err = run_cli(capsys, "init", "--client", "claude-code")
    assert code == 2 and "not valid JSON" in err and "--print" in err
    assert (repository / ".mcp.json").read_text(encoding="utf-8") == "{not json"
    code, _, err = run_cli(capsys, "init", "--print")
    assert code == 2 and "--client" in err


# -- status -----------------------------------------------------------------------------
def test_status_prints_a_table_or_json(
    store_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    write_some(store_path)
    code, out, _ = run_cli(capsys, "status", "--store", str(store_path), "--json")
    status = json.loads(out)
    assert code == 0 and status["head_seq"] == 4 and status["live"]["claim"] == 1
    code, out, _ = run_cli(capsys, "status", "--store", str(store_path))
    assert code == 0 and "head seq" in out and "doctor counters" in out


def test_status_of_a_missing_store_says_to_run_init(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run_cli(capsys, "status", "--store", str(tmp_path / "nothing"))
    assert code == 1 and out == "" and "agentjournal init" in err
    assert not (tmp_path / "nothing").exists()


def test_the_store_comes_from_the_environment_when_not_given(
    store_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_some(store_path)
    monkeypatch.setenv("AGENTJOURNAL_STORE", str(store_path))
    code, out, _ = run_cli(capsys, "status", "--json")
    assert code == 0 and json.loads(out)["store"] == str(store_path)


# -- tail -------------------------------------------------------------------------------
def test_tail_prints_one_readable_line_per_record(
    store_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    write_some(store_path)
    code, out, _ = run_cli(capsys, "tail", "--store", str(store_path))
    lines = out.splitlines()
    assert code == 0 and len(lines) == 4
    assert "store created" in lines[0]
    assert "bob" in lines[2] and "claim" in lines[2] and "file:src/app.py" in lines[2]
    assert lines[-1].split()[0] == "4"


def test_tail_filters_by_actor_limits_lines_and_prints_json(
    store_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    write_some(store_path)
    _, out, _ = run_cli(capsys, "tail", "--store", str(store_path), "--actor", "alice")
    assert len(out.splitlines()) == 2 and all(" alice " in line for line in out.splitlines())
    _, out, _ = run_cli(capsys, "tail", "--store", str(store_path), "-n", "1", "--json")
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["seq"] for r in records] == [4] and records[0]["item_type"] == "message"


@pytest.mark.anyio
async def test_tail_follow_prints_records_as_they_land(store_path: Path) -> None:
    write_some(store_path)
    command = [sys.executable, "-m", "agentjournal", "tail", "--follow", "-n", "1",
               "--store", str(store_path)]
    with anyio.fail_after(SUBPROCESS_TEST_S):
        async with subprocess_lines(command, child_env(store_path)) as lines:
            assert (await lines.receive()).split()[0] == "4"  # tail is up: the last record
            with Store(str(store_path)) as store:
                store.mutate("carol", lambda m: verbs.send_message(m, "*", "hello from carol"))
            landed = await lines.receive()
    assert landed.split()[0] == "5" and "carol" in landed and "hello from carol" in landed


@asynccontextmanager
async def subprocess_lines(
    command: list[str], env: dict[str, str],
) -> AsyncIterator[MemoryObjectReceiveStream[str]]:
    """A subprocess whose stdout lines arrive on a stream; terminated on exit."""
    send, receive = anyio.create_memory_object_stream[str](100)
    process = await anyio.open_process(command, env=env)

    async def pump() -> None:
        assert process.stdout is not None
        buffer = ""
        async with send:
            async for chunk in process.stdout:
                buffer += chunk.decode()
                while "\n" in buffer:
                    line, buffer = buffer.split("\n", 1)
                    await send.send(line)

    try:
        async with anyio.create_task_group() as group:
            group.start_soon(pump)
            async with receive:
                yield receive
            group.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            process.terminate()
            await process.wait()
            await process.aclose()


# -- help -------------------------------------------------------------------------------
@pytest.mark.parametrize("command", COMMANDS)
def test_help_of_every_command_explains_it(
    command: str, capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])
    out = capsys.readouterr().out
    assert exited.value.code == 0
    assert f"agentjournal {command}" in out and "--store" in out
    assert len(out.splitlines()) > 5


def test_help_names_every_command_and_the_store_default(
    capsys: pytest.CaptureFixture[str],
) -> None:
    help_text = build_parser().format_help()
    assert all(command in help_text for command in COMMANDS)
    assert "AGENTJOURNAL_STORE" in help_text and ".agentjournal" in help_text
    assert main([]) == 2


def test_serve_help_documents_transports_and_the_token(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    out = capsys.readouterr().out
    assert "--transport" in out and "AGENTJOURNAL_TOKEN" in out and "AGENTJOURNAL_ACTOR" in out


def test_the_dockerfile_serves_http_as_a_non_root_user_on_the_store_volume() -> None:
    dockerfile = (Path(__file__).resolve().parents[2] / "Dockerfile").read_text(encoding="utf-8")
    instructions = dict(line.split(" ", 1) for line in dockerfile.splitlines()
                        if line and not line.startswith((" ", "#")))
    args = build_parser().parse_args(json.loads(instructions["CMD"]))
    assert args.command == "serve" and args.transport == "http" and args.host == "0.0.0.0"
    assert args.init  # the volume is empty the first time: the container makes the store
    assert instructions["USER"] not in ("root", "0")
    assert "/store" in instructions["VOLUME"] and "AGENTJOURNAL_STORE=/store" in dockerfile
    assert json.loads(instructions["ENTRYPOINT"]) == ["agentjournal"]
