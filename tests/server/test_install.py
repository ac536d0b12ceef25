"""Installing agentjournal as a new user does, for real.

- The fresh machine: the repository cloned into a temp folder (its committed HEAD), the
  README Quickstart's first command run as written in the clone (a new venv, ``pip install
  -e .``, ``serve --init`` over HTTP; given ``--port 0`` for a free port), one ``tools/list``
  through the official MCP client; then what ``init --client generic`` prints, started by a
  stdio client with an empty environment from another working directory.
- The wheel: built without build isolation against this venv (offline), installed into a
  clean venv, then ``agentjournal --help``, ``init``, a stdio ``tools/list`` and ``doctor``
  from it; it holds only the import packages ``agentjournal`` and ``journal_core``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import anyio
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from support.mcp import CALL_S, REPO, SERVING

INSTALL_S = 300  # a new venv and pip install -e . (pip fetches the build backend)
COMMAND_S = 60
EMPTY_ENV = ["/usr/bin/env", "-i"]

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def quickstart_serve_command() -> str:
    """The README Quickstart's first command, as written."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = readme.split("## Quickstart", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    commands = [line for line in block.splitlines() if line and not line.startswith("#")]
    assert len(commands) == 2, commands  # serve, and run the tests: two commands
    assert " serve " in commands[0] and "pytest" in commands[1]
    return commands[0]


def user_env() -> dict[str, str]:
    """A shell's environment, without this test run's venv or store."""
    drop = ("AGENTJOURNAL_", "VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PYTEST_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "/usr/bin:/bin").split(os.pathsep)
                                  if p != venv_bin)
    return env


async def stdio_tools(command: list[str], cwd: Path, log: Path) -> tuple[set[str], str]:
    """Tool names and the served store of a stdio server started with an empty environment."""
    params = StdioServerParameters(command=EMPTY_ENV[0], args=[*EMPTY_ENV[1:], *command],
                                   cwd=str(cwd))
    with anyio.fail_after(COMMAND_S), open(log, "w", encoding="utf-8") as errlog:
        async with Client(stdio_client(params, errlog=errlog), cache=None,
                          read_timeout_seconds=CALL_S) as client:
            names = {tool.name for tool in (await client.list_tools()).tools}
            status = (await client.call_tool("journal_status", {})).structured_content
    assert status is not None
    return names, str(status["store"])


@pytest.mark.anyio
async def test_a_fresh_machine_installs_as_the_readme_says_and_serves_every_client(
    tmp_path: Path,
) -> None:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True, timeout=60)
    process = await anyio.open_process(["bash", "-c", quickstart_serve_command() + " --port 0"],
                                       cwd=clone, env=user_env(), start_new_session=True)
    said: list[str] = []
    try:
        with anyio.fail_after(INSTALL_S):
            url = await serving_url(process, said)
            async with Client(streamable_http_client(url), cache=None) as client:
                names = {tool.name for tool in (await client.list_tools()).tools}
    finally:
        with anyio.CancelScope(shield=True):
            os.killpg(process.pid, signal.SIGTERM)
            await process.wait()
            await process.aclose()
    store = str(clone.resolve() / ".git" / "agentjournal")
    assert {"work", "claim", "journal_status"} <= names
    assert any(f"serving the store {store} at {url}" in line for line in said), said

    printed = subprocess.run(
        [str(clone / ".venv" / "bin" / "agentjournal"), "init", "--client", "generic",
         "--print"], cwd=clone, env=user_env(), capture_output=True, text=True,
        timeout=COMMAND_S, check=True)
    entry = json.loads(printed.stdout)["mcpServers"]["agentjournal"]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    names, served = await stdio_tools([entry["command"], *entry["args"]], elsewhere,
                                      tmp_path / "stdio.log")
    assert {"work", "claim"} <= names and served == store
    assert list(elsewhere.iterdir()) == []


async def serving_url(process: anyio.abc.Process, said: list[str]) -> str:
    assert process.stderr is not None
    buffer = ""
    async for chunk in process.stderr:
        buffer += chunk.decode("utf-8", "replace")
        while "\n" in buffer:
            line, buffer = buffer.split("\n", 1)
            said.append(line)
            found = SERVING.search(line)
            if found:
                return found.group(1)
    raise AssertionError("the Quickstart's command ended before serving:\n" + "\n".join(said))


# -- the wheel ------------------------------------------------------------------------------
def build_wheel(tmp_path: Path) -> Path:
    """A wheel of this source tree, built in a copy of it (the build writes build/ and
    egg-info beside the sources) without build isolation: offline, with this venv's
    setuptools."""
    source = tmp_path / "source"
    for name in ("pyproject.toml", "README.md"):
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, source / name)
    for folder in ("journal_core", "server"):
        shutil.copytree(REPO / folder, source / folder,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                    "--no-build-isolation", "-w", str(tmp_path / "dist"), str(source)],
                   check=True, timeout=INSTALL_S, capture_output=True)
    (wheel,) = (tmp_path / "dist").glob("agentjournal-*.whl")
    return wheel


def clean_venv(path: Path) -> Path:
    """A new venv whose only packages are the wheel's (installed next) and, on a path line
    (never processed as a site dir, so this venv's editable agentjournal stays out), the
    dependencies of this venv."""
    venv.EnvBuilder(with_pip=False, symlinks=True).create(path)
    python = path / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig."
                           "get_paths()['purelib'])"], capture_output=True, text=True,
                          check=True, timeout=COMMAND_S).stdout.strip()
    Path(site, "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n",
                                              encoding="utf-8")
    return python


@pytest.mark.anyio
async def test_a_wheel_installed_in_a_clean_venv_runs_help_init_stdio_and_doctor(
    tmp_path: Path,
) -> None:
    wheel = build_wheel(tmp_path)
    tops = {name.split("/", 1)[0] for name in zipfile.ZipFile(wheel).namelist()}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"agentjournal", "journal_core"}
    python = clean_venv(tmp_path / "venv")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                    "--no-deps", "--no-index", str(wheel)], check=True, timeout=INSTALL_S,
                   capture_output=True)
    command = tmp_path / "venv" / "bin" / "agentjournal"
    project = tmp_path / "project"
    project.mkdir()

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(command), *argv], cwd=project, env=user_env(),
                              capture_output=True, text=True, timeout=COMMAND_S)

    helped = run("--help")
    assert helped.returncode == 0 and "init" in helped.stdout and "serve" in helped.stdout
    where = subprocess.run([str(python), "-c", "import agentjournal, journal_core; "
                            "print(agentjournal.__file__, journal_core.__file__)"],
                           capture_output=True, text=True, check=True, timeout=COMMAND_S,
                           cwd=project)  # not this checkout: python -c imports from its cwd
    assert all(path.startswith(str(tmp_path / "venv")) for path in where.stdout.split()), (
        where.stdout)
    assert run("init").returncode == 0
    names, served = await stdio_tools([str(command), "serve"], project, tmp_path / "err.log")
    assert {"work", "claim", "journal_status"} <= names
    assert served == str(project.resolve() / ".agentjournal")
    doctor = run("doctor")
    assert doctor.returncode == 0 and re.search(r"\bhealthy\b", doctor.stdout), doctor.stdout
