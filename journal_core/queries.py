"""Read-side questions an agent or a person asks of a store: list, search, ready work, the
work briefing, the journal's status, an entity's history, and the records after a seq.

Everything here answers in compact rows, because the answers land in an agent's context: a
row names an entity and says enough to decide whether to ``get`` it. Every answer is bounded
(the caps in limits.py) and every list is paginated. The MCP tools, the CLI and the
dashboard all call these, so they say the same thing. They only read: through the store's
public methods, never taking the lock.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime
from typing import Any

from . import clock, limits
from .claim_index import claim_targets
from .errors import InvalidArgument, NotFound
from .ids import check_actor, check_family, check_item_id
from .journal import Record
from .paths import parse_file_target
from .store import Store
from .unseen import matches
from .vocabulary import FAMILIES, MEMORY_KINDS, STATUSES
from .work_queue import queue

SEARCH_FAMILIES_DEFAULT = ("plan", "memory", "message", "handoff")
BRIEFING_MEMORY_KINDS = frozenset({"decision", "trap", "constraint"})
OPEN_STEP_STATUSES = frozenset({"todo", "claimed", "blocked"})


def clip(text: object, chars_max: int) -> str:
    """One line, at most ``chars_max`` characters (an ellipsis marks a cut)."""
    flat = " ".join(str(text or "").split())
    return flat if len(flat) <= chars_max else flat[: chars_max - 1] + "…"


def claim_is_expired(expires_at: object, now: datetime) -> bool:
    try:
        return clock.parse_rfc3339(str(expires_at)) <= now
    except ValueError:
        return str(expires_at) <= clock.to_rfc3339(now)


def claim_status(claim: dict[str, Any], now: datetime) -> str:
    """A claim's status as a reader should see it: an active claim past its expiry is expired
    (the journal records that only when someone takes the target over)."""
    status = str(claim.get("status", "active"))
    if status == "active" and claim_is_expired(claim.get("expires_at"), now):
        return "expired"
    return status


def seconds_left(claim: dict[str, Any], now: datetime) -> int:
    try:
        return max(0, int((clock.parse_rfc3339(str(claim.get("expires_at"))) - now)
                          .total_seconds()))
    except ValueError:
        return 0


# -- compact events -------------------------------------------------------------------
def compact_event(record: Record, *, with_payload: bool = False,
                  summary_chars: int = limits.event_summary_chars_max) -> dict[str, Any]:
    """A journal record as one small row: who did what to which entity, and when."""
    event: dict[str, Any] = {
        "seq": record["seq"], "ts": record["ts"], "actor": record["actor"],
        "action": record["action"], "item_type": record["item_type"],
    }
    for key in ("item_id", "entity_rev"):
        if record.get(key) is not None:
            event[key] = record[key]
    if record.get("summary"):
        event["summary"] = clip(record["summary"], summary_chars)
    if with_payload and record.get("payload") is not None:
        event["payload"] = record["payload"]
    return event


def records_after(store: Store, after_seq: int,
                  limit: int = limits.records_page_max) -> list[Record]:
    """Every complete record with ``seq > after_seq``, oldest first, at most ``limit``."""
    return store.records_after(after_seq, limit)


# -- list -----------------------------------------------------------------------------
def _sort_key(view: dict[str, Any]) -> tuple[str, str]:
    return (str((view.get("entity") or {}).get("created_at", "")), str(view["item_id"]))


def parse_after(after: str | None, family: str) -> tuple[str, str] | None:
    """A ``next`` cursor of ``list``: ``<created_at>|<item_id>``, refused when malformed."""
    if after is None or after == "":
        return None
    created, sep, item_id = str(after).rpartition("|")
    problem = None
    if not sep or not item_id:
        problem = "it has no '|'"
    else:
        try:
            clock.parse_rfc3339(created)
            check_item_id(family, item_id)
        except (ValueError, InvalidArgument) as exc:
            problem = str(exc)
    if problem:
        raise InvalidArgument(f"after {str(after)[:80]!r} is not the `next` of a {family} list "
                              f"answer ({problem}); pass the `next` value exactly, or omit it")
    return (created, item_id)


def _check_status(family: str, status: str | None) -> None:
    if status is None:
        return
    allowed = STATUSES[family]
    if not allowed:
        raise InvalidArgument(f"{family} items have no status; list them without one")
    if status not in allowed:
        raise InvalidArgument(
            f"unknown {family} status {status!r}: expected one of {', '.join(allowed)}"
        )


def list_items(
    store: Store, family: str, status: str | None = None, limit: int = 50,
    after: str | None = None, kind: str | None = None, paths: list[str] | None = None,
) -> dict[str, Any]:
    """One page of a family's entities, newest first, as compact rows. ``paths`` (claims):
    only claims whose targets overlap these paths. ``next`` is an opaque cursor for the
    following page (``None`` on the last page)."""
    family = check_family(family)
    _check_status(family, status)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InvalidArgument("limit must be a positive integer")
    limit = min(limit, limits.page_items_max)
    if kind is not None and family != "memory":
        raise InvalidArgument("kind filters memory items only")
    if kind is not None and kind not in MEMORY_KINDS:
        raise InvalidArgument(f"unknown memory kind {kind!r}: one of {', '.join(MEMORY_KINDS)}")
    overlapping = claims_on_paths(store, paths) if paths is not None else None
    if paths is not None and family != "claim":
        raise InvalidArgument("paths filters claims only (who holds anything overlapping)")
    cursor = parse_after(after, family)
    views, stale = store.entities(family)
    now = store.now()
    views.sort(key=_sort_key, reverse=True)
    rows: list[dict[str, Any]] = []
    next_cursor: str | None = None
    last_key = ("", "")
    for view in views:
        if cursor is not None and _sort_key(view) >= cursor:
            continue
        if overlapping is not None and view["item_id"] not in overlapping:
            continue
        row = compact_row(family, view, now)
        if status is not None and row.get("status") != status:
            continue
        if kind is not None and row.get("kind") != kind:
            continue
        if len(rows) == limit:
            next_cursor = "|".join(last_key)
            break
        if overlapping is not None:
            row["overlaps"] = overlapping[view["item_id"]]
        rows.append(row)
        last_key = _sort_key(view)
    return {"items": rows, "next": next_cursor, "stale": stale}


def claims_on_paths(store: Store, paths: list[str]) -> dict[str, str]:
    """Active claims holding anything that overlaps ``paths``: claim id -> a path both
    cover (the git guard asks this)."""
    if not isinstance(paths, list) or not paths:
        raise InvalidArgument("paths is a non-empty list of repository paths or globs")
    if len(paths) > limits.paths_query_max:
        raise InvalidArgument(f"at most {limits.paths_query_max} paths at once")
    patterns = [parse_file_target(p) for p in paths]
    store.refresh()
    found: dict[str, str] = {}
    with store.replica.state_lock:
        claims = store.replica.state.claims
        for pattern in patterns:
            for claim_id, _, witness in claims.overlapping_paths(pattern):
                found.setdefault(claim_id, witness)
    return found


def compact_row(family: str, view: dict[str, Any], now: datetime) -> dict[str, Any]:
    """A one-line summary of an entity; what ``list`` answers and ``get`` expands."""
    entity: dict[str, Any] = view.get("entity") or {}
    row: dict[str, Any] = {"id": view["item_id"], "seq": view["seq"]}
    title_max = limits.row_title_chars_max
    if family == "plan":
        steps = entity.get("steps") or []
        done = sum(1 for step in steps if step.get("status") == "done")
        row.update(title=clip(entity.get("title"), title_max), status=entity.get("status"),
                   owner=entity.get("owner"), steps=f"{done}/{len(steps)} done")
    elif family == "claim":
        targets = claim_targets(entity)
        shown = targets[0] if len(targets) == 1 else f"{targets[0]} (+{len(targets) - 1})"
        row.update(title=clip(shown, title_max), status=claim_status(entity, now),
                   holder=entity.get("holder"), expires_at=entity.get("expires_at"),
                   fence=entity.get("fence"))
    elif family == "memory":
        row.update(title=clip(entity.get("title"), title_max), status=entity.get("status"),
                   kind=entity.get("kind"))
    elif family == "message":
        row.update(title=clip(entity.get("body"), title_max),
                   **{"from": entity.get("from")}, to=entity.get("to"),
                   thread=entity.get("thread"))
    else:
        row.update(title=clip(entity.get("summary"), title_max), status=entity.get("status"),
                   **{"from": entity.get("from")}, to=entity.get("to"))
    return {key: value for key, value in row.items() if value is not None}


# -- search ---------------------------------------------------------------------------
def _search_text(family: str, entity: dict[str, Any]) -> tuple[str, str]:
    """(title, body) of an entity as search sees them."""
    tags = " ".join(str(tag) for tag in entity.get("tags") or [])
    if family == "plan":
        steps = " ".join(
            f"{s.get('title', '')} {s.get('result') or ''}" for s in entity.get("steps") or []
        )
        return str(entity.get("title", "")), f"{entity.get('goal', '')} {steps} {tags}"
    if family == "memory":
        return str(entity.get("title", "")), f"{entity.get('body', '')} {entity.get('kind')} {tags}"
    if family == "message":
        return str(entity.get("body", ""))[: limits.row_title_chars_max], (
            f"{entity.get('body', '')} {entity.get('thread') or ''} "
            f"{entity.get('from')} {entity.get('to')}"
        )
    if family == "handoff":
        return str(entity.get("summary", "")), (
            f"{entity.get('context', '')} {entity.get('from')} {entity.get('to')}"
        )
    text = f"{entity.get('note') or ''} {entity.get('result') or ''}"
    return " ".join(claim_targets(entity)), text


def _snippet(text: str, term: str) -> str:
    flat = " ".join(text.split())
    width = limits.snippet_chars_max
    at = flat.lower().find(term)
    if at < 0:
        return clip(flat, width)
    start = max(0, at - width // 3)
    piece = flat[start: start + width]
    return ("…" if start else "") + piece + ("…" if start + width < len(flat) else "")


def search_terms(query: str) -> list[str]:
    if not isinstance(query, str) or not query.strip():
        raise InvalidArgument("query must be a non-empty string of words to look for")
    if len(query) > limits.search_query_chars_max:
        raise InvalidArgument(f"query is {len(query)} characters; at most "
                              f"{limits.search_query_chars_max}")
    terms = list(dict.fromkeys(query.lower().split()))
    if len(terms) > limits.search_terms_max:
        raise InvalidArgument(f"query has {len(terms)} words; at most {limits.search_terms_max}")
    return terms


def search(
    store: Store, query: str, item_types: list[str] | None = None, limit: int = 20,
) -> list[dict[str, Any]]:
    """Entities whose text holds every word of ``query`` (case-insensitive), best first:
    title matches weigh more, then the most recently changed."""
    terms = search_terms(query)
    families = [check_family(t) for t in item_types] if item_types else SEARCH_FAMILIES_DEFAULT
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InvalidArgument("limit must be a positive integer")
    limit = min(limit, limits.search_hits_max)
    scored: list[tuple[int, int, dict[str, Any]]] = []
    for family in dict.fromkeys(families):
        views, _ = store.entities(family)
        for view in views:
            hit = _score(family, view, terms)
            if hit is not None:
                scored.append(hit)
    scored.sort(key=lambda item: (item[0], item[1]), reverse=True)
    return [hit for _, _, hit in scored[:limit]]


def _score(
    family: str, view: dict[str, Any], terms: list[str],
) -> tuple[int, int, dict[str, Any]] | None:
    entity: dict[str, Any] = view.get("entity") or {}
    title, body = _search_text(family, entity)
    title_lower, body_lower = title.lower(), body.lower()
    score = 0
    for term in terms:
        in_title = term in title_lower
        if not in_title and term not in body_lower:
            return None
        score += 3 if in_title else 1
    hit: dict[str, Any] = {
        "id": view["item_id"], "type": family, "title": clip(title, limits.row_title_chars_max),
        "snippet": _snippet(body, next((t for t in terms if t in body_lower), terms[0]))
        if body.strip() else clip(title, limits.snippet_chars_max),
    }
    if entity.get("status"):
        hit["status"] = entity["status"]
    return score, int(view["seq"]), hit


# -- ready work -----------------------------------------------------------------------
def ready(store: Store, plan_id: str | None = None, tag: str | None = None, limit: int = 20,
          after: str | None = None) -> dict[str, Any]:
    """The steps an agent can start now, in the order ``claim(target="next")`` takes them."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InvalidArgument("limit must be a positive integer")
    limit = min(limit, limits.ready_page_max)
    if plan_id is not None:
        check_item_id("plan", plan_id)
    view = _queue(store, plan_id, tag)
    rows = [{"plan": r.plan_id, "step": r.step_id, "title": clip(r.title,
                                                                 limits.row_title_chars_max),
             "plan_title": clip(r.plan_title, limits.briefing_title_chars_max),
             **({"unblocks": r.unblocks[: limits.briefing_list_max]} if r.unblocks else {}),
             **({"takes_over": r.lapsed_holder} if r.lapsed_holder else {})}
            for r in view.ready]
    start = 0
    if after:
        keys = [f"{r['plan']}/{r['step']}" for r in rows]
        if after not in keys:
            raise InvalidArgument(f"after {after[:80]!r} is not a step of this ready list "
                                  "(pass the `next` of the previous answer)")
        start = keys.index(after) + 1
    page = rows[start: start + limit]
    more = start + limit < len(rows)
    answer: dict[str, Any] = {"steps": page, "total": len(rows),
                              "next": f"{page[-1]['plan']}/{page[-1]['step']}" if more else None}
    if not rows:
        from .work_queue import nothing_ready

        answer["why"] = nothing_ready(view, f"plan {plan_id}" if plan_id else "active plans")
    return answer


