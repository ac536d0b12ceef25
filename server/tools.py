"""The tools of SPEC §11. Each one parses its arguments, makes one store call, shapes the
answer. Argument names are the public contract; optional arguments may be added.

Tool functions are synchronous: the SDK runs them on a worker thread, so a store call that
waits for the lock never stalls the event loop serving other clients.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

import orjson
from mcp.server.mcpserver import Context
from mcp.types import CallToolResult, TextContent
from pydantic import Field

from journal_core import InvalidArgument, Mutation, Store, limits, queries, verbs

from .models import (
    AckResult,
    Actor,
    EntityResult,
    EventType,
    ItemId,
    ItemType,
    ListResult,
    MemoryKind,
    Nothing,
    Out,
    PlanStatus,
    SearchResult,
    StatusResult,
    StepUpdate,
    Text,
    Title,
    Ttl,
    UnseenResult,
    WorkResult,
)

OutT = TypeVar("OutT", bound=Out)
NO_ACTOR = (
    "no actor: pass `actor` (a stable name such as 'claude-code#2'), or start the server "
    "with --actor or AGENTJOURNAL_ACTOR"
)


def answer(model: type[OutT], data: dict[str, Any]) -> CallToolResult:
    """Structured content plus the same JSON, compact, as text for clients that read text."""
    shaped = model.model_validate(data).model_dump(mode="json", by_alias=True, exclude_none=True)
    text = orjson.dumps(shaped).decode()
    return CallToolResult(content=[TextContent(type="text", text=text)],
                          structured_content=shaped)


class JournalTools:
    """The tool functions, bound to one open store and the server's default actor."""

    def __init__(self, store: Store, default_actor: str | None = None) -> None:
        self.store = store
        self.default_actor = default_actor or None

    # -- helpers ----------------------------------------------------------------------
    def actor_for(self, actor: str | None, ctx: Context | None) -> str:
        """The explicit argument, else --actor / AGENTJOURNAL_ACTOR, else the client name."""
        if actor:
            return actor
        if self.default_actor:
            return self.default_actor
        if ctx is not None:
            try:
                params = ctx.request_context.session.client_params
            except ValueError:  # called outside a request (MCPServer.call_tool in-process)
                params = None
            if params is not None and params.client_info.name:
                return params.client_info.name
        raise InvalidArgument(NO_ACTOR)

    def mutate(self, actor: str, verb: Callable[[Mutation], tuple[str, str]]) -> CallToolResult:
        key, _ = self.store.mutate(actor, verb)
        return self.entity(*key)

    def entity(self, item_type: str, item_id: str) -> CallToolResult:
        view = self.store.entity_view(item_type, item_id)
        view["entity"] = without_nulls(view["entity"])
        return answer(EntityResult, view)

    # -- read tools -------------------------------------------------------------------
    def work(self, actor: Actor = None, ctx: Context | None = None) -> Annotated[
            CallToolResult, WorkResult]:
        """Start here each turn. A short briefing: journal head, how many events you have
        not seen and the newest few, your active claims, active plans with open steps, and
        recent decisions, constraints and traps. Then read_unseen/ack, get, claim."""
        return answer(WorkResult, queries.work_briefing(self.store, self.actor_for(actor, ctx)))

    def read_unseen(
        self,
        actor: Actor = None,
        limit: Annotated[int, Field(ge=1, le=limits.unseen_events_max)] = 100,
        item_types: Annotated[list[EventType] | Nothing, Field(
            description="Only these families (default: all but journal notes).")] = None,
        advance: Annotated[bool, Field(
            description="Also move your cursor past what is returned.")] = False,
        include_payload: Annotated[bool, Field(
            description="Include each record's full entity post-image.")] = False,
        ctx: Context | None = None,
    ) -> Annotated[CallToolResult, UnseenResult]:
        """Events other actors wrote since your cursor, oldest first (never your own). The
        cursor moves only with ack(up_to_seq=last_seq) or advance=true."""
        found = self.store.read_unseen(
            self.actor_for(actor, ctx), limit, list(item_types) if item_types else None,
            advance,
        )
        found["events"] = [
            queries.compact_event(r, with_payload=include_payload) for r in found["events"]
        ]
        return answer(UnseenResult, found)

    def get(self, item_type: ItemType, item_id: ItemId) -> Annotated[CallToolResult, EntityResult]:
        """One entity in full, by type and id."""
        return self.entity(item_type, item_id)

    def list_items(
        self,
        item_type: ItemType,
        status: Annotated[str | Nothing, Field(
            description="plan: draft|active|done|abandoned; claim: active|released|completed|"
            "expired; memory: active|superseded|archived; handoff: open|accepted|rejected.",
        )] = None,
        limit: Annotated[int, Field(ge=1, le=limits.page_items_max)] = 50,
        after: Annotated[str | Nothing, Field(
            description="The `next` of the previous page.")] = None,
        kind: Annotated[MemoryKind | Nothing, Field(description="memory only.")] = None,
    ) -> Annotated[CallToolResult, ListResult]:
        """Entities of one family, newest first, one compact row each; paginated."""
        return answer(ListResult, queries.list_items(
            self.store, item_type, status=status, limit=limit, after=after, kind=kind,
        ))

    def search(
        self,
        query: Annotated[str, Field(description="Words that must all appear (any case).",
                                    max_length=queries.search_query_chars_max)],
        item_types: Annotated[list[ItemType] | Nothing, Field(
            description="Default: plan, memory, message, handoff.")] = None,
        limit: Annotated[int, Field(ge=1, le=limits.search_hits_max)] = 20,
    ) -> Annotated[CallToolResult, SearchResult]:
        """Text search over plans, memory, messages and handoffs; best matches first."""
        hits = queries.search(self.store, query, list(item_types) if item_types else None, limit)
        return answer(SearchResult, {"hits": hits})

    def journal_status(self) -> Annotated[CallToolResult, StatusResult]:
        """Head seq, segment count and bytes, newest checkpoint, live entity counts and the
        doctor counters of this store."""
        return answer(StatusResult, queries.journal_status(self.store))

    # -- cursor -----------------------------------------------------------------------
    def ack(
        self,
        up_to_seq: Annotated[int, Field(ge=0, description="Usually read_unseen's last_seq.")],
        actor: Actor = None,
        ctx: Context | None = None,
    ) -> Annotated[CallToolResult, AckResult]:
        """Mark events up to up_to_seq as seen (your cursor never moves backwards)."""
        who = self.actor_for(actor, ctx)
        return answer(AckResult, {"actor": who, "last_seq": self.store.ack(who, up_to_seq)})

    # -- plans ------------------------------------------------------------------------
    def plan(
        self,
        actor: Actor = None,
        title: str | Nothing = None,
        goal: str | Nothing = None,
        steps: Annotated[list[str] | Nothing, Field(
            description="Step titles of a NEW plan.")] = None,
        plan_id: Annotated[str | Nothing, Field(
            description="Update this plan; omit to create one.")] = None,
        status: PlanStatus | Nothing = None,
        add_steps: Annotated[list[str] | Nothing, Field(
            description="Step titles to append.")] = None,
        step_updates: Annotated[list[StepUpdate] | Nothing, Field(
            description="Change steps by id (status todo|blocked|done, title, result).")] = None,
        tags: list[str] | Nothing = None,
        ctx: Context | None = None,
    ) -> Annotated[CallToolResult, EntityResult]:
        """Create a plan (no plan_id; title required) or update one (plan_id). Claim a step
        with claim(target='step:<plan_id>/<step id>'); completing that claim marks it done."""
        who = self.actor_for(actor, ctx)
        updates = [u.model_dump(exclude_none=True) for u in step_updates or []]
        if plan_id is None:
            if title is None:
                raise InvalidArgument("title is required to create a plan (pass plan_id to "
                                      "update an existing one)")
            if updates:
                raise InvalidArgument("step_updates needs plan_id: create the plan first")
            new_steps = [*(steps or []), *(add_steps or [])]
            return self.mutate(who, lambda m: verbs.plan_create(
                m, title, goal or "", new_steps, status or "active", tags))
        if steps is not None:
            raise InvalidArgument("steps sets the steps of a new plan; to change plan "
                                  f"{plan_id} use add_steps or step_updates")
        if tags is not None:
            raise InvalidArgument("tags are set when a plan is created")
        return self.mutate(who, lambda m: verbs.plan_update(
            m, plan_id, title, goal, status, add_steps, updates))

    # -- claims -----------------------------------------------------------------------
    def claim(
        self,
        target: Annotated[str, Field(
            description="'step:<plan_id>/<step id>', 'file:<path>', or any resource key.",
            max_length=limits.claim_target_chars_max)],
        actor: Actor = None,
        ttl_s: Ttl = limits.claim_ttl_s_default,
        note: str | Nothing = None,
        ctx: Context | None = None,
    ) -> Annotated[CallToolResult, EntityResult]:
        """Take exclusive hold of a target before working on it. Fails, naming the holder and
        the expiry, while another actor holds it; claiming your own claim again is a no-op."""
        return self.mutate(self.actor_for(actor, ctx),
                           lambda m: verbs.claim(m, target, ttl_s, note))

    def renew(
        self,
        claim_id: ItemId,
        actor: Actor = None,
        ttl_s: Annotated[int | Nothing, Field(
            description="Seconds from now (default: the claim's own ttl_s).")] = None,
        ctx: Context | None = None,
    ) -> Annotated[CallToolResult, EntityResult]:
        """Extend your active claim to ttl_s seconds from now."""
        return self.mutate(self.actor_for(actor, ctx),
                           lambda m: verbs.renew(m, claim_id, ttl_s))

    def release(
        self, claim_id: ItemId, actor: Actor = None, note: str | Nothing = None,
        ctx: Context | None = None,
    ) -> Annotated[CallToolResult, EntityResult]:
        """Give up your claim without finishing (a claimed plan step goes back to todo)."""
        return self.mutate(self.actor_for(actor, ctx),
                           lambda m: verbs.release(m, claim_id, note))

    def complete(
        self, claim_id: ItemId, actor: Actor = None, result: str | Nothing = None,
        ctx: Context | None = None,
    ) -> Annotated[CallToolResult, EntityResult]:
        """Finish your claim with an optional result (a claimed plan step becomes done)."""
        return self.mutate(self.actor_for(actor, ctx),
                           lambda m: verbs.complete(m, claim_id, result))

    # -- memory -----------------------------------------------------------------------
    def remember(
        self,
        kind: MemoryKind,
        title: Title,
        body: Text,
        actor: Actor = None,
        tags: list[str] | Nothing = None,
        supersedes: Annotated[str | Nothing, Field(
            description="Id of an active memory item this one replaces.")] = None,
        ctx: Context | None = None,
    ) -> Annotated[CallToolResult, EntityResult]:
        """Record a decision, constraint, trap, pattern, fact or note for every agent."""
        return self.mutate(self.actor_for(actor, ctx),
                           lambda m: verbs.remember(m, kind, title, body, tags, supersedes))

    def forget(
        self, memory_id: ItemId, actor: Actor = None, reason: str | Nothing = None,
        ctx: Context | None = None,
    ) -> Annotated[CallToolResult, EntityResult]:
        """Archive a memory item that no longer holds (it stays in the journal)."""
        return self.mutate(self.actor_for(actor, ctx),
                           lambda m: verbs.forget(m, memory_id, reason))

    # -- messages ---------------------------------------------------------------------
    def send(
        self,
        to: Annotated[str, Field(description="An actor, or '*' for everyone.",
                                 max_length=limits.actor_chars_max)],
        body: Text,
        actor: Actor = None,
        thread: str | Nothing = None,
        kind: Annotated[Literal["message", "handoff"], Field(
            description="'handoff' passes work on: summary + context.")] = "message",
        summary: Annotated[str | Nothing, Field(
            description="handoff: one line (default: body).")] = None,
        context: Annotated[str | Nothing, Field(
            description="handoff: details, e.g. a diff.")] = None,
        ctx: Context | None = None,
    ) -> Annotated[CallToolResult, EntityResult]:
        """Post a message, or a handoff of work (summary + context) to another actor."""
        who = self.actor_for(actor, ctx)
        if kind == "message":
            if summary is not None or context is not None:
                raise InvalidArgument("summary and context belong to handoffs: pass "
                                      "kind='handoff', or put everything in body")
            return self.mutate(who, lambda m: verbs.send_message(m, to, body, thread))
        line, details = handoff_parts(body, summary, context)
        return self.mutate(who, lambda m: verbs.send_handoff(m, to, line, details, thread))


def without_nulls(value: Any) -> Any:
    """An entity without its empty (null) fields: absent reads the same, and costs less."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(item) for item in value]
    return value


def handoff_parts(body: str, summary: str | None, context: str | None) -> tuple[str, str]:
    """A handoff's one-line summary and its details: ``summary`` (else ``body``), then the
    rest (``body`` when a summary was given, and ``context``)."""
    if summary is None:
        if len(body) > limits.summary_chars_max:
            raise InvalidArgument(
                f"a handoff's summary is at most {limits.summary_chars_max} characters: pass a "
                "short `summary` and keep the details in `body` or `context`"
            )
        return body, context or ""
    return summary, "\n\n".join(part for part in (body, context or "") if part)
