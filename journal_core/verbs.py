"""The verbs (docs/design.md, "Entities" and "The work queue"). Each runs inside one
Mutation and returns the key of its result.

Verbs load, change, put and annotate; they never touch records, files or the lock.
"""

from __future__ import annotations

from typing import Any

from . import clock, limits
from .claim_index import claim_targets
from .entities import Claim, Handoff, Memory, Message, Plan, Step, build
from .errors import ClaimConflict, Conflict, InvalidArgument, NotFound
from .mutation import Mutation
from .paths import file_target, is_file_target, parse_file_target
from .vocabulary import NEXT_TARGET, STEP_TARGET_PREFIX
from .work_queue import (
    StepRef,
    find_cycle,
    find_step,
    lapsed,
    nothing_ready,
    open_blockers,
    parse_blocker,
    queue,
)

Key = tuple[str, str]
HUMAN_PREFIX = "human:"


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


# -- plans ------------------------------------------------------------------------------
def _new_steps(specs: list[Any], start: int) -> list[Step]:
    """Steps from titles or ``{title, after}`` objects, numbered from ``s<start>``."""
    steps = []
    for offset, spec in enumerate(specs):
        title: object
        after: list[Any]
        if isinstance(spec, str):
            title, after = spec, []
        elif isinstance(spec, dict):
            unknown = set(spec) - {"title", "after"}
            if unknown:
                raise InvalidArgument(f"a step is a title or {{title, after}}; unknown field "
                                      f"{sorted(unknown)[0]!r}")
            title, after = spec.get("title"), spec.get("after") or []
        else:
            raise InvalidArgument("a step is a title or an object {title, after}")
        text = _text(title, "step title", limits.title_chars_max, required=True)
        steps.append(build(Step, {"id": f"s{start + offset}", "title": str(text),
                                  "after": _blocker_list(after)}))
    return steps


def _blocker_list(after: Any) -> list[str]:
    if not isinstance(after, list) or not all(isinstance(a, str) for a in after):
        raise InvalidArgument("after is a list of step ids ('s1') or '<plan_id>/<step_id>'")
    if len(after) > limits.step_blockers_max:
        raise InvalidArgument(f"a step waits for at most {limits.step_blockers_max} steps")
    return list(dict.fromkeys(a.strip() for a in after))


def plan_create(
    m: Mutation, title: str, goal: str = "", steps: list[Any] | None = None,
    status: str = "active", tags: list[str] | None = None, priority: int = 0,
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
        "steps": _new_steps(steps, 1),
        "owner": m.actor,
        "tags": tags or [],
        "priority": priority,
    })
    _check_dependencies(m, plan)
    m.put(plan)
    m.annotate("create", "plan", plan_id, f"plan created: {plan.title}")
    return ("plan", plan_id)


def plan_update(
    m: Mutation, plan_id: str, title: str | None = None, goal: str | None = None,
    status: str | None = None, add_steps: list[Any] | None = None,
    step_updates: list[dict[str, Any]] | None = None, priority: int | None = None,
) -> Key:
    plan = m.require(Plan, plan_id)
    if title is not None:
        plan.title = str(_text(title, "title", limits.title_chars_max, required=True))
    if goal is not None:
        plan.goal = _text(goal, "goal", limits.text_chars_max) or ""
    if status is not None:
        plan.status = status  # type: ignore[assignment]  # validated by put()
    if priority is not None:
        plan.priority = priority
    if add_steps:
        if len(plan.steps) + len(add_steps) > limits.plan_steps_max:
            raise InvalidArgument(f"a plan holds at most {limits.plan_steps_max} steps")
        next_number = max((int(s.id[1:]) for s in plan.steps), default=0) + 1
        plan.steps.extend(_new_steps(add_steps, next_number))
    for update in step_updates or []:
        _update_step(m, plan, update)
    _check_dependencies(m, plan)
    m.put(plan)
    m.annotate("update", "plan", plan_id, f"plan updated: {plan.title}")
    return ("plan", plan_id)