def _queue(store: Store, plan_id: str | None, tag: str | None) -> Any:
    plans, _ = store.entities("plan")
    payloads = {str(v["item_id"]): v["entity"] for v in plans}
    if plan_id is not None and plan_id not in payloads:
        raise NotFound(f"no plan with id {plan_id!r}")

    def claim_payload(claim_id: str) -> dict[str, Any] | None:
        try:
            entity: dict[str, Any] | None = store.entity_view("claim", claim_id)["entity"]
            return entity
        except (NotFound, InvalidArgument):
            return None

    return queue(payloads.values(), payloads.get, claim_payload, store.now(),
                 plan_id=plan_id, tag=tag)


# -- the work briefing ----------------------------------------------------------------
def work_briefing(store: Store, actor: str) -> dict[str, Any]:
    """What an agent needs at the start of a turn, in well under 1,500 tokens: where the
    journal is, what it has not seen, its claims and their time left, claims of its that
    were taken over, handoffs and direct messages to it, the next ready steps, the open
    plans and the standing decisions and traps. Every list is capped; ``*_total`` says how
    many there are in all."""
    check_actor(actor)
    now = store.now()
    claims = active_claim_views(store)
    holders = {str(v["item_id"]): str(v["entity"].get("holder")) for v in claims
               if claim_status(v["entity"], now) == "active"}
    unseen = _unseen_digest(store, actor)
    cursor = unseen["last_seq"]
    mine = _my_claims(claims, actor, now)
    plans, _ = store.entities("plan")
    memory, _ = store.entities("memory")
    open_plans = _open_plans(plans, holders, actor)
    decisions = _standing_memory(memory)
    handoffs, messages = _addressed_to(store, actor, cursor)
    taken = _taken_over(store, actor, cursor)
    queued = _queue(store, None, None)
    ready_rows = [f"{r.plan_id}/{r.step_id} {clip(r.title, limits.briefing_title_chars_max)}"
                  for r in queued.ready]
    cap = limits.briefing_list_max
    return {
        "actor": actor, "store": store.root, **unseen,
        "my_claims": mine[: limits.briefing_claims_max], "my_claims_total": len(mine),
        "taken_over": taken[:cap], "taken_over_total": len(taken),
        "handoffs": handoffs[:cap], "handoffs_total": len(handoffs),
        "messages": messages[:cap], "messages_total": len(messages),
        "ready": ready_rows[: limits.briefing_ready_max], "ready_total": len(ready_rows),
        "plans": open_plans[: limits.briefing_plans_max], "plans_open_total": len(open_plans),
        "memory": decisions[: limits.briefing_memory_max], "memory_total": len(decisions),
    }


