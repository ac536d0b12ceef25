"""Helpers of the trust suite: real git repositories, the ``agentjournal`` CLI as a child
process, stdio MCP servers started in a working directory, and folder snapshots.

A plain module beside tests/trust/conftest.py (pytest puts this folder on sys.path).
Everything here runs the product the way a user does: ``python -m agentjournal ...`` with
its working directory in a repository, with or without ``--store``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from mcp import Client, MCPError, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.types import Implementation
from support.reliability import child_env

REPO = Path(__file__).resolve().parents[2]
CLI_S = 60  # bound on one CLI run on a loaded 2-core machine
CALL_S = 30  # bound on one tool call through a stdio server
SESSION_S = 90  # bound on a whole exchange with stdio servers
GIT_S = 60
GIT_IDENTITY = {"user.email": "dev@example.com", "user.name": "Dev"}


# -- git ------------------------------------------------------------------------------
def git(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run git in ``repo``; with ``check``, a failure fails the test with git's words."""
    config = [item for key, value in GIT_IDENTITY.items() for item in ("-c", f"{key}={value}")]
    done = subprocess.run(
        ["git", *config, "-c", "commit.gpgsign=false", *args], cwd=repo, env=git_env(),
        capture_output=True, text=True, timeout=GIT_S, stdin=subprocess.DEVNULL,
    )
    if check and done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed ({done.returncode}):\n"
                             f"{done.stdout}{done.stderr}")
    return done


def git_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GIT_", "AGENTJOURNAL_"))}
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_TERMINAL_PROMPT="0")
    return env


def make_repo(path: Path) -> Path:
    """A repository with one commit: README and src/app.py."""
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    for key, value in GIT_IDENTITY.items():
        git(path, "config", key, value)
    (path / "README").write_text("a project\n", encoding="utf-8")
    (path / "src").mkdir()
    (path / "src" / "app.py").write_text("print('app')\n", encoding="utf-8")
    commit_all(path, "first commit")
    return path


def commit_all(repo: Path, message: str) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


def clone(source: Path, target: Path) -> Path:
    done = subprocess.run(["git", "clone", "-q", str(source), str(target)], env=git_env(),
                          capture_output=True, text=True, timeout=GIT_S,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, f"git clone failed: {done.stderr}"
    for key, value in GIT_IDENTITY.items():
        git(target, "config", key, value)
    return target


def git_common_dir(repo: Path) -> Path:
    found = git(repo, "rev-parse", "--git-common-dir").stdout.strip()
    return (repo / found).resolve()


# -- the CLI --------------------------------------------------------------------------
def cli_env(**extra: str) -> dict[str, str]:
    """A child's environment: no AGENTJOURNAL_* of the caller's, wide lines, this checkout."""
    env: dict[str, str] = child_env(COLUMNS="200", **extra)
    return env


def aj(*args: str, cwd: Path, input_bytes: bytes | None = None,
       env: dict[str, str] | None = None,
       timeout: float = CLI_S) -> subprocess.CompletedProcess[str]:
    """``python -m agentjournal ARGS`` with its working directory in ``cwd``."""
    done = subprocess.run(
        [sys.executable, "-m", "agentjournal", *args], cwd=cwd, env=env or cli_env(),
        capture_output=True, timeout=timeout,
        input=input_bytes, stdin=None if input_bytes is not None else subprocess.DEVNULL,
    )
    return subprocess.CompletedProcess(
        done.args, done.returncode, done.stdout.decode("utf-8", "replace"),
        done.stderr.decode("utf-8", "replace"))


def said(done: subprocess.CompletedProcess[str]) -> str:
    """Everything a CLI run printed, lower-cased, for key-word checks."""
    return (done.stdout + "\n" + done.stderr).lower()


def shown(done: subprocess.CompletedProcess[str]) -> str:
    return f"exit {done.returncode}\nstdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-3000:]}"


def must_succeed(done: subprocess.CompletedProcess[str], what: str) -> str:
    assert done.returncode == 0, f"{what} failed:\n{shown(done)}"
    return done.stdout


def tail_records(cwd: Path, *store_args: str) -> list[dict[str, Any]]:
    """Every record, through ``agentjournal tail --json`` (raw records, one a line)."""
    done = aj(*store_args, "tail", "--json", "-n", "10000000", cwd=cwd)
    must_succeed(done, "agentjournal tail --json")
    return [orjson.loads(line) for line in done.stdout.splitlines() if line.strip()]


# -- stdio servers --------------------------------------------------------------------
@asynccontextmanager
async def session(cwd: Path, log_path: Path, *serve_args: str, client_name: str = "mcp",
                  env: dict[str, str] | None = None) -> AsyncIterator[Client]:
    """``agentjournal serve SERVE_ARGS`` over stdio with its working directory in ``cwd``
    (no AGENTJOURNAL_STORE: the store is ``--store`` in SERVE_ARGS, or found from ``cwd``),
    driven by the official MCP client. Callers bound it with ``anyio.fail_after``."""
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "agentjournal", "serve", *serve_args],
        env=env or cli_env(), cwd=str(cwd))
    with open(log_path, "a", encoding="utf-8") as errlog, plain_errors():
        async with Client(stdio_client(params, errlog=errlog),
                          client_info=Implementation(name=client_name, version="0"),
                          read_timeout_seconds=CALL_S, cache=None) as connected:
            yield connected


