"""Every tool through the in-memory MCP client, each error path included.

The client is named 'alice' (see conftest): without an ``actor`` argument, that is who acts.
"""

from __future__ import annotations

import errno
import logging
from pathlib import Path
from typing import Any

import pytest
from agentjournal.app import build_server
from agentjournal.tools import JournalTools
from mcp import Client, MCPError
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import Implementation
from support.engine import Clock
from support.mcp import call, call_error

from journal_core import (
    FaultPlan,
    InvalidArgument,
    Store,
    StoreConfig,
    StoreCorrupt,
    limits,
    verbs,
)

pytestmark = pytest.mark.anyio

READ_TOOLS = {"work", "ready", "read_unseen", "wait", "get", "list", "search",
              "journal_status"}
ALL_TOOLS = READ_TOOLS | {
    "ack", "plan", "claim", "renew", "release", "complete", "remember", "forget", "send",
    "respond",
}
IDEMPOTENT_MUTATIONS = {"ack", "claim", "forget"}


async def head(client: Client) -> int:
    return int((await call(client, "journal_status"))["head_seq"])


async def make_plan(client: Client, **arguments: Any) -> dict[str, Any]:
    arguments.setdefault("title", "Ship the parser")
    arguments.setdefault("steps", ["write the lexer", "write the parser"])
    return await call(client, "plan", **arguments)


# -- the surface ------------------------------------------------------------------------
async def test_every_tool_has_a_strict_input_schema_a_description_and_hints(
    client: Client,
) -> None:
    """Results are shown in docs/tools.md, not as output schemas: those cost more of every
    agent's context than all the input schemas together."""
    tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert set(tools) == ALL_TOOLS
    for name, tool in tools.items():
        assert tool.input_schema["type"] == "object", name
        assert tool.input_schema.get("additionalProperties") is False or \
            not tool.input_schema.get("properties"), name
        assert tool.output_schema is None, name
        assert tool.description and tool.title, name
        hints = tool.annotations
        assert hints is not None, name
        if name in READ_TOOLS:
            assert hints.read_only_hint is True, name
        else:
            assert not hints.read_only_hint and hints.destructive_hint is False, name
            assert bool(hints.idempotent_hint) == (name in IDEMPOTENT_MUTATIONS), name


async def test_tool_argument_names_are_the_documented_contract(client: Client) -> None:
    tools = {tool.name: set(tool.input_schema["properties"])
             for tool in (await client.list_tools()).tools}
    expected = {
        "work": {"actor"}, "read_unseen": {"actor", "limit", "item_types", "advance"},
        "wait": {"actor", "timeout_s", "item_types"},
        "ready": {"plan_id", "tag", "limit", "after"},
        "ack": {"actor", "up_to_seq"}, "get": {"item_type", "item_id", "context_from"},
        "list": {"item_type", "status", "limit", "after", "paths"},
        "search": {"query", "item_types", "limit"},
        "plan": {"actor", "title", "goal", "steps", "plan_id", "status", "add_steps",
                 "step_updates", "request_id"},
        "claim": {"actor", "target", "targets", "ttl_s", "note", "keepalive", "max_s",
                  "plan_id", "tag", "request_id"},
        "renew": {"actor", "claim_id", "ttl_s", "fence", "request_id"},
        "release": {"actor", "claim_id", "note", "fence", "request_id"},
        "complete": {"actor", "claim_id", "result", "fence", "request_id"},
        "remember": {"actor", "kind", "title", "body", "tags", "supersedes", "request_id"},
        "forget": {"actor", "memory_id", "reason", "request_id"},
        "send": {"actor", "to", "body", "thread", "kind", "summary", "context", "request_id"},
        "respond": {"actor", "handoff_id", "answer", "note", "request_id"},
        "journal_status": set(),
    }
    for name, arguments in expected.items():
        assert arguments <= tools[name], f"{name} lacks {arguments - tools[name]}"


async def test_a_legacy_initialize_client_gets_the_same_tools(store: Store) -> None:
    async with Client(build_server(store), mode="legacy", cache=None,
                      client_info=Implementation(name="old-client", version="0")) as legacy:
        claimed = await call(legacy, "claim", target="file:legacy.py")
    assert claimed["entity"]["holder"] == "old-client"


