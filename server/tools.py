"""The MCP tools. Each one parses its arguments, makes one store call, shapes the answer.
Argument names are the public contract; optional arguments may be added.

Tool functions are synchronous: the SDK runs them on a worker thread, so a store call that
waits for the lock never stalls the event loop serving other clients (and concurrent
mutations of one server join one group commit). ``wait`` alone is async: a wait of up to
25 s holds no worker thread, and a cancelled request ends it at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

import orjson
from mcp.server.mcpserver import Context
from mcp.types import CallToolResult, TextContent
from pydantic import Field

from journal_core import (
    Committed,
    InvalidArgument,
    Mutation,
    NotFound,
    Store,
    StoreError,
    limits,
    queries,
    verbs,
    waiting,
)

from .errors import AppliedButUnanswered
from .models import (
    Actor,
    EventType,
    Fence,
    HandoffAnswer,
    ItemId,
    ItemType,
    MemoryKind,
    Nothing,
    PlanStatus,
    RequestId,
    StepSpec,
    StepUpdate,
    Text,
    Title,
    Ttl,
)
from .tokens import grant_of

NO_ACTOR = (
    "no actor: pass `actor` (a stable name such as 'claude-code#2'), or start the server "
    "with --actor or AGENTJOURNAL_ACTOR"
)
CONTEXT_PAGE_CHARS = limits.context_page_chars
KeyVerb = Callable[[Mutation], tuple[str, str]]


def answer(data: dict[str, Any]) -> CallToolResult:
    """Structured content plus the same JSON, compact, as text for clients that read text."""
    shaped = without_nulls(data)
    text = orjson.dumps(shaped).decode()
    return CallToolResult(content=[TextContent(type="text", text=text)],
                          structured_content=shaped)


def without_nulls(value: Any) -> Any:
    """Without empty (null) fields: absent reads the same, and costs less."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(item) for item in value]
    return value


