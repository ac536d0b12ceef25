"""Fuzzing the MCP tool arguments with hypothesis, through the in-memory client.

Each example calls one tool with arguments drawn from its input schema's names: plausible
values (real ids, step targets, small numbers) mixed with arbitrary JSON (huge and negative
numbers, lone surrogates, path-like strings, nested lists and objects), required names
sometimes left out and unknown names added. Whatever comes in:
  - the answer is a result, never a protocol error (a store fault on bad input is a bug);
  - a refused call is a tool error whose message says more than "Error executing tool";
  - a refused call writes nothing (the store's bytes are compared before and after);
  - an accepted call returns structured content, and the store lock is never left held.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from agentjournal.app import build_server
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client, MCPError
from mcp.types import Implementation
from support.mcp import text_of

from journal_core import Store, verbs

QUICK = settings(max_examples=300, deadline=None, database=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
LONG = settings(max_examples=5000, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@dataclass
class Session:
    portal: BlockingPortal
    client: Client
    store: Store
    root: Path
    schemas: dict[str, dict[str, Any]]
    ids: dict[str, str]
    accepted: int = 0
    refused: int = 0


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory,
            summary_lines: list[str]) -> Iterator[Session]:
    root = tmp_path_factory.mktemp("fuzz-tools") / "store"
    store = Store(str(root))
    (_, plan), _ = store.mutate("alice", lambda m: verbs.plan_create(m, "p", "", ["a", "b"]))
    (_, claim), _ = store.mutate("alice", lambda m: verbs.claim(m, "file:a.py", 600))
    (_, memory), _ = store.mutate("alice", lambda m: verbs.remember(m, "trap", "t", "b"))
    (_, handoff), _ = store.mutate("bob", lambda m: verbs.send_handoff(m, "alice", "s"))
    ids = {"plan": plan, "claim": claim, "memory": memory, "handoff": handoff}
    try:
        with start_blocking_portal() as portal:
            connect = Client(build_server(store), cache=None,
                             client_info=Implementation(name="alice", version="0"))
            with portal.wrap_async_context_manager(connect) as client:
                tools = portal.call(client.list_tools).tools
                schemas = {tool.name: tool.input_schema for tool in tools}
                opened = Session(portal, client, store, root, schemas, ids)
                yield opened
        summary_lines.append(
            f"tool-argument fuzzing: {opened.accepted} calls accepted, {opened.refused} "
            "refused cleanly")
    finally:
        store.close()


def store_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != "lock"}


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.integers(-3, 3)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=3),
    max_leaves=8)
NASTY_TEXT = st.sampled_from([
    "", " ", "\ud800", "a\udfffb", "../../etc/passwd", "/abs", "pln_../x", "\x00", "\u202e",
    "x" * 70_000, "step:", "step:pln_x/", "file:", "*", "s1", "s0", "s99999", "null",
])


def plausible(session: Session, name: str, schema: dict[str, Any],
              defs: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values that fit the argument's schema, and often name real entities."""
    if "$ref" in schema:
        schema = defs[schema["$ref"].rsplit("/", 1)[-1]]
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "anyOf" in schema:
        return st.one_of([plausible(session, name, s, defs) for s in schema["anyOf"]])
    kind = schema.get("type")
    if kind == "integer":
        low, high = schema.get("minimum", 0), schema.get("maximum", 2000)
        return st.integers(low, high)
    if kind == "boolean":
        return st.booleans()
    if kind == "array":
        return st.lists(plausible(session, name, schema.get("items", {}), defs), max_size=3)
    if kind == "object":
        properties = schema.get("properties", {})
        return st.fixed_dictionaries({}, optional={
            key: plausible(session, key, sub, defs) for key, sub in properties.items()})
    return plausible_text(session, name)


def plausible_text(session: Session, name: str) -> st.SearchStrategy[str]:
    ids = session.ids
    by_name = {
        "claim_id": [ids["claim"]], "memory_id": [ids["memory"]], "plan_id": [ids["plan"]],
        "item_id": list(ids.values()), "supersedes": [ids["memory"]],
        "target": [f"step:{ids['plan']}/s{n}" for n in (1, 2, 3)] + ["file:b.py", "free"],
        "actor": ["alice", "bob", "carol#2"], "to": ["alice", "bob", "*"], "id": ["s1", "s2"],
    }
    return st.sampled_from(by_name.get(name, ["t", "some words", "s1"])) | st.text(max_size=20)


@st.composite
def tool_call(draw: st.DrawFn, session: Session) -> tuple[str, dict[str, Any]]:
    tool = draw(st.sampled_from(sorted(session.schemas)))
    schema = session.schemas[tool]
    properties, defs = schema.get("properties", {}), schema.get("$defs", {})
    required = set(schema.get("required", []))
    arguments = {}
    for name, sub in sorted(properties.items()):
        if name not in required and draw(st.integers(0, 2)) == 0:
            continue  # an optional argument left out
        if name in required and draw(st.integers(0, 19)) == 0:
            continue  # a required one forgotten
        nasty = draw(st.integers(0, 9)) == 0
        arguments[name] = draw(JSON | NASTY_TEXT if nasty else plausible(session, name, sub,
                                                                          defs))
    if draw(st.integers(0, 9)) == 0:
        arguments[draw(st.text(min_size=1, max_size=10))] = draw(JSON)
    if tool == "wait" and isinstance(arguments.get("timeout_s", 0), int | float):
        arguments["timeout_s"] = 0  # a wait that finds nothing lasts its timeout: none here
    return tool, arguments


def check_one_call(session: Session, tool: str, arguments: dict[str, Any]) -> None:
    before = store_files(session.root)
    try:
        result = session.portal.call(session.client.call_tool, tool, arguments)
    except MCPError as exc:
        raise AssertionError(f"{tool}({arguments!r:.300}) was a protocol error: {exc}") from exc
    assert not session.store.journal.lock.held, f"{tool} left the store lock held"
    if result.is_error:
        session.refused += 1
        message = text_of(result).strip()
        assert message and message != f"Error executing tool {tool}", \
            f"{tool}({arguments!r:.300}): a bare error"
        after = store_files(session.root)
        changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
        assert not changed, f"refused {tool}({arguments!r:.300}) wrote {changed}: {message}"
    else:
        session.accepted += 1
        assert result.structured_content is not None, f"{tool} answered no structured content"


@QUICK
@given(st.data())
def test_any_arguments_to_any_tool_answer_cleanly_and_refusals_write_nothing(
    session: Session, data: st.DataObject,
) -> None:
    check_one_call(session, *data.draw(tool_call(session)))


@pytest.mark.long
@LONG
@given(st.data())
def test_many_arguments_to_any_tool_answer_cleanly_and_refusals_write_nothing(
    session: Session, data: st.DataObject,
) -> None:
    check_one_call(session, *data.draw(tool_call(session)))