# -- actor ------------------------------------------------------------------------------
async def test_the_actor_defaults_to_the_client_name(client: Client) -> None:
    assert (await call(client, "work"))["actor"] == "alice"


async def test_the_server_actor_wins_over_the_client_name(store: Store) -> None:
    async with Client(build_server(store, "bob#1"), cache=None,
                      client_info=Implementation(name="alice", version="0")) as as_bob:
        assert (await call(as_bob, "work"))["actor"] == "bob#1"
        assert (await call(as_bob, "work", actor="carol"))["actor"] == "carol"


def test_no_actor_anywhere_is_an_error_that_says_how_to_set_one(store: Store) -> None:
    with pytest.raises(InvalidArgument, match="AGENTJOURNAL_ACTOR"):
        JournalTools(store).actor_for(None, None)
    with pytest.raises(InvalidArgument, match="AGENTJOURNAL_ACTOR"):
        JournalTools(store).actor_for(None, Context())  # outside any request


async def test_a_call_outside_any_client_session_needs_an_actor(store: Store) -> None:
    server = build_server(store)
    with pytest.raises(ToolError, match="AGENTJOURNAL_ACTOR"):
        await server.call_tool("work", {})
    result = await server.call_tool("work", {"actor": "script"})
    assert not result.is_error


async def test_an_unusable_actor_is_a_tool_error(client: Client) -> None:
    message = await call_error(client, "work", actor="bad\nname")
    assert "actor" in message


# -- work -------------------------------------------------------------------------------
async def test_work_briefs_unseen_events_my_claims_open_plans_and_decisions(
    client: Client,
) -> None:
    plan = await make_plan(client, actor="bob")
    await call(client, "remember", actor="bob", kind="trap", title="fsync the folder too",
               body="a rename is not durable until the folder is fsynced")
    claim = await call(client, "claim", target="file:src/app.py")
    brief = await call(client, "work")
    assert brief["unseen_count"] == 2 and len(brief["unseen"]) == 2
    assert {event["actor"] for event in brief["unseen"]} == {"bob"}
    assert brief["my_claims"] == [{"id": claim["item_id"], "target": "file:src/app.py",
                                   "left_s": brief["my_claims"][0]["left_s"],
                                   "fence": claim["fence"]}]
    assert 0 < brief["my_claims"][0]["left_s"] <= 900
    assert brief["plans"][0]["id"] == plan["item_id"]
    assert brief["plans"][0]["open_steps"][0] == "s1 [todo] write the lexer"
    assert brief["memory"][0]["title"] == "fsync the folder too"
    assert brief["head_seq"] == await head(client)


async def test_work_shows_the_newest_few_unseen_events_but_counts_them_all(
    client: Client,
) -> None:
    for number in range(13):
        await call(client, "send", actor="bob", to="*", body=f"note {number}")
    brief = await call(client, "work")
    assert brief["unseen_count"] == 13 and brief["unseen_by_type"] == {"message": 13}
    assert [e["summary"][-7:] for e in brief["unseen"]][-1] == "note 12"
    assert len(brief["unseen"]) == limits.briefing_unseen_events_max


# -- read_unseen and ack ----------------------------------------------------------------
async def test_read_unseen_returns_what_others_wrote_and_never_my_own(client: Client) -> None:
    await call(client, "claim", target="file:mine.py")
    theirs = await call(client, "claim", actor="bob", target="file:theirs.py")
    unseen = await call(client, "read_unseen")
    assert [e["item_id"] for e in unseen["events"]] == [theirs["item_id"]]
    assert unseen["events"][0]["actor"] == "bob"
    assert unseen["last_seq"] == unseen["head_seq"] and unseen["has_more"] is False
    assert unseen["gap"] is False
    bob_sees = await call(client, "read_unseen", actor="bob")
    assert [e["actor"] for e in bob_sees["events"]] == ["alice"]


async def test_read_unseen_pages_with_limit_and_filters_by_type(client: Client) -> None:
    for number in range(3):
        await call(client, "send", actor="bob", to="alice", body=f"m{number}")
    await call(client, "remember", actor="bob", kind="fact", title="t", body="b")
    page = await call(client, "read_unseen", limit=2)
    assert len(page["events"]) == 2 and page["has_more"] is True
    memory_only = await call(client, "read_unseen", item_types=["memory"])
    assert [e["item_type"] for e in memory_only["events"]] == ["memory"]
    with_payload = await call(client, "read_unseen", item_types=["memory"], include_payload=True)
    assert with_payload["events"][0]["payload"]["title"] == "t"


