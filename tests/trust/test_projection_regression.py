"""Tracked projections put back by git (``git checkout -- .agentjournal/state``, a
``git stash``, a branch switch) hold an older rev than the journal, while meta.json (not
tracked) still says they are up to date. ``doctor`` must report such a projection, and the
next mutation through MCP (of any entity) or ``doctor --repair`` must bring it back to the
journal's rev. Today's layout (explicit ``--store <repo>/.agentjournal``), committed."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest
from trust_support import SESSION_S, aj, commit_all, git, must_succeed, ok, session, shown

pytestmark = pytest.mark.anyio
STORE = ".agentjournal"
REGRESSED = re.compile(r"behind|regress", re.IGNORECASE)


def put_back_with_checkout(repo: Path) -> None:
    git(repo, "checkout", "--", f"{STORE}/state")


def put_back_with_stash(repo: Path) -> None:
    git(repo, "stash", "push", "-q")


def put_back_with_a_branch_switch(repo: Path) -> None:
    commit_all(repo, "newer projections on main")
    git(repo, "switch", "-q", "before-updates")


PUT_BACK: dict[str, Callable[[Path], None]] = {
    "checkout": put_back_with_checkout, "stash": put_back_with_stash,
    "branch-switch": put_back_with_a_branch_switch,
}


async def regressed_plan(repo: Path, tmp_path: Path, put_back: Callable[[Path], None],
                         ) -> dict[str, Any]:
    """A plan committed at rev 1, updated to rev 4, its projection put back to rev 1 by git.
    Returns the plan as the journal has it."""
    store = str(repo / STORE)
    must_succeed(aj("--store", store, "init", cwd=repo), "init")
    with anyio.fail_after(SESSION_S):
        async with session(repo, tmp_path / "alice.err", "--store", store,
                           "--actor", "alice") as alice:
            plan = await ok(alice, "plan", title="Ship the parser", steps=["lexer"])
            commit_all(repo, "the plan at rev 1")
            git(repo, "branch", "before-updates")
            for title in ("parser", "tests", "docs"):
                latest = await ok(alice, "plan", plan_id=plan["item_id"], add_steps=[title])
    assert latest["entity_rev"] == 4
    assert projection_rev(repo, plan["item_id"]) == 4
    put_back(repo)
    assert projection_rev(repo, plan["item_id"]) == 1, "git did not put the projection back"
    return latest


def projection_rev(repo: Path, plan_id: str) -> int:
    doc = orjson.loads((repo / STORE / "state" / "plan" / f"{plan_id}.json").read_bytes())
    return int(doc["entity_rev"])


@pytest.mark.parametrize("how", list(PUT_BACK))
async def test_doctor_reports_a_projection_git_put_behind_the_journal(
    repo: Path, tmp_path: Path, how: str,
) -> None:
    plan = await regressed_plan(repo, tmp_path, PUT_BACK[how])
    done = aj("--store", str(repo / STORE), "doctor", cwd=repo)
    lines = [line for line in (done.stdout + done.stderr).splitlines()
             if plan["item_id"] in line and REGRESSED.search(line)]
    assert lines, (f"doctor does not report plan {plan['item_id']} at rev 1 while the journal "
                   f"has rev 4:\n{shown(done)}")


@pytest.mark.parametrize("how", list(PUT_BACK))
async def test_the_next_mutation_brings_a_regressed_projection_back_to_the_journal(
    repo: Path, tmp_path: Path, how: str,
) -> None:
    plan = await regressed_plan(repo, tmp_path, PUT_BACK[how])
    with anyio.fail_after(SESSION_S):
        async with session(repo, tmp_path / "bob.err", "--store", str(repo / STORE),
                           "--actor", "bob") as bob:
            await ok(bob, "remember", kind="note", title="unrelated", body="any entity")
    assert projection_rev(repo, plan["item_id"]) == plan["entity_rev"], (
        f"after a mutation the projection of {plan['item_id']} is still at rev "
        f"{projection_rev(repo, plan['item_id'])}; the journal has rev {plan['entity_rev']}")


async def test_doctor_repair_brings_a_regressed_projection_back_to_the_journal(
    repo: Path, tmp_path: Path,
) -> None:
    plan = await regressed_plan(repo, tmp_path, put_back_with_checkout)
    must_succeed(aj("--store", str(repo / STORE), "doctor", "--repair", cwd=repo), "repair")
    assert projection_rev(repo, plan["item_id"]) == plan["entity_rev"]
