"""``doctor --redact`` killed (SIGKILL) right after one of its renames into
events/checkpoints/, on a store whose oldest segments gc archived (so opening it needs a
checkpoint that verifies): the store must still open, the same redaction run again must
finish it, and afterwards the secret is nowhere in state/, the checkpoints or the segments.
A server started while the redaction sits between its checkpoint rewrite and its final
note must start too.

The store is built through the journal_core API with small segments (so it rolls, and gc
has segments to archive); everything after that is the CLI and stdio servers.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest
from support.reliability import READY_WAIT_S, Pump, spawn
from trust_support import (
    SESSION_S,
    aj,
    cli_env,
    files_containing,
    must_succeed,
    session,
    shown,
)

from journal_core import Mutation, Store, StoreConfig, verbs

SECRET = "SECRET-api-key-7f3a9c1e55d0"
HOOK = Path(__file__).with_name("rename_hook.py")
SMALL_SEGMENTS = StoreConfig(segment_bytes_max=8192)
NOTE_BODY = "a note about the parser; " * 60  # ~1.5 KB: a few records fill a segment
HOOK_S = 60


def build_gcd_store(root: Path) -> int:
    """A store whose first segments are archived, with several checkpoints that all hold
    the secret; returns the seq of the record that carries it."""
    must_succeed(aj("--store", str(root), "init", cwd=root.parent), "init")
    with Store(str(root), SMALL_SEGMENTS) as store:
        key, _ = store.mutate("alice", lambda m: verbs.remember(
            m, "fact", "deploy credentials", f"the key is {SECRET}"))
        secret_seq = int(store.entity_view(*key)["seq"])
    for notes in (12, 6, 6):
        with Store(str(root), SMALL_SEGMENTS) as store:
            for number in range(notes):
                store.mutate("bob", note_verb(f"note {number}"))
        must_succeed(aj("--store", str(root), "doctor", "--compact", cwd=root.parent),
                     "doctor --compact")
    must_succeed(aj("--store", str(root), "doctor", "--gc", cwd=root.parent), "doctor --gc")
    archived = list((root / "events" / "archive").glob("seg-*.jsonl"))
    assert archived, "gc archived no segment: the store does not need its checkpoints"
    return secret_seq


def note_verb(title: str) -> Callable[[Mutation], tuple[str, str]]:
    return lambda m: verbs.remember(m, "note", title, NOTE_BODY)


def redact_with_hook(root: Path, seq: int, at: int, then: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(HOOK), "--dir", str(root / "events" / "checkpoints"),
               "--at", str(at), "--then", then, "--", "--store", str(root), "doctor",
               "--redact", str(seq), "--reason", "credentials pasted into a memory"]
    return subprocess.run(command, cwd=root.parent, env=cli_env(), capture_output=True,
                          text=True, timeout=HOOK_S, stdin=subprocess.DEVNULL)


def renames_of(done: subprocess.CompletedProcess[str]) -> int:
    lines = [line for line in done.stdout.splitlines() if line.startswith("RENAMES ")]
    assert lines, f"the redaction child did not report its renames:\n{shown(done)}"
    return int(lines[-1].split()[1])


def secret_holders(root: Path) -> list[str]:
    needle = SECRET.encode()
    hits = [f"state/{p}" for p in files_containing(root / "state", needle)]
    hits += [f"events/{p}" for p in files_containing(root / "events", needle)
             if p.startswith(("checkpoints/", "seg-", "archive/seg-"))]
    return hits


@pytest.fixture
def template(tmp_path: Path) -> tuple[Path, int]:
    root = tmp_path / "template" / "store"
    root.parent.mkdir()
    return root, build_gcd_store(root)


def copy_of(template: Path, target: Path) -> Path:
    target.parent.mkdir(parents=True)
    shutil.copytree(template, target, symlinks=True)
    return target


def test_a_redaction_killed_after_any_checkpoint_rename_leaves_an_openable_store(
    template: tuple[Path, int], tmp_path: Path,
) -> None:
    source, seq = template
    counted = redact_with_hook(copy_of(source, tmp_path / "count" / "store"), seq, 0, "count")
    must_succeed(counted, "the redaction (no kill)")
    total = renames_of(counted)
    assert total >= 1, "the redaction renamed nothing into events/checkpoints/"
    for at in range(1, total + 1):
        root = copy_of(source, tmp_path / f"kill-{at}" / "store")
        killed = redact_with_hook(root, seq, at, "kill")
        assert killed.returncode == -signal.SIGKILL, (
            f"the redaction was not killed at checkpoint rename {at}:\n{shown(killed)}")
        where = f"after a kill right after checkpoint rename {at} of {total}"
        status = aj("--store", str(root), "status", cwd=root.parent)
        assert status.returncode == 0, f"status failed {where}:\n{shown(status)}"
        again = aj("--store", str(root), "doctor", "--redact", str(seq), "--reason",
                   "credentials pasted into a memory", cwd=root.parent)
        assert again.returncode == 0, f"the same redaction failed {where}:\n{shown(again)}"
        status = aj("--store", str(root), "status", cwd=root.parent)
        assert status.returncode == 0, f"status failed after the rerun {where}:\n{shown(status)}"
        assert not secret_holders(root), (
            f"the secret is still in {secret_holders(root)} {where} and a rerun")


@pytest.mark.anyio
async def test_a_server_starts_while_a_redaction_is_between_its_checkpoint_rewrite_and_note(
    template: tuple[Path, int], tmp_path: Path,
) -> None:
    source, seq = template
    counted = redact_with_hook(copy_of(source, tmp_path / "count" / "store"), seq, 0, "count")
    total = renames_of(counted)
    root = copy_of(source, tmp_path / "paused" / "store")
    command = [sys.executable, str(HOOK), "--dir", str(root / "events" / "checkpoints"),
               "--at", str(total), "--then", "pause", "--", "--store", str(root), "doctor",
               "--redact", str(seq), "--reason", "credentials pasted into a memory"]
    with open(tmp_path / "redact.err", "wb") as errlog:
        child = spawn("redact", command, errlog, stdin=True, env=cli_env())
        pump = Pump([child])
        try:
            pump.wait_until(lambda: "PAUSED" in child.lines, READY_WAIT_S,
                            "the redaction to pause after its last checkpoint rewrite")
            log = tmp_path / "server.err"
            try:
                with anyio.fail_after(SESSION_S):
                    async with session(root.parent, log, "--store", str(root),
                                       "--actor", "carol") as carol:
                        tools = await carol.list_tools()
            except Exception as exc:
                raise AssertionError(
                    f"a server did not start while the redaction was between its checkpoint "
                    f"rewrite and its note: {exc!r}\n{log.read_text(errors='replace')[-800:]}"
                ) from exc
            assert any(tool.name == "get" for tool in tools.tools)
            child.send("go on\n")
            pump.drain()
        finally:
            child.kill()
            child.reap()
            child.close_pipes()
            pump.close()