def _update_step(m: Mutation, plan: Plan, update: dict[str, Any]) -> None:
    step = _find_step(plan, str(update.get("id")))
    if update.get("title") is not None:
        step.title = str(_text(update["title"], "step title", limits.title_chars_max,
                               required=True))
    if update.get("after") is not None:
        step.after = _blocker_list(update["after"])
    new_status = update.get("status")
    if new_status is not None and new_status != step.status:
        if step.claim_id is not None and step.status == "claimed":
            raise Conflict(
                f"step {step.id} is claimed ({step.claim_id}); release or complete the claim"
            )
        if new_status not in ("todo", "blocked", "done"):
            raise InvalidArgument("a step's status can be set to todo, blocked or done")
        if new_status == "done":
            _require_blockers_done(m, plan.dump(), step.model_dump(), "set done")
        step.status = new_status
    if update.get("result") is not None:
        step.result = _text(update["result"], "result", limits.text_chars_max)


def _find_step(plan: Plan, step_id: str) -> Step:
    for step in plan.steps:
        if step.id == step_id:
            return step
    known = ", ".join(s.id for s in plan.steps) or "none"
    raise InvalidArgument(f"plan {plan.id} has no step {step_id!r} (steps: {known})")


def _plan_payload(m: Mutation, plan_id: str) -> dict[str, Any] | None:
    try:
        plan = m.get(Plan, plan_id)
    except (InvalidArgument, NotFound):
        return None
    return plan.dump() if plan is not None else None


def _claim_payload(m: Mutation, claim_id: str) -> dict[str, Any] | None:
    try:
        claim = m.get(Claim, claim_id)
    except (InvalidArgument, NotFound, Conflict):
        return None
    return claim.dump() if claim is not None else None


def _check_dependencies(m: Mutation, plan: Plan) -> None:
    """Every blocker names a step that exists, never itself, and no chain of blockers leads
    back to where it started (across plans too)."""
    mine = plan.dump()
    home = plan.id

    def lookup(plan_id: str) -> dict[str, Any] | None:
        return mine if plan_id == home else _plan_payload(m, plan_id)

    for step in plan.steps:
        for text in step.after:
            ref = parse_blocker(text, home)
            if ref == StepRef(home, step.id):
                raise InvalidArgument(f"step {step.id} cannot wait for itself")
            other = lookup(ref.plan_id)
            if other is None:
                raise InvalidArgument(f"step {step.id} waits for {text!r}: there is no plan "
                                      f"{ref.plan_id}")
            if find_step(other, ref.step_id) is None:
                known = ", ".join(str(s["id"]) for s in other.get("steps") or []) or "none"
                raise InvalidArgument(f"step {step.id} waits for {text!r}: plan {ref.plan_id} "
                                      f"has no step {ref.step_id} (steps: {known})")

    def edges(node: StepRef) -> list[StepRef]:
        owner = lookup(node.plan_id)
        found = find_step(owner, node.step_id) if owner else None
        return [parse_blocker(a, node.plan_id) for a in (found or {}).get("after") or []]

    for step in plan.steps:
        cycle = find_cycle(StepRef(home, step.id), edges)
        if cycle is not None:
            path = " -> ".join(node.text(home) for node in cycle)
            raise InvalidArgument(f"these steps wait for each other in a cycle: {path}; "
                                  "remove one of the `after` links")


def _require_blockers_done(m: Mutation, plan: dict[str, Any], step: dict[str, Any],
                           what: str) -> None:
    blockers = open_blockers(plan, step, lambda p: _plan_payload(m, p),
                             lambda c: _claim_payload(m, c))
    if blockers:
        listed = ", ".join(b.describe(str(plan["id"])) for b in blockers)
        raise Conflict(f"step {step['id']} of plan {plan['id']} cannot be {what}: it waits "
                       f"for {listed}")


# -- claims -----------------------------------------------------------------------------
def parse_step_target(target: str) -> tuple[str, str] | None:
    if not target.startswith(STEP_TARGET_PREFIX):
        return None
    plan_id, _, step_id = target[len(STEP_TARGET_PREFIX):].partition("/")
    if not plan_id or not step_id:
        raise InvalidArgument("a step target is 'step:<plan_id>/<step_id>', e.g. step:pln_ab12/s1")
    return plan_id, step_id


