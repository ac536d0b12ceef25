"""Bad input over MCP: wrong types, huge strings, unicode edge cases, path-like
ids, out-of-range ttls, unknown families and tools. Each is a tool error whose message says
what is wrong, and the store is byte-for-byte unchanged. Valid but unusual input (emoji,
right-to-left marks, NUL) round-trips exactly; path-like actors stay inside the store.

Through the in-memory MCP client of tests/server/conftest.py (the client is 'alice').
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from support.mcp import call, text_of

from journal_core import Store, limits

pytestmark = pytest.mark.anyio

HUGE = "x" * (2 * 1024 * 1024)
LONE_SURROGATE = "\ud800"
PATHS = ["../../etc/passwd", "/etc/passwd", "pln_../../x", "pln_a/b", "pln_a\\b", "PLN_ABC",
         "pln_" + "a" * 100, "pln_\x00", "pln_%2e%2e", "", ".", "..", "pln_a b"]


def store_files(root: Path) -> dict[str, bytes]:
    """Every file of the store but the lock (its holder note changes on any lock take)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != "lock"}


@pytest.fixture
async def seeded(client: Client) -> dict[str, str]:
    """A plan, a claim held by alice, a memory item and a handoff to refer to."""
    plan = await call(client, "plan", title="ship", steps=["lexer", "parser"])
    claim = await call(client, "claim", target="file:a.py")
    memory = await call(client, "remember", kind="decision", title="t", body="b")
    handoff = await call(client, "send", kind="handoff", to="alice", body="take it")
    return {"plan": plan["item_id"], "claim": claim["item_id"], "memory": memory["item_id"],
            "handoff": handoff["item_id"]}


async def refused(client: Client, store_path: Path, tool: str, arguments: dict[str, Any],
                  *hints: str) -> str:
    """The call is a tool error naming one of ``hints``, and the store did not change."""
    before = store_files(store_path)
    result = await client.call_tool(tool, arguments)
    message = text_of(result)
    assert result.is_error, f"{tool}({short(arguments)}) succeeded: {message[:200]}"
    assert message.strip() != f"Error executing tool {tool}", \
        f"{tool}({short(arguments)}): a bare error tells the agent nothing"
    assert any(h.lower() in message.lower() for h in hints), \
        f"{tool}({short(arguments)}): {message[:300]!r} names none of {hints}"
    assert store_files(store_path) == before, f"{tool}({short(arguments)}) wrote to the store"
    return message


def short(arguments: dict[str, Any]) -> str:
    return ", ".join(f"{k}={str(v)[:40]!r}" for k, v in arguments.items())


# -- wrong types -----------------------------------------------------------------------------------
WRONG_TYPES = [
    ("claim", {"target": "file:b.py", "ttl_s": "abc"}, "ttl_s"),
    ("claim", {"target": "file:b.py", "ttl_s": 1.5}, "ttl_s"),
    ("claim", {"target": ["file:b.py"]}, "target"),
    ("claim", {"target": None}, "target"),
    ("remember", {"kind": "decision", "title": 123, "body": "b"}, "title"),
    ("remember", {"kind": "decision", "title": "t", "body": "b", "tags": "x"}, "tags"),
    ("remember", {"kind": "decision", "title": "t", "body": {"nested": 1}}, "body"),
    ("plan", {"title": "t", "steps": [1, 2]}, "steps"),
    ("plan", {"title": "t", "steps": "one step"}, "steps"),
    ("read_unseen", {"limit": "ten"}, "limit"),
    ("read_unseen", {"advance": "yes please"}, "advance"),
    ("ack", {"up_to_seq": "one"}, "up_to_seq"),
    ("ack", {"up_to_seq": -1}, "up_to_seq"),
    ("list", {"item_type": 7}, "item_type"),
    ("search", {"query": ["a"]}, "query"),
    ("send", {"to": 5, "body": "b"}, "to"),
    ("remember", {"kind": "decision", "title": "t"}, "body"),
    ("get", {"item_type": "plan"}, "item_id"),
]


@pytest.mark.parametrize(("tool", "arguments", "hint"), WRONG_TYPES,
                         ids=[f"{t}-{h}-{i}" for i, (t, _, h) in enumerate(WRONG_TYPES)])
async def test_a_wrong_type_is_a_tool_error_and_writes_nothing(
    client: Client, store_path: Path, seeded: dict[str, str], tool: str,
    arguments: dict[str, Any], hint: str,
) -> None:
    await refused(client, store_path, tool, arguments, hint)