async def test_read_unseen_does_not_move_the_cursor_ack_and_advance_do(client: Client) -> None:
    await call(client, "send", actor="bob", to="alice", body="one")
    first = await call(client, "read_unseen")
    again = await call(client, "read_unseen")
    assert again["events"] == first["events"]
    acked = await call(client, "ack", up_to_seq=first["last_seq"])
    assert acked == {"actor": "alice", "last_seq": first["last_seq"]}
    assert (await call(client, "read_unseen"))["events"] == []
    await call(client, "send", actor="bob", to="alice", body="two")
    assert len((await call(client, "read_unseen", advance=True))["events"]) == 1
    assert (await call(client, "read_unseen"))["events"] == []


async def test_ack_never_moves_the_cursor_backwards(client: Client) -> None:
    await call(client, "send", actor="bob", to="alice", body="one")
    top = await head(client)
    await call(client, "ack", up_to_seq=top)
    assert (await call(client, "ack", up_to_seq=1))["last_seq"] == top


async def test_ack_past_the_head_is_a_tool_error_naming_the_head(client: Client) -> None:
    message = await call_error(client, "ack", up_to_seq=10_000)
    assert "past the head" in message and "read_unseen" in message


async def test_read_unseen_with_a_bad_limit_or_type_is_a_tool_error(client: Client) -> None:
    assert "limit" in await call_error(client, "read_unseen", limit=0)
    assert "item_types" in await call_error(client, "read_unseen", item_types=["ghost"])


# -- get --------------------------------------------------------------------------------
async def test_get_returns_the_entity_with_its_rev_and_seq(client: Client) -> None:
    plan = await make_plan(client)
    got = await call(client, "get", item_type="plan", item_id=plan["item_id"])
    assert got["entity"]["title"] == "Ship the parser"
    assert got["entity_rev"] == 1 and got["seq"] == plan["seq"] and "stale" not in got


async def test_get_of_an_unknown_id_says_how_to_find_ids(client: Client) -> None:
    message = await call_error(client, "get", item_type="plan", item_id="pln_0000000000000000")
    assert "no plan with id" in message and "list" in message and "search" in message


async def test_get_of_a_malformed_id_or_type_is_a_tool_error(client: Client) -> None:
    assert "invalid plan id" in await call_error(client, "get", item_type="plan",
                                                 item_id="../../etc")
    assert "start with pln_" in await call_error(client, "get", item_type="plan",
                                                 item_id="mem_0000000000000000")
    assert "item_type" in await call_error(client, "get", item_type="ghost", item_id="x")


# -- list -------------------------------------------------------------------------------
async def test_list_pages_newest_first_with_compact_rows(client: Client) -> None:
    for number in range(5):
        await call(client, "remember", kind="fact", title=f"fact {number}", body="b" * 500)
    first = await call(client, "list", item_type="memory", limit=2)
    assert [row["title"] for row in first["items"]] == ["fact 4", "fact 3"]
    assert set(first["items"][0]) <= {"id", "seq", "title", "status", "kind"}
    second = await call(client, "list", item_type="memory", limit=2, after=first["next"])
    third = await call(client, "list", item_type="memory", limit=2, after=second["next"])
    assert [row["title"] for row in second["items"] + third["items"]] == [
        "fact 2", "fact 1", "fact 0"]
    assert "next" not in third


async def test_list_filters_by_status_and_kind(client: Client) -> None:
    kept = await call(client, "remember", kind="decision", title="keep", body="b")
    gone = await call(client, "remember", kind="trap", title="gone", body="b")
    await call(client, "forget", memory_id=gone["item_id"])
    active = await call(client, "list", item_type="memory", status="active")
    assert [row["id"] for row in active["items"]] == [kept["item_id"]]
    traps = await call(client, "list", item_type="memory", kind="trap")
    assert [row["id"] for row in traps["items"]] == [gone["item_id"]]