def is_expired(claim: Claim, m: Mutation) -> bool:
    return clock.parse_rfc3339(claim.expires_at) <= m.now


def normalize_target(target: str) -> str:
    text = str(_text(target, "target", limits.claim_target_chars_max, required=True))
    if is_file_target(text):
        return file_target(parse_file_target(text))
    return text


def claim(m: Mutation, target: str | None = None, ttl_s: int = limits.claim_ttl_s_default,
          note: str | None = None, *, targets: list[str] | None = None,
          keepalive: bool = True, max_s: int | None = None,
          plan_id: str | None = None, tag: str | None = None) -> Key:
    """Claim one target, several at once (``targets``: all or nothing), or the next ready
    step (``target="next"``, optionally within ``plan_id`` / ``tag``)."""
    _check_ttl(ttl_s)
    _check_max_s(max_s, ttl_s)
    wanted = _wanted_targets(m, target, targets, plan_id, tag)
    if len(wanted) == 1:
        own = _already_held(m, wanted[0])
        if own is not None:
            return ("claim", own)
    step_plans = {t: _claimable_step_plan(m, ref)
                  for t in wanted if (ref := parse_step_target(t)) is not None}
    previous: str | None = None
    for wanted_target in wanted:
        previous = _clear_target(m, wanted_target) or previous
    claim_id = m.new_id("claim")
    expires = clock.to_rfc3339(clock.plus_seconds(m.now, ttl_s))
    until = clock.to_rfc3339(clock.plus_seconds(m.now, max_s)) if max_s else None
    m.put(build(Claim, {
        **m.base("claim", claim_id), "target": wanted[0],
        "targets": wanted if len(wanted) > 1 else None, "holder": m.actor,
        "status": "active", "ttl_s": ttl_s, "expires_at": expires,
        "note": _text(note, "note", limits.text_chars_max), "fence": m.first_seq,
        "keepalive": bool(keepalive), "keepalive_until": until, "previous_holder": previous,
    }))
    shown = wanted[0] if len(wanted) == 1 else f"{wanted[0]} (+{len(wanted) - 1} more)"
    taken = f", taking it over from {previous}" if previous else ""
    m.annotate("claim", "claim", claim_id, f"{m.actor} claimed {shown}{taken}")
    for step_target, plan in step_plans.items():
        ref = parse_step_target(step_target)
        assert ref is not None
        step = _find_step(plan, ref[1])
        step.status, step.claim_id = "claimed", claim_id
        m.put(plan)
        m.annotate("update", "plan", plan.id, f"step {step.id} claimed by {m.actor}")
    return ("claim", claim_id)


def _wanted_targets(m: Mutation, target: str | None, targets: list[str] | None,
                    plan_id: str | None, tag: str | None) -> list[str]:
    if (target is None) == (not targets):
        raise InvalidArgument("pass target (one) or targets (several), not both and not neither")
    if target is not None and target.strip() == NEXT_TARGET:
        return [_next_ready_target(m, plan_id, tag)]
    if plan_id is not None or tag is not None:
        raise InvalidArgument("plan_id and tag choose among ready steps: use them with "
                              "target='next'")
    raw = [target] if target is not None else list(targets or [])
    if len(raw) > limits.claim_targets_max:
        raise InvalidArgument(f"{len(raw)} targets in one claim; at most "
                              f"{limits.claim_targets_max}")
    wanted = list(dict.fromkeys(normalize_target(t) for t in raw))
    if len(wanted) > 1 and any(t == NEXT_TARGET for t in wanted):
        raise InvalidArgument("'next' is claimed on its own, not among other targets")
    return wanted


