"""The pages: each reads through journal_core's read models and renders one template.

Handlers are plain functions: Starlette runs them on a worker thread, so a read that
catches up with a busy journal never stalls the event loop serving the live feeds.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from journal_core import (
    FAMILIES,
    InvalidArgument,
    NotFound,
    board,
    claim_overview,
    events,
    health,
    queries,
    revisions,
    supersession,
)
from journal_core.vocabulary import ALL_ACTIONS, HANDOFF_STATUSES, MEMORY_KINDS, MEMORY_STATUSES

from .limits import (
    FEED_PANEL_ROWS,
    FEED_ROWS_SHOWN,
    LIST_PAGE_ROWS,
    RECIPIENTS_SHOWN_MAX,
    SEARCH_HITS_SHOWN,
)
from .render import dashboard, query

HANDOFF_SHOWN_DEFAULT = "open"


def page_number(request: Request, name: str = "page") -> int:
    text = request.query_params.get(name, "1")
    if not text.isdigit() or int(text) < 1:
        raise InvalidArgument(f"{name} is a whole number from 1 (got {text[:20]!r})")
    return int(text)


def seq_before(request: Request) -> int | None:
    """``?before=SEQ``: a page of what is older than that seq."""
    text = optional(request, "before")
    if text is not None and (not text.isdigit() or int(text) < 1):
        raise InvalidArgument(f"before is a seq, a whole number from 1 (got {text[:20]!r})")
    return int(text) if text else None


def optional(request: Request, name: str) -> str | None:
    return request.query_params.get(name) or None


def choice(request: Request, name: str, allowed: tuple[str, ...]) -> str | None:
    value = optional(request, name)
    if value is not None and value not in allowed:
        raise InvalidArgument(f"{name} is one of {', '.join(allowed)} (got {value[:40]!r})")
    return value


def recipients(request: Request) -> list[str]:
    known = sorted(queries.known_actors(dashboard(request).store))
    return known[:RECIPIENTS_SHOWN_MAX]


# -- board, claims, feed -------------------------------------------------------------------
def board_page(request: Request) -> Response:
    d = dashboard(request)
    found = board.board(d.store, page_number(request))
    panel = events.events_before(d.store, limit=FEED_PANEL_ROWS)
    return d.page(request, "board.html", active="board", board=found, columns=board.COLUMNS,
                  feed=panel, stream=f"/feed/stream?after={panel.head_seq}",
                  feed_rows_max=FEED_PANEL_ROWS)


def claims_page(request: Request) -> Response:
    d = dashboard(request)
    overview = claim_overview.claim_overview(d.store, page_number(request))
    return d.page(request, "claims.html", active="claims", overview=overview,
                  now=d.store.now())


def feed_page(request: Request) -> Response:
    d = dashboard(request)
    where = events.EventFilter(optional(request, "actor"),
                               choice(request, "family", events.EVENT_FAMILIES),
                               choice(request, "action", tuple(sorted(ALL_ACTIONS))))
    before = seq_before(request)
    found = events.events_before(d.store, before, where=where)
    filters = {"actor": where.actor, "family": where.family, "action": where.action}
    stream = None
    if before is None:
        stream = "/feed/stream" + query(after=found.head_seq, **filters)
    return d.page(request, "feed.html", active="feed", feed=found, filters=filters,
                  stream=stream, actors=recipients(request), families=events.EVENT_FAMILIES,
                  actions=sorted(ALL_ACTIONS), feed_rows_max=FEED_ROWS_SHOWN)


# -- one entity ------------------------------------------------------------------------------
def entity_page(request: Request) -> Response:
    d = dashboard(request)
    family, item_id = request.path_params["family"], request.path_params["item_id"]
    if family not in FAMILIES:
        raise NotFound(f"no family {family[:40]!r}: one of {', '.join(FAMILIES)}")
    view = d.store.entity_view(family, item_id)
    history = revisions.entity_history(d.store, family, item_id, seq_before(request))
    extra: dict[str, Any] = {}
    now = d.store.now()
    if family == "plan":
        extra["lane"] = board.plan_lane(d.store, item_id)
        extra["columns"] = board.COLUMNS
    elif family == "claim":
        extra["claim"] = claim_overview.claim_row(item_id, view["entity"], now)
    elif family == "memory":
        extra["chain"] = supersession.chain(d.store, item_id)
    return d.page(request, "entity.html", active=None, family=family, view=view,
                  entity=view["entity"], history=history, now=now,
                  done=optional(request, "done"), **extra)


# -- memory, messages, handoffs, search, health --------------------------------------------
def memory_page(request: Request) -> Response:
    d = dashboard(request)
    kind = choice(request, "kind", MEMORY_KINDS)
    status = choice(request, "status", MEMORY_STATUSES)
    found = supersession.memory_page(d.store, kind, status, optional(request, "after"),
                                     LIST_PAGE_ROWS)
    return d.page(request, "memory.html", active="memory", memory=found, kind=kind,
                  status=status, kinds=MEMORY_KINDS, statuses=MEMORY_STATUSES)


def messages_page(request: Request) -> Response:
    d = dashboard(request)
    found = queries.list_items(d.store, "message", limit=LIST_PAGE_ROWS,
                               after=optional(request, "after"))
    rows = [_with_entity(d.store, "message", row) for row in found["items"]]
    return d.page(request, "messages.html", active="messages", rows=rows, next=found["next"],
                  recipients=recipients(request), now=d.store.now())


def handoffs_page(request: Request) -> Response:
    d = dashboard(request)
    shown = request.query_params.get("status", HANDOFF_SHOWN_DEFAULT)
    if shown not in (*HANDOFF_STATUSES, "all"):
        raise InvalidArgument(f"status is one of {', '.join(HANDOFF_STATUSES)} or all")
    found = queries.list_items(d.store, "handoff", status=None if shown == "all" else shown,
                               limit=LIST_PAGE_ROWS, after=optional(request, "after"))
    rows = [_with_entity(d.store, "handoff", row) for row in found["items"]]
    return d.page(request, "handoffs.html", active="handoffs", rows=rows, next=found["next"],
                  shown=shown, statuses=(*HANDOFF_STATUSES, "all"),
                  recipients=recipients(request), now=d.store.now())


def _with_entity(store: Any, family: str, row: dict[str, Any]) -> dict[str, Any]:
    """A list row and the entity it names (for the fields a row leaves out: when, and the
    answer of a handoff)."""
    try:
        entity = store.entity_view(family, row["id"])["entity"]
    except NotFound:
        entity = {}
    return {**row, "entity": entity}


def search_page(request: Request) -> Response:
    d = dashboard(request)
    text = request.query_params.get("q", "").strip()
    family = choice(request, "family", FAMILIES)
    hits = queries.search(d.store, text, [family] if family else None,
                          SEARCH_HITS_SHOWN) if text else None
    return d.page(request, "search.html", active="search", q=text, family=family,
                  families=FAMILIES, hits=hits)


def health_page(request: Request) -> Response:
    d = dashboard(request)
    return d.page(request, "health.html", active="health", health=health.health(d.store))


__all__ = ["board_page", "claims_page", "entity_page", "feed_page", "handoffs_page",
           "health_page", "memory_page", "messages_page", "search_page"]
