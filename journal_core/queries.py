"""Read-side questions an agent or a person asks of a store: list, search, the work briefing,
the journal's status, and the records after a seq (``tail``).

Everything here answers in compact rows, because the answers land in an agent's context: a
row names an entity and says enough to decide whether to ``get`` it. Every answer is bounded
(the caps below) and every list is paginated. The MCP tools and the CLI both call these, so
they say the same thing.

These functions only read: they go through the fresh path of ``Store`` (``entities``,
``refresh``) and never take the lock for long.
"""

from __future__ import annotations

import os
from collections import deque
from datetime import datetime
from typing import Any

from . import clock, limits
from .checkpoint import checkpoint_name, list_checkpoints
from .errors import InvalidArgument
from .ids import FAMILIES, check_actor, check_family
from .reader import Record
from .store import Store

# Caps of the work briefing: it must stay small whatever the size of the store.
briefing_unseen_events_max = 10
briefing_unseen_scan_seqs_max = 20_000  # unseen_count is a lower bound past this many seqs
briefing_claims_max = 10
briefing_plans_max = 4
briefing_plan_steps_max = 4
briefing_memory_max = 6
briefing_title_chars_max = 64
briefing_summary_chars_max = 72
# Compact rows and events.
row_title_chars_max = 120
event_summary_chars_max = 160
snippet_chars_max = 160
search_query_chars_max = 500
search_terms_max = 16
records_page_max = 1000

SEARCH_FAMILIES_DEFAULT = ("plan", "memory", "message", "handoff")
BRIEFING_MEMORY_KINDS = frozenset({"decision", "trap", "constraint"})
OPEN_STEP_STATUSES = frozenset({"todo", "claimed", "blocked"})
STATUSES: dict[str, tuple[str, ...]] = {
    "plan": ("draft", "active", "done", "abandoned"),
    "claim": ("active", "released", "completed", "expired"),
    "memory": ("active", "superseded", "archived"),
    "message": (),
    "handoff": ("open", "accepted", "rejected"),
}


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


# -- compact events -------------------------------------------------------------------
def compact_event(record: Record, *, with_payload: bool = False) -> dict[str, Any]:
    """A journal record as one small row: who did what to which entity, and when."""
    event: dict[str, Any] = {
        "seq": record["seq"], "ts": record["ts"], "actor": record["actor"],
        "action": record["action"], "item_type": record["item_type"],
    }
    for key in ("item_id", "entity_rev"):
        if record.get(key) is not None:
            event[key] = record[key]
    if record.get("summary"):
        event["summary"] = clip(record["summary"], event_summary_chars_max)
    if with_payload and record.get("payload") is not None:
        event["payload"] = record["payload"]
    return event


def records_after(store: Store, after_seq: int, limit: int = records_page_max) -> list[Record]:
    """Every complete record with ``seq > after_seq``, oldest first, at most ``limit``
    (all actors, journal notes included: this is what ``tail`` prints)."""
    if isinstance(after_seq, bool) or not isinstance(after_seq, int) or after_seq < 0:
        raise InvalidArgument("after_seq must be a non-negative integer")
    limit = max(1, min(limit, records_page_max))
    with store._mutex:  # one package: the store's own seq positioning, under its mutex
        store.refresh()
        head = store.head_seq
        out: list[Record] = []
        for record in store._records_after(after_seq, head):
            out.append(record)
            if len(out) >= limit:
                break
        return out


# -- list -----------------------------------------------------------------------------
def _sort_key(view: dict[str, Any]) -> tuple[str, str]:
    return (str((view.get("entity") or {}).get("created_at", "")), str(view["item_id"]))


