"""Symlinks planted in a store, as a hostile repository carries them (created with
os.symlink and committed): the store must never write through them to files outside it.
Today's layout throughout (explicit ``--store <repo>/.agentjournal``), except the last
test, where ``.agentjournal`` itself is the link and the store is found from the working
directory."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from trust_support import (
    SESSION_S,
    aj,
    clone,
    git,
    must_succeed,
    ok,
    outcome,
    said,
    session,
    shown,
    snapshot,
    snapshot_changes,
)

pytestmark = pytest.mark.anyio
STORE = ".agentjournal"
VICTIM_BYTES = b"precious bytes of the repository; nobody may write here\n"


def plant(repo: Path, link: Path, target: str, message: str) -> None:
    """Replace ``link`` with a symlink to ``target`` and commit it (forced past the store's
    .gitignore, as a hostile repository's tree simply holds it)."""
    if link.is_dir() and not link.is_symlink():
        for child in sorted(link.rglob("*"), reverse=True):
            child.rmdir() if child.is_dir() else child.unlink()
        link.rmdir()
    elif link.exists() or link.is_symlink():
        link.unlink()
    link.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, link)
    git(repo, "add", "-f", "--", str(link.relative_to(repo)))
    git(repo, "commit", "-q", "-m", message)


def victim_file(repo: Path) -> Path:
    victim = repo / "victim"
    victim.write_bytes(VICTIM_BYTES)
    return victim


async def store_with_a_plan(repo: Path, tmp_path: Path) -> dict[str, Any]:
    """Today's layout in repo/.agentjournal: a plan and a checkpoint, committed with a
    victim file that belongs to the repository."""
    store = str(repo / STORE)
    must_succeed(aj("--store", store, "init", cwd=repo), "init")
    with anyio.fail_after(SESSION_S):
        async with session(repo, tmp_path / "setup.err", "--store", store,
                           "--actor", "alice") as alice:
            plan = await ok(alice, "plan", title="Ship the parser", steps=["lexer", "parser"])
    must_succeed(aj("--store", store, "doctor", "--compact", cwd=repo), "doctor --compact")
    victim_file(repo)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "store and victim")
    return plan


async def through_a_server(cwd: Path, log: Path, store: str, actor: str,
                           work: Callable[[Client], Awaitable[None]]) -> str | None:
    """Run ``work`` through a stdio server on ``store``. A server that refuses to serve a
    store with planted links is fine here (what matters is what it wrote): returns why."""
    try:
        with anyio.fail_after(SESSION_S):
            async with session(cwd, log, "--store", store, "--actor", actor) as client:
                await work(client)
    except TimeoutError:
        raise
    except Exception as exc:
        return repr(exc)
    return None


def assert_doctor_names_symlinks(root: Path) -> None:
    done = aj("--store", str(root / STORE), "doctor", cwd=root)
    assert "traceback" not in done.stderr.lower(), shown(done)
    assert "symlink" in said(done), f"doctor does not report the planted symlink:\n{shown(done)}"


async def test_a_plan_update_does_not_write_through_a_symlinked_projection(
    repo: Path, tmp_path: Path,
) -> None:
    plan = await store_with_a_plan(repo, tmp_path)
    projection = repo / STORE / "state" / "plan" / f"{plan['item_id']}.json"
    plant(repo, projection, "../../../victim", "plant a projection link")
    assert projection.resolve() == (repo / "victim").resolve()
    store = str(repo / STORE)
    with anyio.fail_after(SESSION_S):
        async with session(repo, tmp_path / "bob.err", "--store", store,
                           "--actor", "bob") as bob:
            updated = await ok(bob, "plan", plan_id=plan["item_id"], add_steps=["docs"])
            got = await ok(bob, "get", item_type="plan", item_id=plan["item_id"])
    now = (repo / "victim").read_bytes()
    assert now == VICTIM_BYTES, (
        f"the plan update wrote through state/plan/<id>.json into the victim: {now[:80]!r}")
    assert got["entity_rev"] == updated["entity_rev"] > plan["entity_rev"]
    assert [s["title"] for s in got["entity"]["steps"]] == ["lexer", "parser", "docs"]
    assert_doctor_names_symlinks(repo)


async def test_status_on_a_fresh_clone_does_not_write_through_a_symlinked_projection(
    repo: Path, tmp_path: Path,
) -> None:
    plan = await store_with_a_plan(repo, tmp_path)
    projection = repo / STORE / "state" / "plan" / f"{plan['item_id']}.json"
    plant(repo, projection, "../../../victim", "plant a projection link")
    copy = clone(repo, tmp_path / "clone")
    assert (copy / STORE / "state" / "plan" / f"{plan['item_id']}.json").is_symlink()
    done = aj("--store", str(copy / STORE), "status", cwd=copy)
    now = (copy / "victim").read_bytes()
    assert now == VICTIM_BYTES, (
        f"a read-only status (exit {done.returncode}) wrote through a symlinked projection "
        f"into the victim: {now[:80]!r}")
    must_succeed(done, "status on the clone")
    with anyio.fail_after(SESSION_S):
        async with session(copy, tmp_path / "bob.err", "--store", str(copy / STORE),
                           "--actor", "bob") as bob:
            got = await ok(bob, "get", item_type="plan", item_id=plan["item_id"])
    assert got["entity"]["title"] == "Ship the parser"  # answered from the journal
    assert (copy / "victim").read_bytes() == VICTIM_BYTES