def _next_ready_target(m: Mutation, plan_id: str | None, tag: str | None) -> str:
    plans = [p for i in m.entity_ids("plan") if (p := _plan_payload(m, i)) is not None]
    if plan_id is not None and not any(p["id"] == plan_id for p in plans):
        raise NotFound(f"no plan with id {plan_id!r}")
    view = queue(plans, lambda p: _plan_payload(m, p), lambda c: _claim_payload(m, c), m.now,
                 plan_id=plan_id, tag=tag)
    if not view.ready:
        scope = f"plan {plan_id}" if plan_id else (f"plans tagged {tag!r}" if tag
                                                   else "active plans")
        raise NothingReady(nothing_ready(view, scope))
    first = view.ready[0]
    return f"step:{first.plan_id}/{first.step_id}"


class NothingReady(Conflict):
    """claim(target="next") with no ready step: the message says what is open and why."""


def _already_held(m: Mutation, target: str) -> str | None:
    """The caller's own active, unexpired claim on exactly this target: claiming it again
    changes nothing."""
    for claim_id, theirs in m.colliding_claims(target):
        held = m.require(Claim, claim_id)
        if (theirs == target and held.holder == m.actor and not is_expired(held, m)
                and m.origin_of("claim", claim_id) is None
                and len(claim_targets(held.dump())) == 1):
            return claim_id
    return None


def _clear_target(m: Mutation, target: str) -> str | None:
    """Refuse a target an active claim of someone else collides with; take over the expired
    ones (returns the holder taken over from, if any)."""
    previous = None
    for claim_id, theirs in m.colliding_claims(target):
        held = m.require(Claim, claim_id)
        foreign = m.origin_of("claim", claim_id)
        if not is_expired(held, m):
            if held.holder == m.actor and foreign is None:
                continue  # our own claim overlapping: fine, both ours
            raise ClaimConflict(target, held.holder, held.id, held.expires_at,
                                theirs if theirs != target else None)
        if foreign is not None:
            continue  # an expired claim of another store: it stops blocking, stays theirs
        held.status = "expired"
        held.taken_over_by, held.taken_over_at = m.actor, m.now_text
        m.put(held)
        m.annotate("release_claim", "claim", held.id, f"expired; taken over by {m.actor}")
        _settle_step(m, held, done=False, result=None)
        previous = held.holder
    return previous


def _check_ttl(ttl_s: int) -> None:
    if isinstance(ttl_s, bool) or not isinstance(ttl_s, int):
        raise InvalidArgument("ttl_s must be an integer number of seconds")
    if not limits.claim_ttl_s_min <= ttl_s <= limits.claim_ttl_s_max:
        raise InvalidArgument(
            f"ttl_s must be between {limits.claim_ttl_s_min} and {limits.claim_ttl_s_max}"
        )


def _check_max_s(max_s: int | None, ttl_s: int) -> None:
    if max_s is None:
        return
    if isinstance(max_s, bool) or not isinstance(max_s, int) or \
            not ttl_s <= max_s <= limits.claim_max_s_max:
        raise InvalidArgument(f"max_s (how long keepalive may extend the claim) must be "
                              f"between ttl_s ({ttl_s}) and {limits.claim_max_s_max} seconds")


def _claimable_step_plan(m: Mutation, step_ref: tuple[str, str]) -> Plan:
    plan = m.require(Plan, step_ref[0])
    step = _find_step(plan, step_ref[1])
    if plan.status in ("done", "abandoned"):
        raise Conflict(f"plan {plan.id} is {plan.status}; its steps cannot be claimed")
    if step.status == "done":
        raise Conflict(f"step {step.id} of plan {plan.id} is already done")
    if step.status == "blocked":
        raise Conflict(f"step {step.id} of plan {plan.id} is marked blocked; set it to todo "
                       "first")
    _require_blockers_done(m, plan.dump(), step.model_dump(), "claimed")
    return plan


