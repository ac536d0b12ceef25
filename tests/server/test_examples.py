"""The examples work: two_agents.py runs to the end on a temp store, and every client
configuration is valid JSON that starts or reaches agentjournal."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from support.mcp import REPO, SUBPROCESS_TEST_S, child_env

EXAMPLES = REPO / "examples"


def test_two_agents_plan_claim_collide_complete_and_read_unseen(store_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "two_agents.py"), "--store", str(store_path)],
        env=child_env(store_path), capture_output=True, text=True, timeout=SUBPROCESS_TEST_S,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "collided:" in done.stdout and "claimed by 'alice'" in done.stdout
    assert done.stdout.strip().endswith("two_agents: ok")
    assert (store_path / "state" / "plan").is_dir()


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.mcp.json")))
def test_every_client_config_declares_the_agentjournal_server(name: str) -> None:
    server = json.loads((EXAMPLES / name).read_text(encoding="utf-8"))["mcpServers"]
    entry = server["agentjournal"]
    if "url" in entry:
        assert entry["url"].endswith("/mcp") and "Bearer" in entry["headers"]["Authorization"]
    else:
        assert entry["command"] == "agentjournal" and entry["args"][0] == "serve"


HOOK_FILES = {"claude-code.settings.json": "claude", "cursor.hooks.json": "cursor"}


def hook_commands(name: str) -> dict[str, str]:
    """Event name -> the command of the agentjournal hook it runs."""
    doc = json.loads((EXAMPLES / name).read_text(encoding="utf-8"))
    found: dict[str, str] = {}
    for event, entries in doc["hooks"].items():
        for entry in entries:
            for hook in entry.get("hooks", [entry]):
                found[event] = hook["command"]
    return found


@pytest.fixture
def news_for_agents(store_path: Path) -> Path:
    from journal_core import Store, verbs

    with Store(str(store_path)) as store:
        for me in ("claude-code", "cursor"):
            store.mutate("codex#1", lambda m, to=me: verbs.send_handoff(m, to, "take the lexer"))
    return store_path


@pytest.mark.parametrize("name", sorted(HOOK_FILES))
def test_every_client_hook_setting_runs_and_answers_what_its_client_reads(
    name: str, news_for_agents: Path,
) -> None:
    commands = hook_commands(name)
    expected = {"claude": {"SessionStart", "UserPromptSubmit", "Stop"},
                "cursor": {"sessionStart", "stop"}}[HOOK_FILES[name]]
    assert set(commands) == expected
    env = child_env(news_for_agents)
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}"
    for event, command in commands.items():
        assert command.startswith("agentjournal hook ")
        done = subprocess.run(["sh", "-c", command], env=env, input="{}", capture_output=True,
                              text=True, timeout=SUBPROCESS_TEST_S, check=False)
        assert done.returncode == 0, (event, done.stderr)
        out = done.stdout.strip()
        if event in ("SessionStart", "UserPromptSubmit"):
            assert out.startswith("agentjournal (claude-code)") and "take the lexer" in out
        elif event == "Stop":
            assert json.loads(out)["decision"] == "block"
        elif event == "sessionStart":
            assert "take the lexer" in json.loads(out)["additional_context"]
        else:
            assert "take the lexer" in json.loads(out)["followup_message"]
