"""The verbs of SPEC §10. Each runs inside one Mutation and returns the key of its result.

Verbs load, change, put and annotate; they never touch records, files or the lock.
"""

from __future__ import annotations

from typing import Any

from . import clock, limits
from .entities import Claim, Handoff, Memory, Message, Plan, Step, build
from .errors import ClaimConflict, Conflict, InvalidArgument
from .mutation import Mutation

Key = tuple[str, str]


def _text(value: str | None, what: str, chars_max: int, *, required: bool = False) -> str | None:
    if value is None:
        if required:
            raise InvalidArgument(f"{what} is required")
        return None
    if not isinstance(value, str):
        raise InvalidArgument(f"{what} must be a string")
    value = value.strip()
    if required and not value:
        raise InvalidArgument(f"{what} must not be empty")
    if len(value) > chars_max:
        raise InvalidArgument(f"{what} is {len(value)} characters; at most {chars_max}")
    return value


def _step_titles(titles: list[str], start: int) -> list[Step]:
    steps = []
    for offset, title in enumerate(titles):
        text = _text(title, "step title", limits.title_chars_max, required=True)
        steps.append(build(Step, {"id": f"s{start + offset}", "title": str(text)}))
    return steps


# -- plans ------------------------------------------------------------------------------
def plan_create(
    m: Mutation, title: str, goal: str = "", steps: list[str] | None = None,
    status: str = "active", tags: list[str] | None = None,
) -> Key:
    steps = steps or []
    if len(steps) > limits.plan_steps_max:
        raise InvalidArgument(f"a plan holds at most {limits.plan_steps_max} steps")
    plan_id = m.new_id("plan")
    plan = build(Plan, {
        **m.base("plan", plan_id),
        "title": _text(title, "title", limits.title_chars_max, required=True),
        "goal": _text(goal, "goal", limits.text_chars_max) or "",
        "status": status,
        "steps": _step_titles(steps, 1),
        "owner": m.actor,
        "tags": tags or [],
    })
    m.put(plan)
    m.annotate("create", "plan", plan_id, f"plan created: {plan.title}")
    return ("plan", plan_id)


def plan_update(
    m: Mutation, plan_id: str, title: str | None = None, goal: str | None = None,
    status: str | None = None, add_steps: list[str] | None = None,
    step_updates: list[dict[str, Any]] | None = None,
) -> Key:
    plan = m.require(Plan, plan_id)
    if title is not None:
        plan.title = str(_text(title, "title", limits.title_chars_max, required=True))
    if goal is not None:
        plan.goal = _text(goal, "goal", limits.text_chars_max) or ""
    if status is not None:
        plan.status = status  # type: ignore[assignment]  # validated by put()
    for update in step_updates or []:
        _update_step(plan, update)
    if add_steps:
        if len(plan.steps) + len(add_steps) > limits.plan_steps_max:
            raise InvalidArgument(f"a plan holds at most {limits.plan_steps_max} steps")
        next_number = max((int(s.id[1:]) for s in plan.steps), default=0) + 1
        plan.steps.extend(_step_titles(add_steps, next_number))
    m.put(plan)
    m.annotate("update", "plan", plan_id, f"plan updated: {plan.title}")
    return ("plan", plan_id)


def _update_step(plan: Plan, update: dict[str, Any]) -> None:
    step = _find_step(plan, str(update.get("id")))
    if update.get("title") is not None:
        step.title = str(_text(update["title"], "step title", limits.title_chars_max,
                               required=True))
    new_status = update.get("status")
    if new_status is not None and new_status != step.status:
        if step.claim_id is not None and step.status == "claimed":
            raise Conflict(
                f"step {step.id} is claimed ({step.claim_id}); release or complete the claim"
            )
        if new_status not in ("todo", "blocked", "done"):
            raise InvalidArgument("a step's status can be set to todo, blocked or done")
        step.status = new_status
    if update.get("result") is not None:
        step.result = _text(update["result"], "result", limits.text_chars_max)


def _find_step(plan: Plan, step_id: str) -> Step:
    for step in plan.steps:
        if step.id == step_id:
            return step
    known = ", ".join(s.id for s in plan.steps) or "none"
    raise InvalidArgument(f"plan {plan.id} has no step {step_id!r} (steps: {known})")