async def test_list_shows_a_lapsed_claim_as_expired(store_path: Path) -> None:
    """Nothing is written when a claim's ttl runs out; list shows it expired all the same
    (and active before), on an injected clock."""
    now = Clock()
    with Store(str(store_path), now=now) as store:
        async with Client(build_server(store), cache=None,
                          client_info=Implementation(name="alice", version="0")) as client:
            await call(client, "claim", target="file:a.py", ttl_s=60, keepalive=False)
            now.advance(59)
            rows = (await call(client, "list", item_type="claim"))["items"]
            assert [(r["holder"], r["status"]) for r in rows] == [("alice", "active")]
            head = store.head_seq
            now.advance(2)
            rows = (await call(client, "list", item_type="claim"))["items"]
            assert [(r["holder"], r["status"]) for r in rows] == [("alice", "expired")]
            assert store.head_seq == head


async def test_list_with_a_bad_status_cursor_or_filter_is_a_tool_error(client: Client) -> None:
    assert "expected one of" in await call_error(client, "list", item_type="plan",
                                                 status="sleeping")
    assert "no status" in await call_error(client, "list", item_type="message", status="open")
    assert "`next`" in await call_error(client, "list", item_type="plan", after="garbage")
    assert "memory" in await call_error(client, "list", item_type="plan", kind="trap")


# -- search -----------------------------------------------------------------------------
async def test_search_finds_every_word_in_titles_and_bodies(client: Client) -> None:
    trap = await call(client, "remember", kind="trap", title="Segment roll",
                      body="the checkpoint must be written before the new segment")
    await call(client, "remember", kind="fact", title="unrelated", body="nothing here")
    plan = await make_plan(client, goal="roll segments at 8 MiB")
    hits = (await call(client, "search", query="ROLL segment"))["hits"]
    assert [hit["id"] for hit in hits] == [trap["item_id"], plan["item_id"]]
    assert hits[0]["type"] == "memory" and "checkpoint" in hits[0]["snippet"]
    only_plans = (await call(client, "search", query="roll", item_types=["plan"]))["hits"]
    assert [hit["id"] for hit in only_plans] == [plan["item_id"]]


async def test_search_with_an_empty_query_is_a_tool_error(client: Client) -> None:
    assert "query" in await call_error(client, "search", query="   ")


# -- plan -------------------------------------------------------------------------------
async def test_plan_creates_then_updates_steps(client: Client) -> None:
    created = await make_plan(client, goal="a parser", tags=["lang"])
    plan_id = created["item_id"]
    assert created["entity"]["owner"] == "alice" and created["entity"]["status"] == "active"
    updated = await call(client, "plan", plan_id=plan_id, add_steps=["write tests"],
                         step_updates=[{"id": "s1", "status": "blocked", "result": "waiting"}],
                         status="active", title="Ship the parser v2")
    steps = updated["entity"]["steps"]
    assert [s["id"] for s in steps] == ["s1", "s2", "s3"]
    assert steps[0]["status"] == "blocked" and updated["entity"]["title"] == "Ship the parser v2"
    assert updated["entity_rev"] == 2


async def test_plan_errors_say_what_to_do_and_write_nothing(client: Client) -> None:
    plan = await make_plan(client)
    before = await head(client)
    assert "title is required" in await call_error(client, "plan", goal="no title")
    assert "add_steps" in await call_error(client, "plan", plan_id=plan["item_id"],
                                           steps=["x"])
    assert "no step 's9'" in await call_error(client, "plan", plan_id=plan["item_id"],
                                              step_updates=[{"id": "s9", "status": "done"}])
    assert "no plan with id" in await call_error(client, "plan", plan_id="pln_0000000000000000",
                                                 title="x")
    assert "status" in await call_error(client, "plan", plan_id=plan["item_id"], status="later")
    assert "needs plan_id" in await call_error(client, "plan", title="t",
                                               step_updates=[{"id": "s1"}])
    assert await head(client) == before


# -- claims -----------------------------------------------------------------------------
async def test_claim_on_a_held_target_names_the_holder_and_expiry_and_writes_nothing(
    client: Client,
) -> None:
    held = await call(client, "claim", actor="bob", target="file:src/app.py", note="refactor")
    before = await head(client)
    message = await call_error(client, "claim", target="file:src/app.py")
    assert "'bob'" in message and held["entity"]["expires_at"] in message
    assert "pick other work" in message
    assert await head(client) == before