async def test_a_step_update_of_the_wrong_shape_is_a_tool_error(
    client: Client, store_path: Path, seeded: dict[str, str],
) -> None:
    plan = seeded["plan"]
    for updates in ([{"id": 5}], [{"status": "done"}], [{"id": "s1", "status": "finished"}],
                    [{"id": "s1", "surprise": 1}], "s1=done", [{"id": "s9", "status": "done"}]):
        await refused(client, store_path, "plan", {"plan_id": plan, "step_updates": updates},
                      "step", "id", "status", "surprise")


# -- huge strings ----------------------------------------------------------------------------------
HUGE_CASES = [
    ("remember", {"kind": "note", "title": "t", "body": HUGE}, "body"),
    ("remember", {"kind": "note", "title": "t" * 10_000, "body": "b"}, "title"),
    ("remember", {"kind": "note", "title": "t", "body": "b", "tags": ["x"] * 1000}, "tags"),
    ("remember", {"kind": "note", "title": "t", "body": "b", "tags": ["x" * 1000]}, "tag"),
    ("claim", {"target": "file:" + "a" * 100_000}, "target"),
    ("claim", {"target": "file:b.py", "note": HUGE}, "note"),
    ("send", {"to": "bob", "body": HUGE}, "body"),
    ("send", {"to": "b" * 10_000, "body": "hi"}, "to"),
    ("send", {"to": "bob", "body": "hi", "thread": "t" * 10_000}, "thread"),
    ("send", {"kind": "handoff", "to": "bob", "body": "b", "summary": "s" * 10_000},
     "summary"),
    ("send", {"kind": "handoff", "to": "bob", "body": "b", "context": "c" * (20 * 2**20)},
     "bytes", "context"),
    ("plan", {"title": "t", "steps": ["s"] * 1000}, "steps"),
    ("plan", {"title": "t", "goal": HUGE}, "goal"),
    ("work", {"actor": "a" * 10_000}, "actor"),
    ("search", {"query": "q" * 10_000}, "query"),
    ("list", {"item_type": "plan", "after": "x" * 10_000}, "after"),
]


@pytest.mark.parametrize(("tool", "arguments", "hint"), [c[:3] for c in HUGE_CASES],
                         ids=[f"{c[0]}-{c[2]}-{i}" for i, c in enumerate(HUGE_CASES)])
async def test_a_huge_string_is_a_tool_error_and_writes_nothing(
    client: Client, store_path: Path, seeded: dict[str, str], tool: str,
    arguments: dict[str, Any], hint: str,
) -> None:
    await refused(client, store_path, tool, arguments, hint, "too long", "at most", "bytes")


# -- unicode ---------------------------------------------------------------------------------------
async def test_a_lone_surrogate_anywhere_is_a_tool_error_and_writes_nothing(
    client: Client, store_path: Path, seeded: dict[str, str],
) -> None:
    bad = f"a{LONE_SURROGATE}b"
    cases: list[tuple[str, dict[str, Any]]] = [
        ("remember", {"kind": "note", "title": bad, "body": "b"}),
        ("remember", {"kind": "note", "title": "t", "body": bad}),
        ("remember", {"kind": "note", "title": "t", "body": "b", "tags": [bad]}),
        ("remember", {"kind": "note", "title": "t", "body": "b", "actor": bad}),
        ("claim", {"target": bad}),
        ("claim", {"target": "file:c.py", "note": bad}),
        ("send", {"to": "bob", "body": "hi", "thread": bad}),
        ("send", {"to": bad, "body": "hi"}),
        ("send", {"kind": "handoff", "to": "bob", "body": "b", "context": bad}),
        ("plan", {"title": "t", "steps": [bad]}),
        ("complete", {"claim_id": seeded["claim"], "result": bad}),
        ("forget", {"memory_id": seeded["memory"], "reason": bad}),
        ("ack", {"up_to_seq": 1, "actor": bad}),
        ("work", {"actor": bad}),
    ]
    for tool, arguments in cases:
        await refused(client, store_path, tool, arguments, "unicode", "utf-8", "surrogate",
                      "invalid", "valid string")


async def test_a_refused_actor_never_leaves_the_store_lock_held(
    client: Client, store: Store, seeded: dict[str, str],
) -> None:
    """An actor the holder note cannot encode took the lock and never released it: every
    other writer then timed out."""
    await client.call_tool("remember", {"kind": "note", "title": "t", "body": "b",
                                        "actor": f"x{LONE_SURROGATE}"})
    assert not store.journal.lock.held
    other = Store(store.root)
    try:
        outcome: list[BaseException | None] = []
        thread = threading.Thread(target=lambda: outcome.append(try_a_write(other)))
        thread.start()
        thread.join(timeout=30)
        assert outcome == [None]
    finally:
        other.close()


