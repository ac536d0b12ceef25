"""A client none of us wrote: the MCP Inspector CLI (Node.js, from npm) drives the stdio
server. Skipped, with the reason, when npx is missing or the package cannot be fetched."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support.mcp import REPO

NPX = shutil.which("npx")
INSPECTOR = "@modelcontextprotocol/inspector"
INSPECTOR_S = 180  # the first run downloads the package
FETCH_FAILURES = ("npm err", "npm error", "enotfound", "eai_again", "etimedout", "econnrefused",
                  "network", "404 not found", "could not determine executable")

pytestmark = pytest.mark.skipif(NPX is None, reason="npx is not installed (Node.js), so the "
                                "MCP Inspector CLI cannot run")


def inspector(store_path: Path, *method_args: str) -> Any:
    """Run the Inspector CLI against ``python -m agentjournal serve``; its JSON answer."""
    assert NPX is not None
    command = [NPX, "-y", INSPECTOR, "--cli", "-e", f"PYTHONPATH={REPO}",
               sys.executable, "-m", "agentjournal", "serve", "--store", str(store_path),
               "--init", "--actor", "inspector", *method_args]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=INSPECTOR_S,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        pytest.skip(f"npx {INSPECTOR} did not finish within {INSPECTOR_S}s (cannot fetch it?)")
    if done.returncode != 0:
        lowered = done.stderr.lower()
        if any(mark in lowered for mark in FETCH_FAILURES) and "{" not in done.stdout:
            last = done.stderr.strip().splitlines()[-1:] or [""]
            pytest.skip(f"npx could not fetch {INSPECTOR}: {last[0]}")
        raise AssertionError(f"inspector failed ({done.returncode}):\n{done.stdout}\n"
                             f"{done.stderr}")
    return json.loads(done.stdout)


def test_the_mcp_inspector_lists_the_tools_with_their_schemas(store_path: Path) -> None:
    listed = inspector(store_path, "--method", "tools/list")
    tools = {tool["name"]: tool for tool in listed["tools"]}
    assert {"work", "read_unseen", "ack", "claim", "journal_status"} <= set(tools)
    assert tools["claim"]["inputSchema"]["additionalProperties"] is False
    assert "target" in tools["claim"]["inputSchema"]["properties"]
    assert tools["work"]["annotations"]["readOnlyHint"] is True
    assert "outputSchema" not in tools["work"]  # results are documented, not schema'd


def test_the_mcp_inspector_calls_a_tool(store_path: Path) -> None:
    called = inspector(store_path, "--method", "tools/call", "--tool-name", "claim",
                       "--tool-arg", "target=file:src/app.py")
    assert called.get("isError") is not True
    assert called["structuredContent"]["entity"]["holder"] == "inspector"
    assert called["structuredContent"]["entity"]["target"] == "file:src/app.py"
