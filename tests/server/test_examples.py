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