def try_a_write(store: Store) -> BaseException | None:
    from journal_core import verbs

    try:
        store.mutate("bob", lambda m: verbs.remember(m, "note", "t", "b"), lock_wait_s=2)
    except BaseException as exc:  # returned to the test thread, which asserts on it
        return exc
    return None


UNUSUAL_BUT_VALID = ["emoji \U0001f600\U0001f469\u200d\U0001f4bb", "rtl \u202eevil\u202c",
                     "nul \x00 inside", "combining e\u0301\u0301", "cjk \u6f22\u5b57",
                     "bidi \u05e9\u05dc\u05d5\u05dd", "ZW\u200b\ufeff", "max \U0010ffff"]


@pytest.mark.parametrize("text", UNUSUAL_BUT_VALID)
async def test_unusual_but_valid_unicode_round_trips_exactly(
    client: Client, text: str,
) -> None:
    saved = await call(client, "remember", kind="note", title=text, body=text, tags=[text])
    got = await call(client, "get", item_type="memory", item_id=saved["item_id"])
    assert got["entity"]["title"] == text.strip() and got["entity"]["body"] == text.strip()
    message = await call(client, "send", to="*", body=text, thread=text)
    assert (await call(client, "get", item_type="message",
                       item_id=message["item_id"]))["entity"]["body"] == text.strip()


# -- path-like ids and actors ----------------------------------------------------------------------
@pytest.mark.parametrize("item_id", PATHS)
async def test_a_path_like_id_is_a_tool_error_and_writes_nothing(
    client: Client, store_path: Path, seeded: dict[str, str], item_id: str,
) -> None:
    hints = ("id", "item_id", "claim_id", "memory_id", "plan_id")
    for tool, arguments in [
        ("get", {"item_type": "plan", "item_id": item_id}),
        ("release", {"claim_id": item_id}), ("complete", {"claim_id": item_id}),
        ("renew", {"claim_id": item_id}), ("forget", {"memory_id": item_id}),
        ("plan", {"plan_id": item_id, "goal": "g"}),
        ("remember", {"kind": "note", "title": "t", "body": "b", "supersedes": item_id}),
        ("claim", {"target": f"step:{item_id}/s1"}),
    ]:
        await refused(client, store_path, tool, arguments, *hints, "target", "step")


@pytest.mark.parametrize("actor", ["../../outside", "/abs/path", "..", ".", "a/../../b",
                                   "con", "nul.json", "~root"])
async def test_a_path_like_actor_keeps_its_cursor_inside_the_store(
    client: Client, store_path: Path, tmp_path: Path, actor: str,
) -> None:
    outside_before = sorted(p.name for p in tmp_path.iterdir())
    head = (await call(client, "journal_status"))["head_seq"]
    await call(client, "ack", actor=actor, up_to_seq=head)
    assert (await call(client, "read_unseen", actor=actor))["last_seq"] == head
    assert sorted(p.name for p in tmp_path.iterdir()) == outside_before
    cursors = list((store_path / "cursors").iterdir())
    assert len(cursors) == 1 and cursors[0].parent == store_path / "cursors"


# -- ttl, families, tools --------------------------------------------------------------------------
@pytest.mark.parametrize("ttl_s", [-1, 0, -(2**63), limits.claim_ttl_s_max + 1, 2**70])
async def test_an_out_of_range_ttl_is_a_tool_error_and_writes_nothing(
    client: Client, store_path: Path, seeded: dict[str, str], ttl_s: int,
) -> None:
    await refused(client, store_path, "claim", {"target": "file:b.py", "ttl_s": ttl_s}, "ttl_s")
    await refused(client, store_path, "renew", {"claim_id": seeded["claim"], "ttl_s": ttl_s},
                  "ttl_s")


@pytest.mark.parametrize("family", ["secret", "journal", "Plan", "plans", "../state", "",
                                    "claim\x00", "memory "])
async def test_an_unknown_family_is_a_tool_error_and_writes_nothing(
    client: Client, store_path: Path, seeded: dict[str, str], family: str,
) -> None:
    await refused(client, store_path, "get", {"item_type": family, "item_id": seeded["plan"]},
                  "item_type")
    await refused(client, store_path, "list", {"item_type": family}, "item_type")
    await refused(client, store_path, "search", {"query": "t", "item_types": [family]},
                  "item_types")
    if family != "journal":  # journal notes are a family of events, not of entities
        await refused(client, store_path, "read_unseen", {"item_types": [family]},
                      "item_types")


async def test_an_unknown_tool_is_a_tool_error_and_writes_nothing(
    client: Client, store_path: Path, seeded: dict[str, str],
) -> None:
    for name in ("delete", "../work", "doctor", "", "work\x00"):
        await refused(client, store_path, name, {}, "unknown tool")