class JournalTools:
    """The tool functions, bound to one open store and the server's default actor."""

    def __init__(self, store: Store, default_actor: str | None = None) -> None:
        self.store = store
        self.default_actor = default_actor or None

    # -- helpers ----------------------------------------------------------------------
    def actor_for(self, actor: str | None, ctx: Context | None) -> str:
        """The explicit argument, else --actor / AGENTJOURNAL_ACTOR, else the client name;
        one the caller's token allows (HTTP with a token file)."""
        chosen = self._actor(actor, ctx)
        grant = grant_of(ctx)
        if grant is not None:
            grant.check_actor(chosen)
        return chosen

    def _actor(self, actor: str | None, ctx: Context | None) -> str:
        if actor:
            return actor
        if self.default_actor:
            return self.default_actor
        if ctx is not None:
            try:
                params = ctx.request_context.session.client_params
            except (ValueError, AttributeError):  # outside a request (in-process calls)
                params = None
            if params is not None and params.client_info.name:
                return params.client_info.name
        raise InvalidArgument(NO_ACTOR)

    def mutate(self, actor: str, verb: KeyVerb, request_id: str | None,
               arguments: tuple[Any, ...], shape: Callable[[dict[str, Any]], dict[str, Any]]
               | None = None) -> CallToolResult:
        """One mutation, then its answer. Once the mutation is durable, a failure to build
        the answer says so: it must never read as "not applied"."""
        key, committed = self.store.mutate(actor, verb, request_id=request_id,
                                           fingerprint_of=arguments)
        try:
            view = self.view(key, committed)
        except StoreError as exc:
            raise AppliedButUnanswered(
                f"applied (seq {committed.first_seq}), but its answer could not be read back: "
                f"{exc}; do not repeat the call, `get` {key[1]} instead") from exc
        if committed.replayed:
            view["replayed"] = True  # a repeat of an earlier request: nothing was written
        return answer(shape(view) if shape else view)

    def view(self, key: tuple[str, str], committed: Committed | None = None) -> dict[str, Any]:
        if committed is not None and committed.replayed:
            found = self.store.replayed_view(committed, key)
        else:
            found = self.store.entity_view(*key)
        return entity_answer(found)

    # -- read tools -------------------------------------------------------------------
    def work(self, actor: Actor = None, ctx: Context | None = None) -> CallToolResult:
        """Start here each turn: unseen events, your claims and their time left, handoffs
        and messages to you, ready steps, open plans, standing decisions and traps."""
        return answer(queries.work_briefing(self.store, self.actor_for(actor, ctx)))

    def ready(
        self,
        plan_id: str | Nothing = None,
        tag: str | Nothing = None,
        limit: Annotated[int, Field(ge=1, le=limits.ready_page_max)] = 20,
        after: Annotated[str | Nothing, Field(description="`next` of the last page.")] = None,
    ) -> CallToolResult:
        """Steps you can start now (open, blockers done, unclaimed), in the order
        claim(target='next') takes them; each says what it unblocks."""
        return answer(queries.ready(self.store, plan_id, tag, limit, after))

    def read_unseen(
        self,
        actor: Actor = None,
        limit: Annotated[int, Field(ge=1, le=limits.unseen_events_max)] = \
            limits.unseen_page_default,
        item_types: list[EventType] | Nothing = None,
        advance: Annotated[bool, Field(description="Also ack what is returned.")] = False,
        include_payload: bool = False,
        ctx: Context | None = None,
    ) -> CallToolResult:
        """Events others wrote since your cursor, oldest first; never moves the cursor
        unless advance=true (else ack(up_to_seq=last_seq))."""
        found = self.store.read_unseen(
            self.actor_for(actor, ctx), limit, list(item_types) if item_types else None,
            advance, payloads=include_payload,
        )
        return answer(unseen_answer(found, include_payload))

    async def wait(
        self,
        actor: Actor = None,
        timeout_s: Annotated[float, Field(ge=0, description=(
            f"At most {limits.wait_timeout_s_max:g}."))] = limits.wait_timeout_s_default,
        item_types: list[EventType] | Nothing = None,
        ctx: Context | None = None,
    ) -> CallToolResult:
        """Block until others write something you have not seen (or timeout_s), then answer
        as read_unseen does, with timed_out. Instead of polling read_unseen."""
        who = self.actor_for(actor, ctx)

        async def progress(waited_s: float, total_s: float) -> None:
            if ctx is not None:
                await ctx.report_progress(waited_s, total_s)

        found = await waiting.wait_unseen(self.store, who, timeout_s,
                                          list(item_types) if item_types else None,
                                          progress=progress)
        return answer(unseen_answer(found, False))

    def get(
        self, item_type: ItemType, item_id: ItemId,
        context_from: Annotated[int | Nothing, Field(
            ge=0, description="handoff: read its context from this character.")] = None,
    ) -> CallToolResult:
        """One entity in full (a handoff's context in pages)."""
        view = self.view((item_type, item_id))
        if item_type == "handoff":
            view["entity"] = context_page(view["entity"], context_from or 0)
        elif context_from is not None:
            raise InvalidArgument("context_from pages a handoff's context; this is a "
                                  f"{item_type}")
        return answer(view)

    def list_items(
        self,
        item_type: ItemType,
        status: str | Nothing = None,
        limit: Annotated[int, Field(ge=1, le=limits.page_items_max)] = 50,
        after: str | Nothing = None,
        kind: MemoryKind | Nothing = None,
        paths: Annotated[list[str] | Nothing, Field(
            description="claim: only claims overlapping these paths/globs.")] = None,
    ) -> CallToolResult:
        """A family's entities, newest first, one compact row each; `next` pages on."""
        return answer(queries.list_items(self.store, item_type, status=status, limit=limit,
                                         after=after, kind=kind, paths=paths))

    def search(
        self,
        query: Annotated[str, Field(max_length=limits.search_query_chars_max)],
        item_types: list[ItemType] | Nothing = None,
        limit: Annotated[int, Field(ge=1, le=limits.search_hits_max)] = 20,
    ) -> CallToolResult:
        """Entities holding every word of query (plans, memory, messages, handoffs)."""
        hits = queries.search(self.store, query, list(item_types) if item_types else None, limit)
        return answer({"hits": hits})

    def journal_status(self) -> CallToolResult:
        """The store's path, head seq, journal size, newest checkpoint, doctor counters."""
        return answer(queries.journal_status(self.store))

    # -- cursor -----------------------------------------------------------------------
    def ack(self, up_to_seq: Annotated[int, Field(ge=0)], actor: Actor = None,
            ctx: Context | None = None) -> CallToolResult:
        """Mark events up to up_to_seq as seen (read_unseen's last_seq)."""
        who = self.actor_for(actor, ctx)
        return answer({"actor": who, "last_seq": self.store.ack(who, up_to_seq)})

    # -- plans ------------------------------------------------------------------------
    def plan(
        self,
        title: str | Nothing = None,
        goal: str | Nothing = None,
        steps: Annotated[list[str | StepSpec] | Nothing, Field(
            description="New plan: titles or {title, after}.")] = None,
        plan_id: Annotated[str | Nothing, Field(description="Update this plan.")] = None,
        status: PlanStatus | Nothing = None,
        add_steps: list[str | StepSpec] | Nothing = None,
        step_updates: list[StepUpdate] | Nothing = None,
        tags: list[str] | Nothing = None,
        priority: int | Nothing = None,
        actor: Actor = None,
        request_id: RequestId = None,
        ctx: Context | None = None,
    ) -> CallToolResult:
        """Create a plan (title, steps) or update one (plan_id). Steps run in order unless
        `after` says what they wait for; claim them with claim(target='next')."""
        who = self.actor_for(actor, ctx)
        new = [_step(s) for s in steps or []]
        more = [_step(s) for s in add_steps or []]
        updates = [u.model_dump(exclude_none=True) for u in step_updates or []]
        arguments = ("plan", title, goal, new, plan_id, status, more, updates, tags, priority)
        if plan_id is None:
            if title is None:
                raise InvalidArgument("title is required to create a plan (pass plan_id to "
                                      "update an existing one)")
            if updates:
                raise InvalidArgument("step_updates needs plan_id: create the plan first")
            return self.mutate(who, lambda m: verbs.plan_create(
                m, title, goal or "", [*new, *more], status or "active", tags, priority or 0),
                request_id, arguments)
        if steps is not None:
            raise InvalidArgument("steps sets the steps of a new plan; to change plan "
                                  f"{plan_id} use add_steps or step_updates")
        if tags is not None:
            raise InvalidArgument("tags are set when a plan is created")
        return self.mutate(who, lambda m: verbs.plan_update(
            m, plan_id, title, goal, status, more, updates, priority), request_id, arguments)

    # -- claims -----------------------------------------------------------------------
    def claim(
        self,
        target: Annotated[str | Nothing, Field(description=(
            "'next' (the next ready step), 'step:<plan>/<step>', 'file:<path or glob>' "
            "('file:src/' = the folder), or any key."))] = None,
        targets: Annotated[list[str] | Nothing, Field(
            description="Several at once, all or nothing.")] = None,
        ttl_s: Ttl = limits.claim_ttl_s_default,
        note: str | Nothing = None,
        keepalive: Annotated[bool, Field(
            description="Your other writes renew it.")] = True,
        max_s: Annotated[int | Nothing, Field(
            description="Keepalive stops after this long.")] = None,
        plan_id: str | Nothing = None,
        tag: str | Nothing = None,
        actor: Actor = None,
        request_id: RequestId = None,
        ctx: Context | None = None,
    ) -> CallToolResult:
        """Take exclusive hold before working. Refused, naming the holder, while another
        actor holds it or an overlapping path. The answer's `fence` grows with each claim."""
        who = self.actor_for(actor, ctx)
        arguments = ("claim", target, targets, ttl_s, note, keepalive, max_s, plan_id, tag)
        return self.mutate(who, lambda m: verbs.claim(
            m, target, ttl_s, note, targets=targets, keepalive=keepalive, max_s=max_s,
            plan_id=plan_id, tag=tag), request_id, arguments, claim_answer)

    def renew(
        self,
        claim_id: Annotated[str | Nothing, Field(
            description="Default: all your active claims.")] = None,
        ttl_s: Annotated[int | Nothing, Field(description="Default: the claim's ttl_s.")] = None,
        fence: Fence = None,
        actor: Actor = None,
        request_id: RequestId = None,
        ctx: Context | None = None,
    ) -> CallToolResult:
        """Extend your claim (or all of them) to ttl_s from now."""
        return self.mutate(self.actor_for(actor, ctx),
                           lambda m: verbs.renew(m, claim_id, ttl_s, fence), request_id,
                           ("renew", claim_id, ttl_s, fence), claim_answer)

    def release(
        self, claim_id: ItemId, note: str | Nothing = None, fence: Fence = None,
        actor: Actor = None, request_id: RequestId = None, ctx: Context | None = None,
    ) -> CallToolResult:
        """Give up your claim unfinished (a claimed step goes back to todo)."""
        return self.mutate(self.actor_for(actor, ctx),
                           lambda m: verbs.release(m, claim_id, note, fence), request_id,
                           ("release", claim_id, note, fence), claim_answer)

    def complete(
        self, claim_id: ItemId, result: str | Nothing = None, fence: Fence = None,
        actor: Actor = None, request_id: RequestId = None, ctx: Context | None = None,
    ) -> CallToolResult:
        """Finish your claim (a claimed step becomes done)."""
        return self.mutate(self.actor_for(actor, ctx),
                           lambda m: verbs.complete(m, claim_id, result, fence), request_id,
                           ("complete", claim_id, result, fence), claim_answer)

    # -- memory -----------------------------------------------------------------------
    def remember(
        self,
        kind: MemoryKind,
        title: Title,
        body: Text,
        tags: list[str] | Nothing = None,
        supersedes: Annotated[str | Nothing, Field(description="Id this replaces.")] = None,
        actor: Actor = None,
        request_id: RequestId = None,
        ctx: Context | None = None,
    ) -> CallToolResult:
        """Record a decision, constraint, trap, pattern, fact or note for every agent."""
        return self.mutate(self.actor_for(actor, ctx),
                           lambda m: verbs.remember(m, kind, title, body, tags, supersedes),
                           request_id, ("remember", kind, title, body, tags, supersedes))

    def forget(
        self, memory_id: ItemId, reason: str | Nothing = None, actor: Actor = None,
        request_id: RequestId = None, ctx: Context | None = None,
    ) -> CallToolResult:
        """Archive a memory item that no longer holds (the journal keeps it)."""
        return self.mutate(self.actor_for(actor, ctx),
                           lambda m: verbs.forget(m, memory_id, reason), request_id,
                           ("forget", memory_id, reason))

    # -- messages ---------------------------------------------------------------------
    def send(
        self,
        to: Annotated[str, Field(description="An actor, or '*' for everyone.",
                                 max_length=limits.actor_chars_max)],
        body: Text,
        kind: Literal["message", "handoff"] = "message",
        summary: Annotated[str | Nothing, Field(description="handoff: one line.")] = None,
        context: Annotated[str | Nothing, Field(description="handoff: details, a diff.")] = None,
        thread: str | Nothing = None,
        actor: Actor = None,
        request_id: RequestId = None,
        ctx: Context | None = None,
    ) -> CallToolResult:
        """Post a message, or hand work on (kind='handoff'); the recipient answers with
        respond."""
        who = self.actor_for(actor, ctx)
        arguments = ("send", to, body, kind, summary, context, thread)
        hint = recipient_hint(self.store, to, who)
        if kind == "message":
            if summary is not None or context is not None:
                raise InvalidArgument("summary and context belong to handoffs: pass "
                                      "kind='handoff', or put everything in body")
            result = self.mutate(who, lambda m: verbs.send_message(m, to, body, thread),
                                 request_id, arguments)
        else:
            line, details = handoff_parts(body, summary, context)
            result = self.mutate(who, lambda m: verbs.send_handoff(m, to, line, details, thread),
                                 request_id, arguments, handoff_answer)
        return with_hint(result, hint)

    def respond(
        self,
        handoff_id: ItemId,
        answer: HandoffAnswer,
        note: str | Nothing = None,
        actor: Actor = None,
        request_id: RequestId = None,
        ctx: Context | None = None,
    ) -> CallToolResult:
        """Accept or reject a handoff addressed to you; its sender sees the answer."""
        return self.mutate(self.actor_for(actor, ctx), lambda m: verbs.respond_handoff(
            m, handoff_id, answer == "accept", note), request_id,
            ("respond", handoff_id, answer, note), handoff_answer)