def _parse_after(after: str | None) -> tuple[str, str] | None:
    if after is None or after == "":
        return None
    created, sep, item_id = str(after).rpartition("|")
    if not sep or not item_id:
        raise InvalidArgument("after must be the `next` value of a previous list answer")
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
    after: str | None = None, kind: str | None = None,
) -> dict[str, Any]:
    """One page of a family's entities, newest first, as compact rows.

    ``next`` is an opaque cursor for the following page (``None`` on the last page)."""
    family = check_family(family)
    _check_status(family, status)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InvalidArgument("limit must be a positive integer")
    limit = min(limit, limits.page_items_max)
    if kind is not None and family != "memory":
        raise InvalidArgument("kind filters memory items only")
    cursor = _parse_after(after)
    views, stale = store.entities(family)
    now = store.now()
    views.sort(key=_sort_key, reverse=True)
    rows: list[dict[str, Any]] = []
    next_cursor: str | None = None
    last_key = ("", "")
    for view in views:
        if cursor is not None and _sort_key(view) >= cursor:
            continue
        row = compact_row(family, view, now)
        if status is not None and row.get("status") != status:
            continue
        if kind is not None and row.get("kind") != kind:
            continue
        if len(rows) == limit:
            next_cursor = "|".join(last_key)
            break
        rows.append(row)
        last_key = _sort_key(view)
    return {"items": rows, "next": next_cursor, "stale": stale}


def compact_row(family: str, view: dict[str, Any], now: datetime) -> dict[str, Any]:
    """A one-line summary of an entity; what ``list`` answers and ``get`` expands."""
    entity: dict[str, Any] = view.get("entity") or {}
    row: dict[str, Any] = {"id": view["item_id"], "seq": view["seq"]}
    if family == "plan":
        steps = entity.get("steps") or []
        done = sum(1 for step in steps if step.get("status") == "done")
        row.update(title=clip(entity.get("title"), row_title_chars_max),
                   status=entity.get("status"), owner=entity.get("owner"),
                   steps=f"{done}/{len(steps)} done")
    elif family == "claim":
        row.update(title=clip(entity.get("target"), row_title_chars_max),
                   status=claim_status(entity, now), holder=entity.get("holder"),
                   expires_at=entity.get("expires_at"))
    elif family == "memory":
        row.update(title=clip(entity.get("title"), row_title_chars_max),
                   status=entity.get("status"), kind=entity.get("kind"))
    elif family == "message":
        row.update(title=clip(entity.get("body"), row_title_chars_max),
                   **{"from": entity.get("from")}, to=entity.get("to"),
                   thread=entity.get("thread"))
    else:
        row.update(title=clip(entity.get("summary"), row_title_chars_max),
                   status=entity.get("status"), **{"from": entity.get("from")},
                   to=entity.get("to"))
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
        return str(entity.get("body", ""))[:row_title_chars_max], (
            f"{entity.get('body', '')} {entity.get('thread') or ''} "
            f"{entity.get('from')} {entity.get('to')}"
        )
    if family == "handoff":
        return str(entity.get("summary", "")), (
            f"{entity.get('context', '')} {entity.get('from')} {entity.get('to')}"
        )
    return str(entity.get("target", "")), f"{entity.get('note') or ''} {entity.get('result') or ''}"


def _snippet(text: str, term: str) -> str:
    flat = " ".join(text.split())
    at = flat.lower().find(term)
    if at < 0:
        return clip(flat, snippet_chars_max)
    start = max(0, at - snippet_chars_max // 3)
    piece = flat[start: start + snippet_chars_max]
    return ("…" if start else "") + piece + ("…" if start + snippet_chars_max < len(flat) else "")


def search_terms(query: str) -> list[str]:
    if not isinstance(query, str) or not query.strip():
        raise InvalidArgument("query must be a non-empty string of words to look for")
    if len(query) > search_query_chars_max:
        raise InvalidArgument(f"query is {len(query)} characters; at most {search_query_chars_max}")
    terms = list(dict.fromkeys(query.lower().split()))
    if len(terms) > search_terms_max:
        raise InvalidArgument(f"query has {len(terms)} words; at most {search_terms_max}")
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
        "id": view["item_id"], "type": family, "title": clip(title, row_title_chars_max),
        "snippet": _snippet(body, next((t for t in terms if t in body_lower), terms[0]))
        if body.strip() else clip(title, snippet_chars_max),
    }
    if entity.get("status"):
        hit["status"] = entity["status"]
    return score, int(view["seq"]), hit


