"""A tool call must report what happened to its mutation truthfully. Once the journal's
fsync returned, the mutation is durable: a cache write that fails after it (a projection or
meta.json, for instance on a full disk) must not turn the answer into "not applied". A
failure before the fsync is "not applied" (and nothing is in the journal); an fsync that
fails leaves the outcome unknown, and the answer must say so.

In process, through the in-memory MCP client with FileIO fault plans (as the server suite
does), and, as root, on a real 3 MiB tmpfs filled to the last page.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from agentjournal.app import build_server
from mcp import Client
from mcp.types import Implementation
from trust_support import (
    SESSION_S,
    Outcome,
    aj,
    must_succeed,
    ok,
    outcome,
    session,
    tail_records,
)

from journal_core import FaultPlan, Store

pytestmark = pytest.mark.anyio
NOT_APPLIED = ("not applied", "nothing was written")
UNKNOWN = ("may have been applied", "unknown")
PAGE = 4096


async def call_with_faults(root: Path, plan: FaultPlan | None, tool: str,
                           **arguments: object) -> Outcome:
    """One tool call through an in-memory MCP client on a store whose FileIO follows
    ``plan`` for that call only."""
    store = Store(str(root))
    try:
        async with Client(build_server(store), cache=None,
                          client_info=Implementation(name="alice", version="0")) as client:
            await ok(client, "work")  # the store is open and read before the fault
            store.fileio.plan = plan
            try:
                return await outcome(client, tool, **arguments)
            finally:
                store.fileio.plan = None
    finally:
        store.close()


async def claims_in_journal(root: Path, target: str) -> int:
    """How many claim records on ``target`` another actor can read in the journal."""
    store = Store(str(root))
    try:
        async with Client(build_server(store), cache=None,
                          client_info=Implementation(name="auditor", version="0")) as client:
            unseen = await ok(client, "read_unseen", item_types=["claim"], limit=1000,
                              include_payload=True)
    finally:
        store.close()
    return sum(1 for event in unseen["events"]
               if (event.get("payload") or {}).get("target") == target)


async def test_a_claim_whose_cache_writes_fail_after_the_fsync_is_answered_as_applied(
    tmp_path: Path,
) -> None:
    root = tmp_path / "store"
    full_disk = FaultPlan(at=1, ops=frozenset({"write_file"}), persistent=True,
                          error_number=errno.ENOSPC)
    got = await call_with_faults(root, full_disk, "claim", target="file:a.py")
    assert full_disk.fired, "no projection or meta write was attempted"
    assert got.ok, f"a durable claim was answered as a failure: {got.text}"
    assert await claims_in_journal(root, "file:a.py") == 1


async def test_a_claim_whose_journal_write_fails_says_it_was_not_applied(tmp_path: Path) -> None:
    """The contrast: the append itself fails (nothing reached the journal)."""
    root = tmp_path / "store"
    failing = FaultPlan(at=1, ops=frozenset({"write"}), error_number=errno.ENOSPC)
    got = await call_with_faults(root, failing, "claim", target="file:a.py")
    assert failing.fired and not got.ok
    assert any(words in got.text.lower() for words in NOT_APPLIED), got.text
    assert await claims_in_journal(root, "file:a.py") == 0


async def test_a_claim_whose_fsync_fails_says_its_outcome_is_unknown(tmp_path: Path) -> None:
    root = tmp_path / "store"
    failing = FaultPlan(at=1, ops=frozenset({"fsync"}), error_number=errno.EIO)
    got = await call_with_faults(root, failing, "claim", target="file:a.py")
    assert failing.fired and not got.ok, got
    text = got.text.lower()
    assert not any(words in text for words in NOT_APPLIED), (
        f"the write reached the journal file but its fsync failed, and the answer claims it "
        f"was not applied: {got.text}")
    assert any(words in text for words in UNKNOWN), got.text


# -- a real full disk -------------------------------------------------------------------
@contextlib.contextmanager
def small_tmpfs(where: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a 3 MiB tmpfs (run the suite as root, e.g. in the "
                    "project's container, to fill a real file system)")
    where.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(where)],
                          capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}): needs CAP_SYS_ADMIN")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True, timeout=30)


def fill(folder: Path) -> Path:
    """Fill the file system of ``folder`` to its last byte."""
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as handle:
        for chunk in (1 << 20, PAGE, 1):
            while True:
                try:
                    handle.write(b"\0" * chunk)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC, exc
                    break
    return filler


def active_segment(root: Path) -> Path:
    return sorted((root / "events").glob("seg-*.jsonl"))[-1]


async def test_a_claim_on_a_full_disk_is_answered_as_applied_once_its_record_is_durable(
    tmp_path: Path,
) -> None:
    """The journal's last page has room for the claim's record, but nothing else does: the
    append and its fsync succeed, the projection (a new file) hits ENOSPC."""
    with small_tmpfs(tmp_path / "disk") as disk:
        root = disk / "store"
        must_succeed(aj("--store", str(root), "init", cwd=tmp_path), "init")
        log = tmp_path / "server.err"
        with anyio.fail_after(SESSION_S):
            async with session(tmp_path, log, "--store", str(root), "--actor", "alice") as alice:
                for number in range(12):  # until the last page has room for a claim
                    if 100 <= active_segment(root).stat().st_size % PAGE <= 2000:
                        break
                    await ok(alice, "remember", kind="note", title=f"n{number}", body="x" * 500)
                offset = active_segment(root).stat().st_size % PAGE
                assert 100 <= offset <= 2000, f"could not place the segment end ({offset})"
                filler = fill(disk)
                got = await outcome(alice, "claim", target="file:full.py")
                filler.unlink()
        assert got.ok, f"a durable claim on a full disk was answered as a failure: {got.text}"
        records = tail_records(tmp_path, "--store", str(root))
        claims = [r for r in records if r.get("item_type") == "claim"
                  and (r.get("payload") or {}).get("target") == "file:full.py"]
        assert len(claims) == 1, claims


# -- retries: request_id --------------------------------------------------------------------
async def memories_in_journal(root: Path, title: str) -> int:
    store = Store(str(root))
    try:
        async with Client(build_server(store), cache=None,
                          client_info=Implementation(name="auditor", version="0")) as client:
            unseen = await ok(client, "read_unseen", item_types=["memory"], limit=1000,
                              include_payload=True)
    finally:
        store.close()
    return sum(1 for event in unseen["events"]
               if (event.get("payload") or {}).get("title") == title)


async def test_a_repeat_with_the_same_request_id_returns_the_first_answer_and_writes_nothing(
    tmp_path: Path,
) -> None:
    root = tmp_path / "store"
    store = Store(str(root))
    try:
        async with Client(build_server(store), cache=None,
                          client_info=Implementation(name="alice", version="0")) as client:
            first = await ok(client, "remember", kind="decision", title="use tabs",
                             body="always", request_id="req-0001")
            head = (await ok(client, "journal_status"))["head_seq"]
            again = await ok(client, "remember", kind="decision", title="use tabs",
                             body="always", request_id="req-0001")
            head_after = (await ok(client, "journal_status"))["head_seq"]
            other = await ok(client, "remember", kind="decision", title="use tabs",
                             body="always", request_id="req-0001", actor="bob")
    finally:
        store.close()
    assert (again["item_id"], again["entity_rev"]) == (first["item_id"], first["entity_rev"]), (
        f"a repeat with the same request_id made {again['item_id']}; the first answer was "
        f"{first['item_id']}")
    assert head_after == head, "a repeat with the same request_id wrote to the journal"
    assert other["item_id"] != first["item_id"], "another actor's request_id is its own"
    assert await memories_in_journal(root, "use tabs") == 2


async def test_a_retry_with_the_same_request_id_after_a_failed_fsync_applies_once(
    tmp_path: Path,
) -> None:
    """The fsync failed, so the caller cannot know; a retry with the same request_id is
    safe: the mutation is in the journal once, whether or not the first attempt landed."""
    root = tmp_path / "store"
    failing = FaultPlan(at=1, ops=frozenset({"fsync"}), error_number=errno.EIO)
    arguments = {"kind": "decision", "title": "use tabs", "body": "always",
                 "request_id": "req-0002"}
    first = await call_with_faults(root, failing, "remember", **arguments)
    assert failing.fired and not first.ok
    retry = await call_with_faults(root, None, "remember", **arguments)
    assert retry.ok, retry.text
    assert await memories_in_journal(root, "use tabs") == 1, (
        "a retry with the same request_id after a failed fsync applied the mutation twice")
