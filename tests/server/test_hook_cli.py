"""``agentjournal hook``: one short block of what an agent should know before its next
step, on real stores -- nothing at all when there is nothing to say, bounded in size, and
shaped for Claude Code's and Cursor's hook events. It never moves a cursor and never takes
the store lock."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from agentjournal.cli import main
from support.engine import Clock
from support.mcp import child_env

from journal_core import Store, limits, verbs

ME = "claude-code#1"
HOOK_S = 60  # bound of one hook subprocess
LONG = "a long line of text that goes on " * 12


def run_hook(capsys: pytest.CaptureFixture[str], store_path: Path,
             *argv: str) -> tuple[int, str, str]:
    code = main(["hook", "--store", str(store_path), "--actor", ME, *argv])
    out, err = capsys.readouterr()
    return code, out, err


def hook_process(store_path: Path, *argv: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agentjournal", "hook", "--actor", ME, *argv],
                          env=child_env(store_path), input=stdin, capture_output=True,
                          text=True, timeout=HOOK_S, check=False)


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime.now(UTC))  # the hook reads the real clock: start at now


@pytest.fixture
def busy_store(store_path: Path, clock: Clock) -> Iterator[Path]:
    """Others wrote; a handoff and messages wait for me; one claim of mine is about to
    expire, one was taken over."""
    with Store(str(store_path), now=clock) as store:
        store.mutate("planner", lambda m: verbs.plan_create(m, "Ship the parser", "", ["a"]))
        store.mutate(ME, lambda m: verbs.claim(m, "file:src/parser.py", ttl_s=90))
        store.mutate(ME, lambda m: verbs.claim(m, "file:docs/guide.md", ttl_s=3600))
        store.mutate(ME, lambda m: verbs.claim(m, "file:src/lexer.py", ttl_s=1,
                                                keepalive=False))
        store.mutate("cursor#1", lambda m: verbs.send_handoff(m, ME, "Take step s2: the parser"))
        store.mutate("codex#1", lambda m: verbs.send_message(m, ME, "ping me before renaming"))
        store.mutate("codex#1", lambda m: verbs.send_message(m, "*", "to everyone"))
        clock.advance(2)
        store.mutate("codex#1", lambda m: verbs.claim(m, "file:src/lexer.py"))
    yield store_path


def test_a_hook_on_a_store_with_nothing_new_prints_nothing(
    store_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    with Store(str(store_path)) as store:
        store.mutate(ME, lambda m: verbs.remember(m, "note", "mine", "my own note"))
        store.mutate("bob", lambda m: verbs.send_message(m, "*", "seen already"))
        store.ack(ME, store.head_seq)
    code, out, err = run_hook(capsys, store_path)
    assert (code, out, err) == (0, "", "")
    assert run_hook(capsys, store_path, "--as", "claude-stop") == (0, "", "")


def test_a_hook_on_a_busy_store_says_what_waits_in_one_short_block(
    busy_store: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run_hook(capsys, busy_store)
    block = out.rstrip("\n")
    assert code == 0 and len(block) <= limits.hook_chars_max_default
    assert "unseen (" in block and "plan" in block and "handoff" in block
    assert "Handoffs to you: hnd_" in block and "Take step s2" in block
    assert 'codex#1 "ping me before renaming"' in block and "to everyone" not in block
    assert "Your claims expiring: file:src/parser.py in" in block and "guide.md" not in block
    assert "Your claims taken over: file:src/lexer.py by codex#1" in block


def test_the_json_of_a_hook_names_every_count(
    busy_store: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    _, out, _ = run_hook(capsys, busy_store, "--format", "json")
    found = json.loads(out)
    assert found["unseen_by_type"] == {"plan": 1, "handoff": 1, "message": 2, "claim": 2}
    assert found["handoffs_total"] == 1 and found["messages_total"] == 1
    assert [c["target"] for c in found["expiring"]] == ["file:src/parser.py"]
    assert [(c["target"], c["by"]) for c in found["taken_over"]] == [
        ("file:src/lexer.py", "codex#1")]


def test_a_hook_stays_within_its_size_on_a_store_full_of_long_news(
    store_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    with Store(str(store_path)) as store:
        for number in range(40):
            store.mutate(f"peer#{number}", lambda m, n=number: verbs.send_handoff(
                m, ME, f"{n} {LONG}"[:400]))
            store.mutate(f"peer#{number}", lambda m, n=number: verbs.send_message(
                m, ME, f"{n} {LONG}"))
            store.mutate(ME, lambda m, n=number: verbs.claim(m, f"file:src/{LONG[:60]}/{n}.py",
                                                             ttl_s=60))
    for chars in (limits.hook_chars_max_default, 120):
        code, out, _ = run_hook(capsys, store_path, "--chars", str(chars))
        assert code == 0 and 0 < len(out.rstrip("\n")) <= chars
    assert "(+" in run_hook(capsys, store_path)[1]  # what it left out, counted


def test_a_hook_moves_no_cursor_and_runs_while_another_process_holds_the_lock(
    busy_store: Path,
) -> None:
    with Store(str(busy_store)) as store, store.locked_maintenance("operator"):
        before = store.cursor(ME)
        done = hook_process(busy_store)
        assert store.cursor(ME) == before == 0
    assert done.returncode == 0, done.stderr
    assert "Handoffs to you" in done.stdout
    again = hook_process(busy_store).stdout
    assert without_countdowns(again) == without_countdowns(done.stdout)  # nothing marked seen


def without_countdowns(text: str) -> str:
    """A claim's "expires in 88s" moves on between two runs of a loaded machine."""
    return re.sub(r"\bin \d+s\b", "in <n>s", text)


def test_a_claude_code_stop_hook_reminds_of_open_handoffs_once(busy_store: Path) -> None:
    reminded = hook_process(busy_store, "--as", "claude-stop",
                            stdin='{"hook_event_name": "Stop", "stop_hook_active": false}')
    decision = json.loads(reminded.stdout)
    assert decision["decision"] == "block" and "Take step s2" in decision["reason"]
    assert "respond" in decision["reason"]
    again = hook_process(busy_store, "--as", "claude-stop",
                         stdin='{"hook_event_name": "Stop", "stop_hook_active": true}')
    assert again.returncode == 0 and again.stdout == ""


def test_cursor_hooks_get_their_own_json(busy_store: Path) -> None:
    start = json.loads(hook_process(busy_store, "--as", "cursor-session-start").stdout)
    assert "Handoffs to you" in start["additional_context"]
    stop = json.loads(hook_process(busy_store, "--as", "cursor-stop").stdout)
    assert "Take step s2" in stop["followup_message"]


def test_a_hook_outside_any_store_prints_nothing(tmp_path: Path) -> None:
    env = child_env(tmp_path / "none")
    env.pop("AGENTJOURNAL_STORE")
    done = subprocess.run([sys.executable, "-m", "agentjournal", "hook", "--actor", ME],
                          env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=HOOK_S, check=False)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_a_hook_without_an_actor_says_how_to_name_one_and_never_exits_2(
    busy_store: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AGENTJOURNAL_ACTOR", raising=False)
    code = main(["hook", "--store", str(busy_store)])
    _, err = capsys.readouterr()
    assert code == 1 and "--actor" in err and "AGENTJOURNAL_ACTOR" in err
