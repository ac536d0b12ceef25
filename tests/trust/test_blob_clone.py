"""A store that holds a blob, committed to git, then cloned (or cleaned in place with
``git clean -fdx``): the clone carries the projections and checkpoints but no segments and
no blobs. It must open, open again, and serve the entity whose payload is in the blob."""

from __future__ import annotations

from pathlib import Path

import anyio
import orjson
import pytest
from trust_support import (
    SESSION_S,
    aj,
    clone,
    commit_all,
    git,
    must_succeed,
    ok,
    outcome,
    session,
    shown,
    snapshot,
    snapshot_changes,
)

pytestmark = pytest.mark.anyio
STORE = ".agentjournal"
CONTEXT_BYTES = 70 * 1024  # over the 64 KiB inline limit: the payload goes to a blob


def big_context() -> str:
    lines = [f"diff line {n:06d}: + a change that is long enough to matter\n"
             for n in range(CONTEXT_BYTES // 50)]
    text = "".join(lines)
    assert len(text.encode()) > 64 * 1024
    return text


async def store_with_a_blob_committed(repo: Path, tmp_path: Path) -> tuple[str, str]:
    """Today's layout at repo/.agentjournal: a handoff whose context is in a blob, a
    checkpoint, everything git tracks committed. Returns (handoff id, context)."""
    must_succeed(aj("--store", str(repo / STORE), "init", cwd=repo), "init")
    context = big_context()
    with anyio.fail_after(SESSION_S):
        async with session(repo, tmp_path / "alice.err", "--store", str(repo / STORE),
                           "--actor", "alice") as alice:
            handoff = await ok(alice, "send", to="bob", kind="handoff",
                               body="take over the parser", context=context)
    blobs = repo / STORE / "events" / "blobs"
    assert blobs.is_dir() and any(blobs.rglob("*")), "the context did not go to a blob"
    must_succeed(aj("--store", str(repo / STORE), "doctor", "--compact", cwd=repo),
                 "doctor --compact")
    commit_all(repo, "agentjournal state")
    return handoff["item_id"], context


async def assert_opens_and_serves(root: Path, handoff_id: str, context: str,
                                  tmp_path: Path) -> None:
    store = str(root / STORE)
    first = aj("--store", store, "status", cwd=root)
    assert first.returncode == 0, f"the first status of the store failed:\n{shown(first)}"
    second = aj("--store", store, "status", cwd=root)
    assert second.returncode == 0, f"the second status of the store failed:\n{shown(second)}"
    with anyio.fail_after(SESSION_S):
        async with session(root, tmp_path / "bob.err", "--store", store,
                           "--actor", "bob") as bob:
            got = await ok(bob, "get", item_type="handoff", item_id=handoff_id)
            served = got["entity"].get("context", "")
            page = got
            while page["entity"].get("context_next"):  # a long context comes in pages
                page = await ok(bob, "get", item_type="handoff", item_id=handoff_id,
                                context_from=page["entity"]["context_next"])
                served += page["entity"]["context"]
    assert served == context or "content missing" in str(got).lower(), (
        f"get served neither the context nor 'content missing': {str(got)[:300]}")
    assert served == context, "the projection holds the context: it must be served"


async def test_a_clone_of_a_store_with_a_blob_opens_twice_and_serves_the_blob_payload(
    repo: Path, tmp_path: Path,
) -> None:
    handoff_id, context = await store_with_a_blob_committed(repo, tmp_path)
    copy = clone(repo, tmp_path / "clone")
    assert not (copy / STORE / "events" / "blobs").exists()  # git does not carry blobs
    await assert_opens_and_serves(copy, handoff_id, context, tmp_path)


async def test_a_store_with_a_blob_opens_twice_after_git_clean_fdx(
    repo: Path, tmp_path: Path,
) -> None:
    handoff_id, context = await store_with_a_blob_committed(repo, tmp_path)
    git(repo, "clean", "-fdxq")
    assert not (repo / STORE / "events" / "blobs").exists()
    await assert_opens_and_serves(repo, handoff_id, context, tmp_path)


async def test_an_open_that_fails_creates_nothing_on_disk(repo: Path, tmp_path: Path) -> None:
    """A clone whose store.json is damaged cannot be opened (no store id): the refusal
    leaves the folder exactly as it was (no lock, no segment, no meta)."""
    await store_with_a_blob_committed(repo, tmp_path)
    copy = clone(repo, tmp_path / "clone")
    (copy / STORE / "store.json").write_text("{not json", encoding="utf-8")
    before = snapshot(copy / STORE)
    done = aj("--store", str(copy / STORE), "status", cwd=copy)
    assert done.returncode != 0, f"a store without a readable store.json opened:\n{shown(done)}"
    assert "traceback" not in done.stderr.lower(), shown(done)
    changes = snapshot_changes(before, snapshot(copy / STORE))
    assert not changes, f"a failed open changed the store folder: {changes}"


async def context_answer(root: Path, handoff_id: str, tmp_path: Path) -> str:
    """What ``get`` of the handoff answers on the store at ``root`` (result or error)."""
    with anyio.fail_after(SESSION_S):
        async with session(root, tmp_path / "carol.err", "--store", str(root / STORE),
                           "--actor", "carol") as carol:
            found = await outcome(carol, "get", item_type="handoff", item_id=handoff_id)
    return found.text


async def test_a_clone_without_the_blob_or_its_projection_opens_and_says_content_missing(
    repo: Path, tmp_path: Path,
) -> None:
    handoff_id, context = await store_with_a_blob_committed(repo, tmp_path)
    copy = clone(repo, tmp_path / "clone")
    (copy / STORE / "state" / "handoff" / f"{handoff_id}.json").unlink()
    status = aj("--store", str(copy / STORE), "status", cwd=copy)
    assert status.returncode == 0, f"status of the clone failed:\n{shown(status)}"
    answer = await context_answer(copy, handoff_id, tmp_path)
    assert "content missing" in answer.lower(), f"get did not say 'content missing': {answer[:300]}"
    assert context not in answer


async def test_a_clone_whose_projection_does_not_match_the_blob_hash_says_content_missing(
    repo: Path, tmp_path: Path,
) -> None:
    """The projection is the only copy of the payload on the clone; one whose payload does
    not hash to the blob's sha256 (edited in the repository) is not served as the content."""
    handoff_id, context = await store_with_a_blob_committed(repo, tmp_path)
    copy = clone(repo, tmp_path / "clone")
    projection = copy / STORE / "state" / "handoff" / f"{handoff_id}.json"
    doc = orjson.loads(projection.read_bytes())
    forged = context.replace("diff line 000001", "diff line 666666")
    doc["payload"]["context"] = forged
    projection.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    status = aj("--store", str(copy / STORE), "status", cwd=copy)
    assert status.returncode == 0, f"status of the clone failed:\n{shown(status)}"
    answer = await context_answer(copy, handoff_id, tmp_path)
    assert "666666" not in answer, "get served a context that does not match the blob's sha256"
    assert "content missing" in answer.lower(), f"get did not say 'content missing': {answer[:300]}"