async def test_claiming_my_own_claim_again_changes_nothing(client: Client) -> None:
    first = await call(client, "claim", target="file:a.py")
    again = await call(client, "claim", target="file:a.py")
    assert again["item_id"] == first["item_id"] and again["entity_rev"] == 1


async def test_claim_then_complete_a_step_marks_it_claimed_then_done(client: Client) -> None:
    plan_id = (await make_plan(client))["item_id"]
    claim = await call(client, "claim", target=f"step:{plan_id}/s1")
    plan = await call(client, "get", item_type="plan", item_id=plan_id)
    assert plan["entity"]["steps"][0]["status"] == "claimed"
    done = await call(client, "complete", claim_id=claim["item_id"], result="lexer in lex.py")
    assert done["entity"]["status"] == "completed" and done["entity"]["result"] == "lexer in lex.py"
    plan = await call(client, "get", item_type="plan", item_id=plan_id)
    assert plan["entity"]["steps"][0]["status"] == "done"


async def test_release_puts_a_claimed_step_back_to_todo(client: Client) -> None:
    plan_id = (await make_plan(client))["item_id"]
    claim = await call(client, "claim", target=f"step:{plan_id}/s2")
    released = await call(client, "release", claim_id=claim["item_id"], note="blocked on CI")
    assert released["entity"]["status"] == "released"
    plan = await call(client, "get", item_type="plan", item_id=plan_id)
    assert plan["entity"]["steps"][1]["status"] == "todo"
    assert "only an active claim" in await call_error(client, "release",
                                                      claim_id=claim["item_id"])


async def test_renew_moves_only_the_expiry_with_one_renew_record_and_no_rev_bump(
    client: Client,
) -> None:
    claim = await call(client, "claim", target="file:a.py", ttl_s=60)
    before = await head(client)
    renewed = await call(client, "renew", claim_id=claim["item_id"], ttl_s=3600)
    assert renewed["entity"]["expires_at"] > claim["entity"]["expires_at"]
    assert renewed["entity_rev"] == claim["entity_rev"] and await head(client) == before + 1
    assert renewed["fence"] == claim["fence"]


async def test_only_the_holder_can_renew_release_or_complete(client: Client) -> None:
    claim_id = (await call(client, "claim", actor="bob", target="file:b.py"))["item_id"]
    for tool in ("renew", "release", "complete"):
        message = await call_error(client, tool, claim_id=claim_id)
        assert "held by 'bob'" in message, tool


async def test_claim_errors_for_bad_ttl_unknown_step_or_unknown_claim(client: Client) -> None:
    assert "ttl_s" in await call_error(client, "claim", target="file:a.py", ttl_s=0)
    held = await call(client, "claim", target="file:a.py")
    assert "ttl_s" in await call_error(client, "renew", claim_id=held["item_id"], ttl_s=10**9)
    plan_id = (await make_plan(client))["item_id"]
    assert "no step" in await call_error(client, "claim", target=f"step:{plan_id}/s7")
    assert "step:<plan_id>/<step_id>" in await call_error(client, "claim", target="step:pln_x")
    assert "no claim with id" in await call_error(client, "complete",
                                                  claim_id="clm_0000000000000000")


# -- memory -----------------------------------------------------------------------------
async def test_remember_supersede_and_forget(client: Client) -> None:
    old = await call(client, "remember", kind="decision", title="use json", body="stdlib",
                     tags=["codec"])
    new = await call(client, "remember", kind="decision", title="use orjson", body="faster",
                     supersedes=old["item_id"])
    assert new["entity"]["supersedes"] == old["item_id"]
    replaced = await call(client, "get", item_type="memory", item_id=old["item_id"])
    assert replaced["entity"]["status"] == "superseded"
    forgotten = await call(client, "forget", memory_id=new["item_id"], reason="measured again")
    assert forgotten["entity"]["status"] == "archived"
    again = await call(client, "forget", memory_id=new["item_id"])
    assert again["entity_rev"] == forgotten["entity_rev"]


