"""``agentjournal import`` must check what a slice says about identities, not only its
hash: an attacker who alters a slice recomputes the header's body_sha256 and counts. A
slice whose record for one plan carries another plan's id in its payload, or whose claim
expires in the year 9999 with a 60 s ttl, is refused whole, and the importing store stays
byte-for-byte as it was."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest
from trust_support import SESSION_S, aj, must_succeed, ok, said, session, shown, snapshot

pytestmark = pytest.mark.anyio
Tamper = Callable[[dict[str, Any], dict[str, str]], bool]


async def two_stores(tmp_path: Path) -> tuple[Path, Path, dict[str, str]]:
    """Store A (a plan and a claim, ttl 60 s) and store B (a plan of its own)."""
    ids: dict[str, str] = {}
    for name in ("a", "b"):
        root = tmp_path / name
        must_succeed(aj("--store", str(root), "init", cwd=tmp_path), f"init {name}")
        with anyio.fail_after(SESSION_S):
            async with session(tmp_path, tmp_path / f"{name}.err", "--store", str(root),
                               "--actor", f"agent-{name}") as client:
                ids[f"plan_{name}"] = (await ok(client, "plan", title=f"plan of {name}",
                                                steps=["one"]))["item_id"]
                if name == "a":
                    ids["claim_a"] = (await ok(client, "claim", target="file:shared.py",
                                               ttl_s=60))["item_id"]
    return tmp_path / "a", tmp_path / "b", ids


def tampered_slice(source: Path, out: Path, tamper: Tamper, ids: dict[str, str]) -> Path:
    """Export ``source``, change its records with ``tamper``, and recompute the header's
    sha256 and counts as an attacker would."""
    exported = out.with_suffix(".orig")
    must_succeed(aj("--store", str(source), "export", "--out", str(exported),
                    cwd=source.parent), "export")
    header_line, *lines = exported.read_bytes().split(b"\n")
    items = [orjson.loads(line) for line in lines if line.strip()]
    changed = [item for item in items if "blob" not in item and tamper(item, ids)]
    assert changed, "the slice holds no record to tamper with"
    body = b"".join(orjson.dumps(item) + b"\n" for item in items)
    header = orjson.loads(header_line)
    header.update(body_sha256=hashlib.sha256(body).hexdigest(),
                  records=sum(1 for item in items if "blob" not in item),
                  blobs=sum(1 for item in items if "blob" in item))
    out.write_bytes(orjson.dumps(header) + b"\n" + body)
    return out


def store_files(root: Path) -> dict[str, str]:
    """The store's journal, checkpoints, meta, projections and identity (not the lock's
    holder note nor cursors)."""
    return snapshot(root, skip=("lock", "cursors"))


def another_plans_id(item: dict[str, Any], ids: dict[str, str]) -> bool:
    if item.get("item_id") == ids["plan_a"] and isinstance(item.get("payload"), dict):
        item["payload"]["id"] = ids["plan_b"]
        return True
    return False


def eternal_claim(item: dict[str, Any], ids: dict[str, str]) -> bool:
    if item.get("item_id") == ids["claim_a"] and isinstance(item.get("payload"), dict):
        assert item["payload"]["ttl_s"] == 60
        item["payload"]["expires_at"] = "9999-12-31T00:00:00.000000Z"
        return True
    return False


@pytest.mark.parametrize(("tamper", "words"), [
    (another_plans_id, re.compile(r"\bid\b|item_id")),
    (eternal_claim, re.compile(r"expires_at")),
], ids=["a-payload-with-another-plans-id", "a-claim-expiring-in-9999"])
async def test_import_refuses_a_rehashed_slice_that_lies_about_identities(
    tmp_path: Path, tamper: Tamper, words: re.Pattern[str],
) -> None:
    source, target, ids = await two_stores(tmp_path)
    forged = tampered_slice(source, tmp_path / "forged.slice", tamper, ids)
    before = store_files(target)
    done = aj("--store", str(target), "import", str(forged), cwd=tmp_path)
    after = store_files(target)
    assert done.returncode != 0, f"the forged slice was imported:\n{shown(done)}"
    assert words.search(said(done)), f"the refusal does not name the field:\n{shown(done)}"
    assert "traceback" not in done.stderr.lower(), shown(done)
    assert after == before, "a refused import changed the importing store"