# -- claims -----------------------------------------------------------------------------
def parse_step_target(target: str) -> tuple[str, str] | None:
    if not target.startswith("step:"):
        return None
    plan_id, _, step_id = target[len("step:"):].partition("/")
    if not plan_id or not step_id:
        raise InvalidArgument("a step target is 'step:<plan_id>/<step_id>', e.g. step:pln_ab12/s1")
    return plan_id, step_id


def is_expired(claim: Claim, m: Mutation) -> bool:
    return clock.parse_rfc3339(claim.expires_at) <= m.now


def claim(m: Mutation, target: str, ttl_s: int = limits.claim_ttl_s_default,
          note: str | None = None) -> Key:
    target = str(_text(target, "target", limits.claim_target_chars_max, required=True))
    _check_ttl(ttl_s)
    step_ref = parse_step_target(target)
    plan = _claimable_step_plan(m, step_ref) if step_ref else None
    for claim_id in m.claims_on(target):
        held = m.require(Claim, claim_id)
        foreign = m.origin_of("claim", claim_id)
        if not is_expired(held, m):
            if held.holder == m.actor and foreign is None:
                return ("claim", claim_id)  # already ours: claiming again changes nothing
            raise ClaimConflict(target, held.holder, held.id, held.expires_at)
        if foreign is not None:
            continue  # an expired claim of another store: it stops blocking, stays theirs
        held.status = "expired"
        m.put(held)
        m.annotate("release_claim", "claim", held.id, "expired")
    claim_id = m.new_id("claim")
    expires = clock.to_rfc3339(clock.plus_seconds(m.now, ttl_s))
    m.put(build(Claim, {
        **m.base("claim", claim_id), "target": target, "holder": m.actor,
        "status": "active", "ttl_s": ttl_s, "expires_at": expires,
        "note": _text(note, "note", limits.text_chars_max),
    }))
    m.annotate("claim", "claim", claim_id, f"{m.actor} claimed {target}")
    if plan is not None and step_ref is not None:
        step = _find_step(plan, step_ref[1])
        step.status, step.claim_id = "claimed", claim_id
        m.put(plan)
        m.annotate("update", "plan", plan.id, f"step {step.id} claimed by {m.actor}")
    return ("claim", claim_id)


def _check_ttl(ttl_s: int) -> None:
    if isinstance(ttl_s, bool) or not isinstance(ttl_s, int):
        raise InvalidArgument("ttl_s must be an integer number of seconds")
    if not limits.claim_ttl_s_min <= ttl_s <= limits.claim_ttl_s_max:
        raise InvalidArgument(
            f"ttl_s must be between {limits.claim_ttl_s_min} and {limits.claim_ttl_s_max}"
        )


def _claimable_step_plan(m: Mutation, step_ref: tuple[str, str]) -> Plan:
    plan = m.require(Plan, step_ref[0])
    step = _find_step(plan, step_ref[1])
    if plan.status in ("done", "abandoned"):
        raise Conflict(f"plan {plan.id} is {plan.status}; its steps cannot be claimed")
    if step.status == "done":
        raise Conflict(f"step {step.id} of plan {plan.id} is already done")
    return plan


def _own_active_claim(m: Mutation, claim_id: str, verb: str) -> Claim:
    held = m.require(Claim, claim_id)
    foreign = m.origin_of("claim", claim_id)
    if foreign is not None:
        raise Conflict(f"claim {claim_id} belongs to store {foreign}; only that store can "
                       f"{verb}")
    if held.holder != m.actor:
        raise Conflict(f"claim {claim_id} is held by {held.holder!r}; only its holder can {verb}")
    if held.status != "active":
        raise Conflict(f"claim {claim_id} is {held.status}; only an active claim can {verb}")
    return held


def renew(m: Mutation, claim_id: str, ttl_s: int | None = None) -> Key:
    held = _own_active_claim(m, claim_id, "renew it")
    seconds = held.ttl_s if ttl_s is None else ttl_s
    _check_ttl(seconds)
    held.expires_at = clock.to_rfc3339(clock.plus_seconds(m.now, seconds))
    held.renewed_at = m.now_text
    m.put(held)  # ephemeral fields only: no record, no rev bump (SPEC §10)
    return ("claim", claim_id)


def release(m: Mutation, claim_id: str, note: str | None = None) -> Key:
    held = _own_active_claim(m, claim_id, "release it")
    held.status = "released"
    if note is not None:
        held.note = _text(note, "note", limits.text_chars_max)
    m.put(held)
    m.annotate("release_claim", "claim", claim_id, f"{m.actor} released {held.target}")
    _settle_step(m, held, done=False, result=None)
    return ("claim", claim_id)