async def test_remember_and_forget_errors(client: Client) -> None:
    assert "kind" in await call_error(client, "remember", kind="rumour", title="t", body="b")
    assert "no memory with id" in await call_error(client, "remember", kind="fact", title="t",
                                                   body="b", supersedes="mem_0000000000000000")
    assert "no memory with id" in await call_error(client, "forget",
                                                   memory_id="mem_0000000000000000")
    assert "title" in await call_error(client, "remember", kind="fact", title="  ", body="b")


async def test_oversized_input_is_a_tool_error_and_nothing_is_written(client: Client) -> None:
    before = await head(client)
    message = await call_error(client, "remember", kind="note", title="big", body="x" * 70_000)
    assert "at most 60000" in message
    assert await head(client) == before


# -- send -------------------------------------------------------------------------------
async def test_send_posts_a_message_or_a_handoff(client: Client) -> None:
    message = await call(client, "send", to="bob", body="lexer is done", thread="parser")
    assert message["item_type"] == "message"
    assert message["entity"]["from"] == "alice" and message["entity"]["thread"] == "parser"
    handoff = await call(client, "send", to="bob", kind="handoff", summary="finish the parser",
                         body="lexer done; parser half way", context="diff --git a/p.py b/p.py")
    entity = handoff["entity"]
    assert handoff["item_type"] == "handoff" and entity["summary"] == "finish the parser"
    assert "half way" in entity["context"] and "diff --git" in entity["context"]
    short = await call(client, "send", to="bob", kind="handoff", body="take the tests")
    assert short["entity"]["summary"] == "take the tests"


async def test_send_errors_say_what_to_do(client: Client) -> None:
    assert "kind='handoff'" in await call_error(client, "send", to="bob", body="b", summary="s")
    assert "pass a short `summary`" in await call_error(client, "send", to="bob",
                                                        kind="handoff", body="x" * 600)
    assert "body" in await call_error(client, "send", to="bob", body="   ")
    assert "kind" in await call_error(client, "send", to="bob", body="b", kind="memo")


# -- journal_status ---------------------------------------------------------------------
async def test_journal_status_reports_head_segments_and_counters(client: Client) -> None:
    await make_plan(client)
    status = await call(client, "journal_status")
    assert status["head_seq"] == 2 and status["segments"]["count"] == 1
    assert status["segments"]["bytes"] > 0 and status["live"]["plan"] == 1
    assert status["counters"]["lines_skipped"] == 0


# -- store faults -----------------------------------------------------------------------
async def test_a_busy_store_is_a_tool_error_that_says_retry(store_path: Any) -> None:
    busy = Store(str(store_path), StoreConfig(lock_wait_s=0.05))
    holder = Store(str(store_path))
    try:
        async with Client(build_server(busy), cache=None) as client:
            with holder.journal.lock_held("holder#1"):
                message = await call_error(client, "claim", target="file:a.py")
        assert "retry" in message and "nothing was written" in message
    finally:
        busy.close()
        holder.close()


async def test_a_failed_journal_write_says_not_applied_and_is_logged(
    store: Store, caplog: pytest.LogCaptureFixture,
) -> None:
    store.fileio.plan = FaultPlan(at=1, ops=frozenset({"write"}), persistent=True,
                                  error_number=errno.ENOSPC)
    async with Client(build_server(store), cache=None) as client:
        with caplog.at_level(logging.WARNING, logger="agentjournal.server"):
            message = await call_error(client, "claim", target="file:a.py")
    assert "not applied" in message and "retrying is safe" in message
    assert any("tool claim" in r.getMessage() for r in caplog.records)


async def test_a_store_fault_on_a_read_is_a_protocol_error_and_is_logged(
    store: Store, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
) -> None:
    (_, plan_id), _ = store.mutate("bob", lambda m: verbs.plan_create(m, "p", "", []))

    def damaged(*args: object) -> None:
        raise StoreCorrupt("a checkpoint does not verify (injected)")

    monkeypatch.setattr(store, "entity_view", damaged)
    async with Client(build_server(store), cache=None) as client:
        with (caplog.at_level(logging.ERROR, logger="agentjournal.server"),
              pytest.raises(MCPError, match="the store failed")):
            await client.call_tool("get", {"item_type": "plan", "item_id": plan_id})
    assert any("store fault in tool get" in r.getMessage() for r in caplog.records)
