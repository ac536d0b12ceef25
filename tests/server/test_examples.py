"""The examples work as written: two_agents.py runs to the end on a temp store; every client
configuration in examples/ is exactly what ``agentjournal init --client`` writes (shown for
``/path/to/agentjournal`` and ``/path/to/repo``), and with those two paths made real it
starts a server or a hook with an empty environment, from another working directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from agentjournal.cli_client import DEFAULT_ACTORS, client_files, command_path
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from support.mcp import CALL_S, REPO, SUBPROCESS_TEST_S, child_env

from journal_core import Store, verbs

EXAMPLES = REPO / "examples"
COMMAND_SHOWN = "/path/to/agentjournal"
STORE_SHOWN = "/path/to/repo/.git/agentjournal"
CLIENT_EXAMPLES = {  # client -> (its MCP configuration, its hook settings)
    "claude-code": ("claude-code.mcp.json", "claude-code.settings.local.json"),
    "cursor": ("cursor.mcp.json", "cursor.hooks.json"),
    "generic": ("stdio.mcp.json", None),
}
EMPTY_ENV = ["/usr/bin/env", "-i"]  # what a client that passes no environment starts


def example(name: str) -> Any:
    return json.loads((EXAMPLES / name).read_text(encoding="utf-8"))


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


@pytest.mark.parametrize("client", sorted(CLIENT_EXAMPLES))
def test_every_client_example_is_what_init_client_writes(client: str) -> None:
    files = client_files(client, [COMMAND_SHOWN], STORE_SHOWN, DEFAULT_ACTORS[client])
    mcp_name, hooks_name = CLIENT_EXAMPLES[client]
    assert example(mcp_name) == files.mcp
    if hooks_name is not None:
        assert example(hooks_name) == files.hooks


def test_no_example_relies_on_path_or_on_variable_defaults() -> None:
    for path in EXAMPLES.glob("*.json"):
        text = path.read_text(encoding="utf-8")
        assert ":-" not in text, f"{path.name} uses ${{VAR:-default}}"
        assert '"agentjournal ' not in text and '"command": "agentjournal"' not in text, (
            f"{path.name} runs a bare agentjournal found on PATH")


def test_the_http_example_reaches_mcp_with_a_bearer_token() -> None:
    entry = example("http-with-token.mcp.json")["mcpServers"]["agentjournal"]
    assert entry["url"].endswith("/mcp") and entry["headers"]["Authorization"].startswith(
        "Bearer ")


def made_real(doc: Any, store: Path) -> Any:
    """An example with its two shown paths replaced by this machine's."""
    command = command_path()
    assert len(command) == 1, command  # the test venv has the agentjournal script
    text = json.dumps(doc).replace(COMMAND_SHOWN, command[0])
    return json.loads(text.replace(STORE_SHOWN, str(store)))


@pytest.fixture
def news_for_agents(store_path: Path) -> Path:
    with Store(str(store_path)) as store:
        for me in ("claude-code", "cursor"):
            store.mutate("codex#1", lambda m, to=me: verbs.send_handoff(m, to, "take the lexer"))
    return store_path


@pytest.mark.anyio
@pytest.mark.parametrize("client", sorted(CLIENT_EXAMPLES))
async def test_every_client_example_serves_with_an_empty_environment_from_elsewhere(
    client: str, news_for_agents: Path, tmp_path: Path,
) -> None:
    entry = made_real(example(CLIENT_EXAMPLES[client][0]), news_for_agents)
    entry = entry["mcpServers"]["agentjournal"]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    params = StdioServerParameters(command=EMPTY_ENV[0],
                                   args=[*EMPTY_ENV[1:], entry["command"], *entry["args"]],
                                   cwd=str(elsewhere))
    with anyio.fail_after(SUBPROCESS_TEST_S), open(tmp_path / "err.log", "w") as errlog:
        async with Client(stdio_client(params, errlog=errlog), cache=None,
                          read_timeout_seconds=CALL_S) as connected:
            names = {tool.name for tool in (await connected.list_tools()).tools}
            status = (await connected.call_tool("journal_status", {})).structured_content
    assert {"work", "claim", "journal_status"} <= names
    assert status is not None and status["store"] == str(news_for_agents)
    assert not any(elsewhere.iterdir())  # nothing made where the client started it


def hook_commands(doc: dict[str, Any]) -> dict[str, str]:
    """Event name -> the command of the agentjournal hook it runs."""
    found: dict[str, str] = {}
    for event, entries in doc["hooks"].items():
        for entry in entries:
            for hook in entry.get("hooks", [entry]):
                found[event] = hook["command"]
    return found


@pytest.mark.parametrize("client", ["claude-code", "cursor"])
def test_every_client_hook_example_answers_what_its_client_reads_with_an_empty_environment(
    client: str, news_for_agents: Path, tmp_path: Path,
) -> None:
    commands = hook_commands(made_real(example(str(CLIENT_EXAMPLES[client][1])),
                                       news_for_agents))
    expected = {"claude-code": {"SessionStart", "UserPromptSubmit", "Stop"},
                "cursor": {"sessionStart", "stop"}}[client]
    assert set(commands) == expected
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for event, command in commands.items():
        done = subprocess.run([*EMPTY_ENV, "/bin/sh", "-c", command], input="{}",
                              capture_output=True, text=True, timeout=SUBPROCESS_TEST_S,
                              check=False, cwd=elsewhere)
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
    assert os.listdir(elsewhere) == []