# -- the work briefing ----------------------------------------------------------------
def work_briefing(store: Store, actor: str) -> dict[str, Any]:
    """What an agent needs at the start of a turn, in well under 1,500 tokens: where the
    journal is, what it has not seen, its claims, the open plans and the standing decisions
    and traps. Each list is capped; ``*_total`` fields say how much more there is."""
    check_actor(actor)
    now = store.now()
    claims = active_claim_views(store)
    plans, _ = store.entities("plan")
    memory, _ = store.entities("memory")
    unseen = _unseen_digest(store, actor)
    holders = {
        str(view["item_id"]): str((view.get("entity") or {}).get("holder"))
        for view in claims if claim_status(view.get("entity") or {}, now) == "active"
    }
    mine = [
        {"id": view["item_id"], "target": clip(view["entity"].get("target"), 120),
         "expires_at": view["entity"].get("expires_at")}
        for view in sorted(claims, key=lambda v: int(v["seq"]), reverse=True)
        if holders.get(str(view["item_id"])) == actor
    ]
    open_plans = _open_plans(plans, holders, actor)
    decisions = [
        {"id": v["item_id"], "kind": v["entity"].get("kind"),
         "title": clip(v["entity"].get("title"), briefing_title_chars_max)}
        for v in sorted(memory, key=lambda v: int(v["seq"]), reverse=True)
        if (v.get("entity") or {}).get("status") == "active"
        and v["entity"].get("kind") in BRIEFING_MEMORY_KINDS
    ]
    return {
        "actor": actor, **unseen,
        "my_claims": mine[:briefing_claims_max],
        "plans": open_plans[:briefing_plans_max], "plans_open_total": len(open_plans),
        "memory": decisions[:briefing_memory_max], "memory_total": len(decisions),
    }


def active_claim_views(store: Store) -> list[dict[str, Any]]:
    """Views of the claims whose status is active (lapsed ones included): a store keeps every
    claim ever taken, and only these few matter to a briefing."""
    store.fresh("claim")  # claims read through to the journal tail
    with store._mutex:  # one package: the store's index of active claims by target
        ids = sorted({claim_id for ids in store.state.active_claims.values() for claim_id in ids})
    return [store.entity_view("claim", claim_id) for claim_id in ids]


def _unseen_digest(store: Store, actor: str) -> dict[str, Any]:
    newest: deque[Record] = deque(maxlen=briefing_unseen_events_max)
    count = 0
    with store._mutex:  # one package: the store's own seq positioning, under its mutex
        store.refresh()
        head = store.head_seq
        last = store.cursors.get(actor)
        start = max(last, head - briefing_unseen_scan_seqs_max)
        for record in store._records_after(start, head):
            if record["actor"] != actor and record["item_type"] != "journal":
                count += 1
                newest.append(record)
    digest: dict[str, Any] = {"head_seq": head, "last_seq": last, "unseen_count": count}
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
        event["summary"] = clip(event["summary"], briefing_summary_chars_max)
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
            "id": view["item_id"], "title": clip(plan.get("title"), briefing_title_chars_max),
            "open_steps": lines[:briefing_plan_steps_max],
        }
        if len(lines) > briefing_plan_steps_max:
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
    title = clip(step.get("title"), briefing_title_chars_max - 16)
    return f"{step.get('id')} [{status}] {title}"


# -- status ---------------------------------------------------------------------------
def journal_status(store: Store) -> dict[str, Any]:
    """Head seq, segments, newest checkpoint, the stores imported from (origin store id ->
    newest origin seq imported), live entity counts and doctor counters."""
    with store._mutex:
        store.refresh()
        segments = store.journal.segments()
        sizes = [store.journal.size(segment) for segment in segments]
        counters = store.counters.as_dict()
        counters["unexplained_corruption"] = store.counters.unexplained_corruption
        live = {family: len(store.state.live(family)) for family in FAMILIES}
        head = store.head_seq
    return {
        "store": store.root, "store_id": store.store_id, "head_seq": head,
        "segments": {
            "count": len(segments), "bytes": sum(sizes),
            "active": f"seg-{segments[-1]:0{limits.segment_name_digits}d}.jsonl"
            if segments else None,
        },
        "checkpoint": newest_checkpoint(store),
        "origins": store.origins(),
        "live": live,
        "counters": counters,
    }


def newest_checkpoint(store: Store) -> dict[str, Any] | None:
    heads = list_checkpoints(store.fileio, store.checkpoints_dir)
    if not heads:
        return None
    name = checkpoint_name(heads[-1])
    return {"file": name, "head_seq": heads[-1],
            "bytes": store.fileio.size(os.path.join(store.checkpoints_dir, name))}