def _own_active_claim(m: Mutation, claim_id: str, verb: str, fence: int | None) -> Claim:
    held = m.require(Claim, claim_id)
    foreign = m.origin_of("claim", claim_id)
    if foreign is not None:
        raise Conflict(f"claim {claim_id} belongs to store {foreign}; only that store can "
                       f"{verb}")
    if fence is not None and fence != held.fence:
        raise StaleFence(f"fence {fence} is not claim {claim_id}'s ({held.fence}); "
                         f"{_who_holds_now(m, held)}")
    if held.holder != m.actor:
        raise Conflict(f"claim {claim_id} is held by {held.holder!r}; only its holder can {verb}")
    if held.status != "active":
        taken = (f"; it expired and was taken over by {held.taken_over_by} at "
                 f"{held.taken_over_at}" if held.taken_over_by else "")
        raise Conflict(f"claim {claim_id} is {held.status}{taken}; only an active claim can "
                       f"{verb}. {_who_holds_now(m, held)}")
    return held


class StaleFence(Conflict):
    """A fence that is not the claim's: its holder lost it."""


def _who_holds_now(m: Mutation, held: Claim) -> str:
    current = [(cid, t) for target in claim_targets(held.dump())
               for cid, t in m.colliding_claims(target) if cid != held.id]
    if not current:
        return f"nobody holds {held.target} now"
    claim_now = m.require(Claim, current[0][0])
    return (f"{held.target} is held by {claim_now.holder!r} ({claim_now.id}, fence "
            f"{claim_now.fence}) until {claim_now.expires_at}")


def renew(m: Mutation, claim_id: str | None = None, ttl_s: int | None = None,
          fence: int | None = None) -> Key:
    """Move an active claim's expiry to ``ttl_s`` from now (an ephemeral change: a renew
    record, no rev bump). Without ``claim_id``: every active claim of the caller."""
    if claim_id is None:
        if fence is not None:
            raise InvalidArgument("fence goes with claim_id: it names one claim's grant")
        mine = m.claims_of(m.actor)
        if not mine:
            raise NotFound(f"{m.actor!r} holds no active claim to renew")
        for one in mine:
            _renew_one(m, one, ttl_s, None)
        return ("claim", mine[0])
    _renew_one(m, claim_id, ttl_s, fence)
    return ("claim", claim_id)


def _renew_one(m: Mutation, claim_id: str, ttl_s: int | None, fence: int | None) -> None:
    held = _own_active_claim(m, claim_id, "renew it", fence)
    seconds = held.ttl_s if ttl_s is None else ttl_s
    _check_ttl(seconds)
    expires = clock.plus_seconds(m.now, seconds)
    if held.keepalive_until is not None:
        expires = min(expires, clock.parse_rfc3339(held.keepalive_until))
    held.expires_at = clock.to_rfc3339(expires)
    held.renewed_at = m.now_text
    m.put(held)


def keep_alive(m: Mutation) -> int:
    """Renew the caller's keepalive claims that are past half their ttl (a mutation by the
    holder is a sign of life); returns how many. Never past ``keepalive_until``."""
    renewed = 0
    touched = set(m.touched())
    for claim_id in m.claims_due_for_renewal():
        if ("claim", claim_id) in touched:
            continue
        held = m.get(Claim, claim_id)
        if held is None or not held.keepalive or held.status != "active" or is_expired(held, m):
            continue
        left = (clock.parse_rfc3339(held.expires_at) - m.now).total_seconds()
        if left > held.ttl_s / 2:
            continue
        target = clock.plus_seconds(m.now, held.ttl_s)
        if held.keepalive_until is not None:
            target = min(target, clock.parse_rfc3339(held.keepalive_until))
        if target <= clock.parse_rfc3339(held.expires_at):
            continue
        held.expires_at, held.renewed_at = clock.to_rfc3339(target), m.now_text
        m.put(held)
        renewed += 1
    return renewed


def release(m: Mutation, claim_id: str, note: str | None = None,
            fence: int | None = None) -> Key:
    held = _own_active_claim(m, claim_id, "release it", fence)
    held.status = "released"
    if note is not None:
        held.note = _text(note, "note", limits.text_chars_max)
    m.put(held)
    m.annotate("release_claim", "claim", claim_id, f"{m.actor} released {held.target}")
    _settle_step(m, held, done=False, result=None)
    return ("claim", claim_id)


