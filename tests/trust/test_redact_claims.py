"""``doctor --redact`` of the record of an active claim, or of the plan a claim works on,
must not break what the claim is for: exclusion (no other actor can take the target) and
its holder's right to release or complete it. Whether the redaction goes through or is
refused, that must hold; servers already open and servers started afterwards agree."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from trust_support import SESSION_S, Outcome, aj, must_succeed, ok, outcome, session

pytestmark = pytest.mark.anyio
HOUR_S = 3600


def redact(root: Path, seq: int) -> None:
    done = aj("--store", str(root), "doctor", "--redact", str(seq), "--reason",
              "a secret in a note", cwd=root.parent)
    assert "traceback" not in done.stderr.lower(), done.stderr


def held_by_alice_problems(found: Outcome, who: str) -> list[str]:
    if found.ok:
        return [f"{who} took file:x, held by alice, after its claim record was redacted"]
    if "claimed by" not in found.text.lower() or "alice" not in found.text:
        return [f"{who}'s claim of file:x was refused, but not because alice holds it: "
                f"{found.text}"]
    return []


async def test_a_redacted_active_claim_still_excludes_others_and_its_holder_can_release_it(
    tmp_path: Path,
) -> None:
    root = tmp_path / "store"
    must_succeed(aj("--store", str(root), "init", cwd=tmp_path), "init")
    store = ("--store", str(root))
    with anyio.fail_after(3 * SESSION_S):
        async with (
            session(tmp_path, tmp_path / "a.err", *store, "--actor", "alice") as alice,
            session(tmp_path, tmp_path / "b.err", *store, "--actor", "bob") as bob,
        ):
            claim = await ok(alice, "claim", target="file:x", ttl_s=HOUR_S,
                             note="rotating the key 0xdeadbeef")
            await ok(bob, "work")  # bob's server is open and has read the journal
            redact(root, claim["seq"])
            by_bob = await outcome(bob, "claim", target="file:x")  # an open server
        async with session(tmp_path, tmp_path / "c.err", *store, "--actor", "carol") as carol:
            by_carol = await outcome(carol, "claim", target="file:x")  # a new server
        async with session(tmp_path, tmp_path / "a2.err", *store, "--actor", "alice") as alice:
            released = await outcome(alice, "release", claim_id=claim["item_id"])
        async with session(tmp_path, tmp_path / "c2.err", *store, "--actor", "carol") as carol:
            taken = await outcome(carol, "claim", target="file:x")
    problems = held_by_alice_problems(by_bob, "bob (a server open during the redaction)")
    problems += held_by_alice_problems(by_carol, "carol (a server started after it)")
    if not released.ok:
        problems.append(f"alice cannot release her claim after its redaction: {released.text}")
    elif not taken.ok:
        problems.append(f"carol cannot claim file:x once alice released it: {taken.text}")
    assert not problems, "\n".join(problems)
    assert taken.content is not None and taken.content["entity"]["holder"] == "carol"


async def test_a_step_claim_completes_after_its_plan_record_is_redacted(tmp_path: Path) -> None:
    root = tmp_path / "store"
    must_succeed(aj("--store", str(root), "init", cwd=tmp_path), "init")
    store = ("--store", str(root))
    with anyio.fail_after(3 * SESSION_S):
        async with session(tmp_path, tmp_path / "a.err", *store, "--actor", "alice") as alice:
            plan = await ok(alice, "plan", title="Rotate the key sk-live-123",
                            steps=["revoke", "reissue"])
            claim = await ok(alice, "claim", target=f"step:{plan['item_id']}/s1", ttl_s=HOUR_S)
            current = await ok(alice, "get", item_type="plan", item_id=plan["item_id"])
            redact(root, current["seq"])
            done = await outcome(alice, "complete", claim_id=claim["item_id"], result="revoked")
    assert done.ok, f"completing a step claim failed after its plan was redacted: {done.text}"
    assert done.content is not None and done.content["entity"]["status"] == "completed"