def _my_claims(claims: list[dict[str, Any]], actor: str, now: datetime) -> list[dict[str, Any]]:
    mine = []
    for view in sorted(claims, key=lambda v: int(v["seq"]), reverse=True):
        entity = view["entity"]
        if entity.get("holder") != actor or claim_status(entity, now) != "active":
            continue
        targets = claim_targets(entity)
        shown = targets[0] if len(targets) == 1 else f"{targets[0]} (+{len(targets) - 1})"
        mine.append({"id": view["item_id"], "target": clip(shown, limits.briefing_target_chars_max),
                     "left_s": seconds_left(entity, now), "fence": entity.get("fence")})
    return mine


def _standing_memory(memory: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"id": v["item_id"], "kind": v["entity"].get("kind"),
         "title": clip(v["entity"].get("title"), limits.briefing_title_chars_max)}
        for v in sorted(memory, key=lambda v: int(v["seq"]), reverse=True)
        if (v.get("entity") or {}).get("status") == "active"
        and v["entity"].get("kind") in BRIEFING_MEMORY_KINDS
    ]


def _addressed_to(store: Store, actor: str,
                  cursor: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Open handoffs addressed to the actor; messages addressed to it (not to ``*``) that
    it has not acked."""
    handoff_views, _ = store.entities("handoff")
    handoffs = [
        {"id": v["item_id"], "from": v["entity"].get("from"),
         "summary": clip(v["entity"].get("summary"), limits.briefing_summary_chars_max)}
        for v in sorted(handoff_views, key=lambda v: int(v["seq"]))
        if v["entity"].get("status") == "open" and v["entity"].get("to") == actor
    ]
    message_views, _ = store.entities("message")
    messages = [
        {"id": v["item_id"], "from": v["entity"].get("from"),
         "body": clip(v["entity"].get("body"), limits.briefing_summary_chars_max)}
        for v in sorted(message_views, key=lambda v: int(v["seq"]))
        if v["entity"].get("to") == actor and int(v["seq"]) > cursor
    ]
    return handoffs, messages


def _taken_over(store: Store, actor: str, cursor: int) -> list[str]:
    """'your claim on X expired and was taken by Y at T', until the actor acks past it."""
    views, _ = store.entities("claim")
    out = []
    for view in sorted(views, key=lambda v: int(v["seq"])):
        entity = view["entity"]
        if entity.get("holder") == actor and entity.get("taken_over_by") and \
                int(view["seq"]) > cursor:
            out.append(f"your claim on {clip(entity.get('target'), 80)} expired and was taken "
                       f"by {entity['taken_over_by']} at {entity.get('taken_over_at')}")
    return out


def active_claim_views(store: Store) -> list[dict[str, Any]]:
    """Views of the claims whose status is active (lapsed ones included): a store keeps every
    claim ever taken, and only these few matter to a briefing."""
    views = []
    for claim_id in store.active_claim_ids():
        try:
            views.append(store.entity_view("claim", claim_id))
        except NotFound:
            continue
    return views


def _unseen_digest(store: Store, actor: str) -> dict[str, Any]:
    newest: deque[Record] = deque(maxlen=limits.briefing_unseen_events_max)
    count = 0
    store.refresh()
    head = store.head_seq
    last = store.cursor(actor)
    start = max(last, head - limits.briefing_unseen_scan_seqs_max)
    kinds: dict[str, int] = {}
    for group in store.journal.scan(start, envelope_only=True):
        for record in group.records:
            if record["seq"] > head:
                break
            if matches(record, actor, None):
                count += 1
                kinds[record["item_type"]] = kinds.get(record["item_type"], 0) + 1
                newest.append(record)
        if group.last_seq >= head:
            break
    digest: dict[str, Any] = {"head_seq": head, "last_seq": last, "unseen_count": count,
                              "unseen_by_type": kinds}
    if start > last:
        digest["unseen_count_is_lower_bound"] = True
    digest["unseen"] = [_brief_event(record) for record in newest]
    return digest


def _brief_event(record: Record) -> dict[str, Any]:
    """A compact event without what the briefing can spare: time, rev, and the item type
    (the id's prefix names it)."""
    event = compact_event(record)
    for key in ("ts", "entity_rev", "item_type"):
        event.pop(key, None)
    if "summary" in event:
        event["summary"] = clip(event["summary"], limits.briefing_summary_chars_max)
    return event


def _open_plans(
    plans: list[dict[str, Any]], holders: dict[str, str], actor: str,
) -> list[dict[str, Any]]:
    """Active plans with open steps, the actor's own (owned or claimed in) first."""
    ranked: list[tuple[bool, int, dict[str, Any]]] = []
    for view in plans:
        plan: dict[str, Any] = view.get("entity") or {}
        if plan.get("status") != "active":
            continue
        open_steps = [s for s in plan.get("steps") or [] if s.get("status") in OPEN_STEP_STATUSES]
        if not open_steps:
            continue
        lines = [_step_line(step, holders) for step in open_steps]
        mine = plan.get("owner") == actor or any(
            holders.get(str(s.get("claim_id"))) == actor for s in open_steps
        )
        row: dict[str, Any] = {
            "id": view["item_id"],
            "title": clip(plan.get("title"), limits.briefing_title_chars_max),
            "open_steps": lines[: limits.briefing_plan_steps_max],
        }
        if len(lines) > limits.briefing_plan_steps_max:
            row["open_steps_total"] = len(lines)
        ranked.append((mine, int(view["seq"]), row))
    ranked.sort(key=lambda item: (item[0], item[1]), reverse=True)
    return [row for _, _, row in ranked]


def _step_line(step: dict[str, Any], holders: dict[str, str]) -> str:
    """``s2 [claimed by bob] Write the parser``: one short string per open step."""
    status = str(step.get("status"))
    if status == "claimed":
        holder = holders.get(str(step.get("claim_id")))
        status = f"claimed by {holder}" if holder else "claimed (lapsed)"
    elif step.get("after"):
        status = f"{status}, after {','.join(step['after'][:3])}"
    title = clip(step.get("title"), limits.briefing_title_chars_max - 16)
    return f"{step.get('id')} [{status}] {title}"


# -- history ---------------------------------------------------------------------------
def history(store: Store, family: str, item_id: str,
            limit: int = limits.history_revs_max) -> list[Record]:
    """Every record of one entity still kept in the journal, oldest first (a scan)."""
    check_family(family)
    check_item_id(family, item_id)
    out: list[Record] = []
    for group in store.journal.scan(store.journal.oldest_seq() - 1):
        for record in group.records:
            if record.get("item_id") == item_id and record["item_type"] == family:
                out.append(record)
    return out[-limit:]


# -- status ---------------------------------------------------------------------------
def journal_status(store: Store) -> dict[str, Any]:
    """Head seq, the journal's parts, newest checkpoint, the stores imported from (origin
    store id -> newest origin seq imported), live entity counts and doctor counters."""
    stale = store.refresh()
    stats = store.journal.stats()
    with store.replica.state_lock:
        counters = store.counters.as_dict()
        live = {family: len(store.state.live(family)) for family in FAMILIES}
        head = store.head_seq
    return {
        "store": store.root, "store_id": store.store_id, "head_seq": head,
        "backend": stats.backend,
        "layout": store.location.kind if store.location is not None else stats.backend,
        "segments": {"count": stats.parts, "bytes": stats.bytes, "active": stats.active},
        "checkpoint": newest_checkpoint(store),
        "origins": store.origins(),
        "live": live,
        "counters": counters,
        "read_only": store.read_only,
        "stale": stale,
    }


def newest_checkpoint(store: Store) -> dict[str, Any] | None:
    heads = store.checkpoints.heads()
    if not heads:
        return None
    data = store.checkpoints.read(heads[-1]) or b""
    from .checkpoint import checkpoint_name

    return {"file": checkpoint_name(heads[-1]), "head_seq": heads[-1], "bytes": len(data)}


# -- actors ----------------------------------------------------------------------------
def known_actors(store: Store) -> set[str]:
    """Every actor that created, holds, sent or received something in this store."""
    store.refresh()
    names: set[str] = set()
    with store.replica.state_lock:
        for family in FAMILIES:
            for entity in store.state.families[family].values():
                names.add(entity.actor)
                payload = entity.payload or {}
                for key in ("created_by", "holder", "from", "to", "owner"):
                    value = payload.get(key)
                    if isinstance(value, str) and value != "*":
                        names.add(value)
    names.discard("agentjournal")
    return names