def complete(m: Mutation, claim_id: str, result: str | None = None) -> Key:
    held = _own_active_claim(m, claim_id, "complete it")
    held.status = "completed"
    held.result = _text(result, "result", limits.text_chars_max)
    m.put(held)
    m.annotate("complete", "claim", claim_id, f"{m.actor} completed {held.target}")
    _settle_step(m, held, done=True, result=held.result)
    return ("claim", claim_id)


def _settle_step(m: Mutation, held: Claim, *, done: bool, result: str | None) -> None:
    step_ref = parse_step_target(held.target)
    if step_ref is None:
        return
    plan = m.get(Plan, step_ref[0])
    if plan is None:
        return
    step = next((s for s in plan.steps if s.id == step_ref[1]), None)
    if step is None or step.claim_id != held.id:
        return
    if done:
        step.status, step.result = "done", result
        summary = f"step {step.id} done by {m.actor}"
    else:
        step.status, step.claim_id = "todo", None
        summary = f"step {step.id} released by {m.actor}"
    m.put(plan)
    m.annotate("update", "plan", plan.id, summary)


# -- memory -----------------------------------------------------------------------------
def remember(
    m: Mutation, kind: str, title: str, body: str = "", tags: list[str] | None = None,
    supersedes: str | None = None,
) -> Key:
    memory_id = m.new_id("memory")
    item = build(Memory, {
        **m.base("memory", memory_id), "kind": kind,
        "title": _text(title, "title", limits.title_chars_max, required=True),
        "body": _text(body, "body", limits.text_chars_max) or "", "tags": tags or [],
        "supersedes": supersedes,
    })
    if supersedes is not None:
        old = m.require(Memory, supersedes)
        if old.status != "active":
            raise Conflict(f"memory {supersedes} is {old.status}; only an active item can be "
                           "superseded")
        old.status, old.superseded_by = "superseded", memory_id
        m.put(old)
        m.annotate("update", "memory", old.id, f"superseded by {memory_id}")
    m.put(item)
    m.annotate("create", "memory", memory_id, f"{kind}: {item.title}")
    return ("memory", memory_id)


def forget(m: Mutation, memory_id: str, reason: str | None = None) -> Key:
    item = m.require(Memory, memory_id)
    if item.status == "archived":
        return ("memory", memory_id)
    item.status = "archived"
    item.reason = _text(reason, "reason", limits.text_chars_max)
    m.put(item)
    m.annotate("update", "memory", memory_id, f"archived: {item.title}")
    return ("memory", memory_id)


# -- messages and handoffs --------------------------------------------------------------
def send_message(m: Mutation, to: str, body: str, thread: str | None = None) -> Key:
    message_id = m.new_id("message")
    message = build(Message, {
        **m.base("message", message_id), "from": m.actor, "to": to,
        "body": _text(body, "body", limits.text_chars_max, required=True), "thread": thread,
    })
    m.put(message)
    m.annotate("create", "message", message_id, f"{m.actor} -> {to}: {message.body[:80]}")
    return ("message", message_id)


def send_handoff(
    m: Mutation, to: str, summary: str, context: str = "", thread: str | None = None,
) -> Key:
    handoff_id = m.new_id("handoff")
    handoff = build(Handoff, {
        **m.base("handoff", handoff_id), "from": m.actor, "to": to,
        "summary": _text(summary, "summary", limits.summary_chars_max, required=True),
        "context": context or "", "thread": thread,
    })
    m.put(handoff)
    m.annotate("create", "handoff", handoff_id, f"handoff {m.actor} -> {to}: {handoff.summary}")
    return ("handoff", handoff_id)


def respond_handoff(m: Mutation, handoff_id: str, accept: bool) -> Key:
    handoff = m.require(Handoff, handoff_id)
    if handoff.to not in (m.actor, "*"):
        raise Conflict(f"handoff {handoff_id} is addressed to {handoff.to!r}, not {m.actor!r}")
    if handoff.status != "open":
        raise Conflict(f"handoff {handoff_id} is already {handoff.status}")
    handoff.status = "accepted" if accept else "rejected"
    m.put(handoff)
    action = "accept" if accept else "reject"
    m.annotate(action, "handoff", handoff_id, f"{m.actor} {handoff.status} the handoff")
    return ("handoff", handoff_id)