# -- answers ----------------------------------------------------------------------------
def unseen_answer(found: dict[str, Any], with_payload: bool) -> dict[str, Any]:
    """A read_unseen (or wait) page with its events as compact rows."""
    found["events"] = [
        queries.compact_event(r, with_payload=with_payload,
                              summary_chars=limits.unseen_summary_chars_max)
        for r in found["events"]
    ]
    return found


def entity_answer(view: dict[str, Any]) -> dict[str, Any]:
    out = dict(view)
    out["entity"] = without_nulls(view["entity"])
    if not out.get("stale"):
        out.pop("stale", None)
    return out


def claim_answer(view: dict[str, Any]) -> dict[str, Any]:
    view["fence"] = view["entity"].get("fence")
    return view


def handoff_answer(view: dict[str, Any]) -> dict[str, Any]:
    if view["item_type"] == "handoff":
        view["entity"] = context_page(view["entity"], 0)
    return view


def context_page(entity: dict[str, Any], start: int) -> dict[str, Any]:
    """A handoff's context as one page: never the whole of a large one."""
    context = str(entity.get("context") or "")
    out = dict(entity)
    out["context_chars"] = len(context)
    if start > len(context):
        raise InvalidArgument(f"context_from {start} is past the end of the context "
                              f"({len(context)} characters)")
    out["context"] = context[start: start + CONTEXT_PAGE_CHARS]
    if start + CONTEXT_PAGE_CHARS < len(context):
        out["context_next"] = start + CONTEXT_PAGE_CHARS
    return out


def recipient_hint(store: Store, to: str, sender: str) -> str | None:
    """A hint when nobody by that name ever acted in this store (a typo?)."""
    if to == "*":
        return None
    known = queries.known_actors(store)
    if to in known:
        return None
    near = sorted(known - {sender}, key=lambda name: _distance(name, to))[: 3]
    listed = ", ".join(repr(n) for n in near) if near else "none yet"
    return (f"no actor named {to!r} has acted in this store yet (sent anyway); known "
            f"actors: {listed}")


def with_hint(result: CallToolResult, hint: str | None) -> CallToolResult:
    if hint is None or result.structured_content is None:
        return result
    return answer({**result.structured_content, "hint": hint})


def _distance(a: str, b: str) -> int:
    """Edit distance, bounded (names are short)."""
    a, b = a[:64], b[:64]
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, start=1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def _step(spec: str | StepSpec) -> str | dict[str, Any]:
    return spec if isinstance(spec, str) else spec.model_dump(exclude_none=True)


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


__all__ = ["CONTEXT_PAGE_CHARS", "JournalTools", "NotFound", "answer", "without_nulls"]
