"""Where the store lives relative to git, and what git tracks of it (docs/design.md,
"Layout"), through real git commands and the CLI.

- The default (``agentjournal init`` in a repository): the store is in the git common dir,
  git tracks nothing of it, so branch switches, merges, ``git clean -fdx`` and stashes never
  touch it; every worktree of the repository finds the same store.
- ``--track checkpoints``: a tracked copy of each checkpoint; a fresh clone's ``init``
  restarts its journal from the newest one, under the same store id.
- ``--track state``: the projections too, in the working tree; a branch switch that rewrites
  them is healed by the next writer.
"""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest
from trust_support import SESSION_S, aj, clone, git, must_succeed, ok, session

pytestmark = pytest.mark.anyio


def status(cwd: Path) -> dict[str, object]:
    done = aj("status", "--json", cwd=cwd)
    must_succeed(done, "agentjournal status --json")
    result: dict[str, object] = json.loads(done.stdout)
    return result


async def write_some(cwd: Path, log: Path, actor: str, titles: list[str]) -> list[str]:
    ids = []
    with anyio.fail_after(SESSION_S):
        async with session(cwd, log, "--actor", actor) as client:
            for title in titles:
                found = await ok(client, "remember", kind="note", title=title, body="b")
                ids.append(found["item_id"])
            await ok(client, "claim", target=f"file:src/{actor}.py")
    return ids


async def test_the_default_store_lives_in_the_git_common_dir_and_survives_branches_and_merges(
    repo: Path, tmp_path: Path,
) -> None:
    done = must_succeed(aj("init", cwd=repo), "init")
    assert done == ""  # it reports on stderr
    assert (repo / ".git" / "agentjournal" / "store.json").exists()
    assert not (repo / ".agentjournal").exists()  # git tracks nothing of it
    await write_some(repo, tmp_path / "a.err", "alice", ["before the branch"])
    head = status(repo)["head_seq"]

    git(repo, "checkout", "-q", "-b", "feature")
    (repo / "src" / "feature.py").write_text("print('feature')\n", encoding="utf-8")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "feature")
    await write_some(repo, tmp_path / "b.err", "bob", ["on the feature branch"])
    git(repo, "checkout", "-q", "-")
    (repo / "README").write_text("changed on main\n", encoding="utf-8")
    git(repo, "commit", "-q", "-am", "main moves on")
    git(repo, "merge", "-q", "--no-edit", "feature")
    git(repo, "clean", "-fdxq")
    git(repo, "stash", "-u", "-q", check=False)

    after = status(repo)
    assert after["head_seq"] > head  # the feature branch's writes are in the one journal
    assert after["live"]["memory"] == 2  # type: ignore[index]
    assert git(repo, "status", "--porcelain").stdout == ""  # nothing of the store in git


async def test_every_worktree_of_a_repository_shares_one_store(
    repo: Path, tmp_path: Path,
) -> None:
    must_succeed(aj("init", cwd=repo), "init")
    worktree = tmp_path / "second-worktree"
    git(repo, "worktree", "add", "-q", str(worktree))
    await write_some(worktree, tmp_path / "w.err", "in-worktree", ["from the worktree"])
    assert status(repo)["store_id"] == status(worktree)["store_id"]
    assert status(repo)["live"]["memory"] == 1  # type: ignore[index]


async def test_a_clone_of_a_repository_tracking_checkpoints_restarts_its_journal_on_init(
    repo: Path, tmp_path: Path,
) -> None:
    must_succeed(aj("init", "--track", "checkpoints", cwd=repo), "init --track checkpoints")
    ids = await write_some(repo, tmp_path / "a.err", "alice", ["kept", "and this"])
    must_succeed(aj("doctor", "--compact", cwd=repo), "doctor --compact")
    tracked = sorted(p.name for p in (repo / ".agentjournal" / "checkpoints").iterdir())
    assert tracked and tracked[-1].startswith("ckpt-")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "the store's checkpoints")

    copy = clone(repo, tmp_path / "clone")
    assert aj("status", cwd=copy).returncode != 0  # found, but not set up: says to init
    must_succeed(aj("init", cwd=copy), "init on the clone")
    restarted = status(copy)
    assert restarted["store_id"] == status(repo)["store_id"]
    assert restarted["live"]["memory"] == len(ids)  # type: ignore[index]
    assert must_succeed(aj("doctor", cwd=copy), "doctor on the clone") is not None


async def test_tracked_projections_rewritten_by_a_branch_switch_are_healed_by_the_next_writer(
    repo: Path, tmp_path: Path,
) -> None:
    must_succeed(aj("init", "--track", "state", cwd=repo), "init --track state")
    (memory_id,) = await write_some(repo, tmp_path / "a.err", "alice", ["first title"])
    projection = repo / ".agentjournal" / "state" / "memory" / f"{memory_id}.json"
    assert json.loads(projection.read_text(encoding="utf-8"))["entity_rev"] == 1
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "projections at rev 1")
    git(repo, "checkout", "-q", "-b", "old")
    git(repo, "checkout", "-q", "-")
    with anyio.fail_after(SESSION_S):
        async with session(repo, tmp_path / "b.err", "--actor", "bob") as bob:
            await ok(bob, "forget", memory_id=memory_id, reason="superseded")
    assert json.loads(projection.read_text(encoding="utf-8"))["entity_rev"] == 2
    git(repo, "commit", "-q", "-am", "projections at rev 2")
    git(repo, "checkout", "-q", "old")  # back to the branch whose projection is at rev 1
    assert json.loads(projection.read_text(encoding="utf-8"))["entity_rev"] == 1
    with anyio.fail_after(SESSION_S):
        async with session(repo, tmp_path / "c.err", "--actor", "carol") as carol:
            await ok(carol, "remember", kind="note", title="any write heals", body="b")
    assert json.loads(projection.read_text(encoding="utf-8"))["entity_rev"] == 2
