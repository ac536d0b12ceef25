"""The board: every step of the active plans in one of five columns, with who holds it, the
time left, what it waits for and what it unblocks (the dashboard's first page).

    todo     open, but it waits for steps that are not done yet
    ready    what ``ready`` offers and ``claim(target="next")`` takes: open, every blocker
             done, no live claim (a lapsed claim is taken over by the next claimer)
    claimed  held by a live claim: active and not past its expiry
    blocked  someone marked it blocked, or it waits for a step that does not exist
    done     done

The rules are work_queue.py's, so the board and the ready list never disagree. Plans come
in the work queue's order (priority, then oldest), a page of them at a time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from . import limits
from .errors import InvalidArgument, NotFound
from .queries import seconds_left
from .store import Store
from .work_queue import Payload, lapsed, open_blockers, parse_blocker, plan_order, reverse_edges

COLUMNS = ("todo", "ready", "claimed", "blocked", "done")


@dataclass(frozen=True)
class Blocker:
    """A step this one waits for, as the board shows it."""

    text: str  # "s1", or "pln_x/s2" in another plan
    plan_id: str
    step_id: str
    status: str  # the blocker's status, or "missing"
    holder: str | None = None


@dataclass
class BoardStep:
    plan_id: str
    step_id: str
    title: str
    column: str
    status: str  # the step's own status as the plan records it
    holder: str | None = None
    claim_id: str | None = None
    expires_at: str | None = None
    seconds_left: int | None = None
    lapsed_holder: str | None = None  # a lapsed claim the next claimer takes over
    waits_for: list[Blocker] = field(default_factory=list)  # every `after`, done or not
    unblocks: list[str] = field(default_factory=list)
    result: str | None = None


@dataclass
class Lane:
    """One plan: its steps by column."""

    plan_id: str
    title: str
    owner: str | None
    priority: int
    tags: list[str]
    steps_done: int
    steps_total: int
    columns: dict[str, list[BoardStep]]


@dataclass
class Board:
    lanes: list[Lane]
    page: int
    pages: int
    plans_total: int
    counts: dict[str, int]  # steps per column, over the lanes of this page
    stale: bool


def board(store: Store, page: int = 1,
          per_page: int = limits.board_plans_page_max) -> Board:
    """One page of the board (pages count from 1)."""
    if isinstance(page, bool) or not isinstance(page, int) or page < 1:
        raise InvalidArgument("page must be a whole number from 1")
    per_page = max(1, min(per_page, limits.board_plans_page_max))
    views, stale = store.entities("plan")
    payloads: dict[str, Payload] = {str(v["item_id"]): v["entity"] for v in views}
    ordered = plan_order(payloads.values())
    pages = max(1, math.ceil(len(ordered) / per_page))
    shown = ordered[(page - 1) * per_page: page * per_page]
    edges = reverse_edges(ordered)
    now = store.now()
    claims = _ClaimCache(store)
    lanes = [_lane(plan, payloads, claims, edges, now) for plan in shown]
    counts = {column: sum(len(lane.columns[column]) for lane in lanes) for column in COLUMNS}
    return Board(lanes, page, pages, len(ordered), counts, stale)


def plan_lane(store: Store, plan_id: str) -> Lane:
    """One plan's steps by column, whatever the plan's status (its own page shows it)."""
    plan: Payload = store.entity_view("plan", plan_id)["entity"]
    views, _ = store.entities("plan")
    payloads: dict[str, Payload] = {str(v["item_id"]): v["entity"] for v in views}
    return _lane(plan, payloads, _ClaimCache(store), reverse_edges(plan_order(payloads.values())),
                 store.now())


class _ClaimCache:
    """Claim payloads by id, each read once per board."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.found: dict[str, Payload | None] = {}

    def __call__(self, claim_id: str) -> Payload | None:
        if claim_id not in self.found:
            try:
                self.found[claim_id] = self.store.entity_view("claim", claim_id)["entity"]
            except (NotFound, InvalidArgument):
                self.found[claim_id] = None
        return self.found[claim_id]


def _lane(plan: Payload, payloads: dict[str, Payload], claims: _ClaimCache,
          edges: dict[tuple[str, str], list[str]], now: datetime) -> Lane:
    columns: dict[str, list[BoardStep]] = {column: [] for column in COLUMNS}
    steps = plan.get("steps") or []
    for step in steps:
        placed = place_step(plan, step, payloads.get, claims, now)
        placed.unblocks = edges.get((placed.plan_id, placed.step_id), [])
        columns[placed.column].append(placed)
    return Lane(str(plan["id"]), str(plan.get("title", "")), plan.get("owner"),
                int(plan.get("priority") or 0), list(plan.get("tags") or []),
                len(columns["done"]), len(steps), columns)


def place_step(plan: Payload, step: Payload, plans: Any, claims: Any,
               now: datetime) -> BoardStep:
    """The column of one step, with its holder and blockers (``plans`` and ``claims`` look
    payloads up by id, as work_queue's functions do)."""
    home = str(plan["id"])
    status = str(step.get("status", "todo"))
    placed = BoardStep(home, str(step["id"]), str(step.get("title", "")), "todo", status,
                       result=step.get("result"))
    placed.waits_for = _waits_for(plan, step, plans, claims)
    claim = claims(str(step["claim_id"])) if step.get("claim_id") else None
    if status == "done":
        placed.column = "done"
    elif status == "claimed" and claim is not None and not lapsed(claim, now):
        placed.column = "claimed"
        placed.holder, placed.claim_id = claim.get("holder"), str(step["claim_id"])
        placed.expires_at = claim.get("expires_at")
        placed.seconds_left = seconds_left(claim, now)
    elif status == "blocked" or any(b.status == "missing" for b in placed.waits_for):
        placed.column = "blocked"
    elif any(b.status != "done" for b in placed.waits_for):
        placed.column = "todo"
    else:
        placed.column = "ready"
        if status == "claimed" and claim is not None:
            placed.lapsed_holder = claim.get("holder")
    return placed


def _waits_for(plan: Payload, step: Payload, plans: Any, claims: Any) -> list[Blocker]:
    """Every step in ``after`` with its status: the open ones as work_queue reports them,
    the others done."""
    home = str(plan["id"])
    still_open = {(b.ref.plan_id, b.ref.step_id): b
                  for b in open_blockers(plan, step, plans, claims)}
    out = []
    for text in step.get("after") or []:
        ref = parse_blocker(text, home)
        found = still_open.get((ref.plan_id, ref.step_id))
        out.append(Blocker(ref.text(home), ref.plan_id, ref.step_id,
                           found.status if found else "done",
                           found.holder if found else None))
    return out


__all__ = ["COLUMNS", "Blocker", "Board", "BoardStep", "Lane", "board", "place_step",
           "plan_lane"]