@contextlib.contextmanager
def plain_errors() -> Iterator[None]:
    """An assertion failing inside an MCP client's ``async with`` comes out of its task
    groups wrapped in exception groups: unwrap a lone one, so the report shows it plainly."""
    try:
        yield
    except BaseExceptionGroup as group:
        leaves = list(_leaves(group))
        if len(leaves) == 1:
            raise leaves[0] from None
        raise


def _leaves(group: BaseExceptionGroup[BaseException]) -> Iterator[BaseException]:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            yield from _leaves(exc)
        else:
            yield exc


def shorter(text: str) -> str:
    """A message with long percent-encoded runs (file names of long actors) elided."""
    return re.sub(r"(%[0-9A-Fa-f]{2}){6,}", "%..", text)


@dataclass
class Outcome:
    """What a tool call answered: ok (a result, not isError), its text, its content.
    A protocol error (MCPError) and a tool error (isError) are both not ok."""

    ok: bool
    text: str
    content: dict[str, Any] | None = None
    protocol_error: bool = False


async def outcome(client: Client, tool: str, **arguments: Any) -> Outcome:
    try:
        result = await client.call_tool(tool, arguments)
    except MCPError as exc:
        return Outcome(False, str(exc), None, protocol_error=True)
    text = " ".join(getattr(block, "text", "") for block in result.content)
    if result.is_error:
        return Outcome(False, text)
    return Outcome(True, text, result.structured_content)


async def ok(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    """A tool call that must succeed; its structured content."""
    found = await outcome(client, tool, **arguments)
    assert found.ok, f"{tool} failed: {found.text}"
    assert found.content is not None
    return found.content


async def refused(client: Client, tool: str, **arguments: Any) -> str:
    """A tool call that must fail (tool error or protocol error); its text, lower-cased."""
    found = await outcome(client, tool, **arguments)
    assert not found.ok, f"{tool} unexpectedly succeeded: {found.content}"
    return found.text.lower()


def log_tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")[-chars:]
    except OSError:
        return "(no log)"


# -- folders --------------------------------------------------------------------------
def snapshot(folder: Path, *, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """Every entry under ``folder`` (relative path -> sha256 of a file's bytes, a link's
    target, or 'dir'), except the top-level names in ``skip``."""
    found: dict[str, str] = {}
    if not folder.exists() and not folder.is_symlink():
        return found
    for root, dirs, files in os.walk(folder):
        rel_root = Path(root).relative_to(folder)
        if rel_root.parts and rel_root.parts[0] in skip:
            continue
        for name in dirs + files:
            rel = rel_root / name
            if not rel_root.parts and name in skip:
                continue
            path = Path(root) / name
            if path.is_symlink():
                found[str(rel)] = "link -> " + os.readlink(path)
            elif path.is_dir():
                found[str(rel)] = "dir"
            else:
                found[str(rel)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def snapshot_changes(before: dict[str, str], after: dict[str, str]) -> list[str]:
    changes = [f"created {k}" for k in sorted(set(after) - set(before))]
    changes += [f"removed {k}" for k in sorted(set(before) - set(after))]
    changes += [f"changed {k}" for k in sorted(set(before) & set(after)) if before[k] != after[k]]
    return changes


def files_containing(folder: Path, needle: bytes) -> list[str]:
    """Files under ``folder`` (links not followed) whose bytes contain ``needle``."""
    hits = []
    for root, _, files in os.walk(folder):
        for name in files:
            path = Path(root) / name
            if not path.is_symlink() and needle in path.read_bytes():
                hits.append(str(path.relative_to(folder)))
    return sorted(hits)
