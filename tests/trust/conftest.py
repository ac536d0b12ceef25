"""Fixtures of the trust suite: git repositories in temp folders, the CLI and stdio servers
run as real processes in them. The helpers live in trust_support (a plain module beside
this file) and tests/support."""

from __future__ import annotations

from pathlib import Path

import pytest
from trust_support import make_repo


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository with one commit (README, src/app.py) and a committer configured."""
    return make_repo(tmp_path / "repo")