async def test_no_command_writes_through_a_symlinked_lock_file(
    repo: Path, tmp_path: Path,
) -> None:
    plan = await store_with_a_plan(repo, tmp_path)
    plant(repo, repo / STORE / "lock", "../victim", "plant a lock link")
    copy = clone(repo, tmp_path / "clone")
    assert (copy / STORE / "lock").is_symlink()
    store = str(copy / STORE)
    runs = [aj("--store", store, "status", cwd=copy)]

    async def work(bob: Client) -> None:
        await outcome(bob, "plan", plan_id=plan["item_id"], add_steps=["docs"])
        await outcome(bob, "remember", kind="note", title="t", body="b")

    await through_a_server(copy, tmp_path / "bob.err", store, "bob", work)
    runs.append(aj("--store", store, "doctor", "--compact", cwd=copy))
    runs.append(aj("--store", store, "export", "--out", str(tmp_path / "out.slice"), cwd=copy))
    now = (copy / "victim").read_bytes()
    assert now == VICTIM_BYTES, (
        f"a command wrote into (or truncated) the victim through the lock symlink: it now "
        f"holds {now[:120]!r} (exits: {[run.returncode for run in runs]})")
    assert_doctor_names_symlinks(copy)


async def test_mutations_and_ack_do_not_write_through_symlinked_meta_or_cursors(
    repo: Path, tmp_path: Path,
) -> None:
    plan = await store_with_a_plan(repo, tmp_path)
    victim_dir = repo / "victim_dir"
    victim_dir.mkdir()
    (victim_dir / "keep.txt").write_bytes(VICTIM_BYTES)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "a victim folder")
    store = repo / STORE
    plant(repo, store / "events" / "meta.json", "../../victim", "plant a meta link")
    plant(repo, store / "cursors", "../victim_dir", "plant a cursors link")
    before = snapshot(victim_dir)

    async def alice_works(alice: Client) -> None:
        await outcome(alice, "plan", plan_id=plan["item_id"], add_steps=["docs"])
        await outcome(alice, "remember", kind="note", title="t", body="b")

    async def bob_reads_and_acks(bob: Client) -> None:
        unseen = await outcome(bob, "read_unseen")
        last = unseen.content["last_seq"] if unseen.ok and unseen.content else 1
        await outcome(bob, "ack", up_to_seq=last)
        await outcome(bob, "claim", target="file:src/app.py")

    await through_a_server(repo, tmp_path / "alice.err", str(store), "alice", alice_works)
    await through_a_server(repo, tmp_path / "bob.err", str(store), "bob", bob_reads_and_acks)
    now = (repo / "victim").read_bytes()
    assert now == VICTIM_BYTES, f"a write went through events/meta.json into the victim: {now!r}"
    changes = snapshot_changes(before, snapshot(victim_dir))
    assert not changes, f"writes went through the cursors/ link into the victim folder: {changes}"
    assert_doctor_names_symlinks(repo)


async def test_a_store_folder_that_is_a_symlink_is_refused_and_left_alone(
    repo: Path, tmp_path: Path,
) -> None:
    """The repository's .agentjournal is a link to a store outside it: a command run in the
    repository without --store refuses it (saying so) and writes nothing there."""
    outside = tmp_path / "elsewhere" / "store"
    must_succeed(aj("--store", str(outside), "init", cwd=tmp_path), "init outside")
    (outside / "events" / "meta.json").unlink(missing_ok=True)  # a healer would write it
    os.symlink(str(outside), repo / STORE)
    git(repo, "add", "-f", STORE)
    git(repo, "commit", "-q", "-m", "a store link")
    before = snapshot(outside)
    runs = [aj("status", cwd=repo), aj("doctor", cwd=repo),
            aj("doctor", "--compact", cwd=repo)]
    changes = snapshot_changes(before, snapshot(outside))
    for done in runs:
        assert done.returncode != 0 and "symlink" in said(done), (
            f"`agentjournal {' '.join(done.args[3:])}` followed the .agentjournal symlink "
            f"(exit {done.returncode}, stderr {done.stderr[-300:]!r}) instead of refusing it; "
            f"changes in the link's target: {changes}")
    assert not changes, f"commands wrote into the link's target: {changes}"