def release_for(m: Mutation, claim_id: str, reason: str) -> Key:
    """A person releases a stuck claim of anyone, with a reason (actors ``human:<name>``)."""
    if not m.actor.startswith(HUMAN_PREFIX):
        raise Conflict("only a person (an actor named human:<name>) can release someone "
                       "else's claim")
    held = m.require(Claim, claim_id)
    if m.origin_of("claim", claim_id) is not None:
        raise Conflict(f"claim {claim_id} belongs to another store; release it there")
    if held.status != "active":
        raise Conflict(f"claim {claim_id} is {held.status}; only an active claim can be released")
    held.status = "released"
    held.reason = _text(reason, "reason", limits.text_chars_max, required=True)
    m.put(held)
    m.annotate("release_claim", "claim", claim_id,
               f"{m.actor} released {held.holder}'s claim on {held.target}: {held.reason}")
    _settle_step(m, held, done=False, result=None)
    return ("claim", claim_id)


def complete(m: Mutation, claim_id: str, result: str | None = None,
             fence: int | None = None) -> Key:
    held = _own_active_claim(m, claim_id, "complete it", fence)
    held.status = "completed"
    held.result = _text(result, "result", limits.text_chars_max)
    for ref in filter(None, (parse_step_target(t) for t in claim_targets(held.dump()))):
        plan = m.get(Plan, ref[0])
        if plan is not None:
            step = next((s for s in plan.steps if s.id == ref[1]), None)
            if step is not None and step.claim_id == held.id:
                _require_blockers_done(m, plan.dump(), step.model_dump(), "completed")
    m.put(held)
    m.annotate("complete", "claim", claim_id, f"{m.actor} completed {held.target}")
    _settle_step(m, held, done=True, result=held.result)
    return ("claim", claim_id)


def _settle_step(m: Mutation, held: Claim, *, done: bool, result: str | None) -> None:
    for target in claim_targets(held.dump()):
        step_ref = parse_step_target(target)
        if step_ref is None:
            continue
        plan = m.get(Plan, step_ref[0])
        if plan is None:
            continue
        step = next((s for s in plan.steps if s.id == step_ref[1]), None)
        if step is None or step.claim_id != held.id:
            continue
        if done:
            step.status, step.result = "done", result
            summary = f"step {step.id} done by {m.actor}"
        else:
            step.status, step.claim_id = "todo", None
            summary = f"step {step.id} back to todo ({held.status})"
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


def respond_handoff(m: Mutation, handoff_id: str, accept: bool,
                    note: str | None = None) -> Key:
    """The recipient -- and only the recipient -- accepts or rejects a handoff (one sent to
    everyone, ``*``, may be answered by anyone but its sender)."""
    handoff = m.require(Handoff, handoff_id)
    if handoff.to == "*":
        if handoff.sender == m.actor:
            raise Conflict(f"handoff {handoff_id} is yours; its recipients answer it")
    elif handoff.to != m.actor:
        raise Conflict(f"handoff {handoff_id} is addressed to {handoff.to!r}, not {m.actor!r}; "
                       "only its recipient can answer it")
    if handoff.status != "open":
        raise Conflict(f"handoff {handoff_id} was already {handoff.status} by "
                       f"{handoff.answered_by or 'its recipient'}")
    handoff.status = "accepted" if accept else "rejected"
    handoff.answered_by, handoff.answered_at = m.actor, m.now_text
    handoff.answer_note = _text(note, "note", limits.text_chars_max)
    m.put(handoff)
    action = "accept" if accept else "reject"
    m.annotate(action, "handoff", handoff_id,
               f"{m.actor} {handoff.status} the handoff from {handoff.sender}")
    return ("handoff", handoff_id)


__all__ = [
    "HUMAN_PREFIX", "NothingReady", "StaleFence", "claim", "complete", "forget", "keep_alive",
    "lapsed", "normalize_target", "parse_step_target", "plan_create", "plan_update",
    "release", "release_for", "remember", "renew", "respond_handoff", "send_handoff",
    "send_message",
]
