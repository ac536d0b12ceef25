"""Fixtures of the trust suite: git repositories in temp folders, the CLI and stdio servers
run as real processes in them. The helpers live in trust_support (a plain module beside
this file); the stdio helpers of the server suite are importable too."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

SERVER_TESTS = Path(__file__).resolve().parents[1] / "server"
if str(SERVER_TESTS) not in sys.path:
    sys.path.insert(0, str(SERVER_TESTS))  # mcp_helpers, the server suite's stdio helpers

from trust_support import make_repo  # noqa: E402


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository with one commit (README, src/app.py) and a committer configured."""
    return make_repo(tmp_path / "repo")
