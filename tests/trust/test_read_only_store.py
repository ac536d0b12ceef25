"""A store on a read-only file system (a read-only bind mount, as a CI cache or a shared
volume mounted ro would be) can still be inspected: ``status``, ``doctor`` and ``export``
work, and a stdio server answers its read tools while a write tool says the store is
read-only. As root the store is bind-mounted read-only (chmod does not stop root); as
another user it is made read-only with chmod."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import anyio
import orjson
import pytest
from trust_support import (
    SESSION_S,
    aj,
    log_tail,
    must_succeed,
    ok,
    outcome,
    said,
    session,
    shown,
)

pytestmark = pytest.mark.anyio


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(command), capture_output=True, text=True, timeout=30)


@pytest.fixture
def store_ids(tmp_path: Path) -> dict[str, str]:
    return {}


@pytest.fixture
def read_only_store(tmp_path: Path, store_ids: dict[str, str]) -> Iterator[Path]:
    """A store with a plan and a memory item, then made read-only."""
    source = tmp_path / "source"
    must_succeed(aj("--store", str(source), "init", cwd=tmp_path), "init")

    async def fill() -> None:
        with anyio.fail_after(SESSION_S):
            async with session(tmp_path, tmp_path / "setup.err", "--store", str(source),
                               "--actor", "alice") as alice:
                store_ids["plan"] = (await ok(alice, "plan", title="Ship it",
                                              steps=["build"]))["item_id"]
                await ok(alice, "remember", kind="decision", title="use tabs", body="always")

    anyio.run(fill)
    must_succeed(aj("--store", str(source), "doctor", "--compact", cwd=tmp_path), "compact")
    if os.geteuid() == 0:
        target = tmp_path / "ro"
        target.mkdir()
        bound = run("mount", "--bind", str(source), str(target))
        if bound.returncode != 0:
            pytest.skip(f"root, but cannot bind-mount ({bound.stderr.strip()}): needs "
                        "CAP_SYS_ADMIN to make a read-only mount that stops root")
        try:
            remounted = run("mount", "-o", "remount,bind,ro", str(target))
            if remounted.returncode != 0:
                pytest.skip(f"cannot remount read-only ({remounted.stderr.strip()})")
            yield target
        finally:
            run("umount", "-l", str(target))
    else:
        run("chmod", "-R", "a-w", str(source))
        try:
            yield source
        finally:
            run("chmod", "-R", "u+w", str(source))


def test_status_doctor_and_export_work_on_a_read_only_store(
    read_only_store: Path, tmp_path: Path,
) -> None:
    store = str(read_only_store)
    status = aj("--store", store, "status", "--json", cwd=tmp_path)
    doctor = aj("--store", store, "doctor", cwd=tmp_path)
    export = aj("--store", store, "export", cwd=tmp_path)
    problems = []
    if status.returncode != 0:
        problems.append(f"status failed:\n{shown(status)}")
    if doctor.returncode not in (0, 1) or "traceback" in said(doctor) \
            or "read-only file system" in said(doctor):
        problems.append(f"doctor crashed:\n{shown(doctor)}")
    if export.returncode != 0:
        problems.append(f"export failed:\n{shown(export)}")
    assert not problems, "\n".join(problems)
    assert orjson.loads(status.stdout)["live"]["plan"] == 1
    header = orjson.loads(export.stdout.partition("\n")[0])
    assert header["records"] >= 2


async def test_a_server_on_a_read_only_store_reads_and_refuses_writes_saying_why(
    read_only_store: Path, tmp_path: Path, store_ids: dict[str, str],
) -> None:
    log = tmp_path / "server.err"
    try:
        with anyio.fail_after(SESSION_S):
            async with session(tmp_path, log, "--store", str(read_only_store),
                               "--actor", "bob") as bob:
                briefing = await outcome(bob, "work")
                got = await outcome(bob, "get", item_type="plan", item_id=store_ids["plan"])
                listed = await outcome(bob, "list", item_type="memory")
                write = await outcome(bob, "remember", kind="note", title="t", body="b")
    except Exception as exc:
        raise AssertionError(f"a server on a read-only store did not start: {exc!r}\n"
                             f"{log_tail(log, 800)}") from None
    for name, found in (("work", briefing), ("get", got), ("list", listed)):
        assert found.ok, f"{name} failed on a read-only store: {found.text}"
    assert got.content is not None and got.content["entity"]["title"] == "Ship it"
    assert listed.content is not None and len(listed.content["items"]) == 1
    assert not write.ok, "a write on a read-only store succeeded"
    assert "read-only" in write.text.lower(), write.text
