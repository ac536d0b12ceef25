"""What is ready to start (docs/design.md, "The work queue").

A step is *ready* when its plan is active, the step is open (``todo``, or ``claimed`` by a
claim that has lapsed), every step it waits for (``after``) is done, and no active,
unexpired claim holds it. Plans are taken by ``priority`` (highest first), then oldest
first; steps in their plan's order. ``claim(target="next")`` claims the first ready step
under the same lock hold as it looks, so agents asking at once get different steps.

The functions here read plans through a ``PlanSource`` so the same rules serve the read
tool (``ready``, from the in-memory state) and the claim verb (inside a mutation).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from . import clock, limits
from .errors import InvalidArgument

Payload = dict[str, Any]
PlanLookup = Callable[[str], Payload | None]  # plan id -> payload (None: no such plan)
ClaimLookup = Callable[[str], Payload | None]  # claim id -> payload


@dataclass(frozen=True)
class StepRef:
    plan_id: str
    step_id: str

    @property
    def target(self) -> str:
        return f"step:{self.plan_id}/{self.step_id}"

    def text(self, home: str) -> str:
        return self.step_id if self.plan_id == home else f"{self.plan_id}/{self.step_id}"


def parse_blocker(ref: str, home: str) -> StepRef:
    """``s3`` (a step of the same plan) or ``pln_x/s3`` (a step of another plan)."""
    if not isinstance(ref, str) or not ref.strip():
        raise InvalidArgument("a blocker in `after` is a step id ('s1') or "
                              "'<plan_id>/<step_id>' ('pln_ab12/s3')")
    plan_id, sep, step_id = ref.strip().rpartition("/")
    if not sep:
        return StepRef(home, step_id)
    if not plan_id.startswith("pln_") or not step_id:
        raise InvalidArgument(f"blocker {ref!r}: a step of another plan is "
                              "'<plan_id>/<step_id>', e.g. pln_ab12/s3")
    return StepRef(plan_id, step_id)


def find_step(plan: Payload, step_id: str) -> Payload | None:
    for step in plan.get("steps") or []:
        if step.get("id") == step_id:
            return step  # type: ignore[no-any-return]
    return None


@dataclass
class Blocker:
    ref: StepRef
    status: str  # the blocker step's status, or "missing"
    holder: str | None = None
    until: str | None = None

    def describe(self, home: str) -> str:
        text = self.ref.text(home)
        if self.holder:
            return f"{text} ({self.status}, held by {self.holder} until {self.until})"
        return f"{text} ({self.status})"


def open_blockers(plan: Payload, step: Payload, plans: PlanLookup,
                  claims: ClaimLookup) -> list[Blocker]:
    """The blockers of ``step`` that are not done, with who holds them."""
    out = []
    for ref_text in step.get("after") or []:
        ref = parse_blocker(ref_text, str(plan["id"]))
        other = plan if ref.plan_id == plan["id"] else plans(ref.plan_id)
        blocker = find_step(other, ref.step_id) if other else None
        if blocker is None:
            out.append(Blocker(ref, "missing"))
            continue
        if blocker.get("status") == "done":
            continue
        holder = until = None
        claim = claims(str(blocker["claim_id"])) if blocker.get("claim_id") else None
        if claim is not None and claim.get("status") == "active":
            holder, until = claim.get("holder"), claim.get("expires_at")
        out.append(Blocker(ref, str(blocker.get("status")), holder, until))
    return out


def lapsed(claim: Payload | None, now: datetime) -> bool:
    """An active claim past its expiry (the journal says so only when someone takes over)."""
    if claim is None or claim.get("status") != "active":
        return True
    try:
        return clock.parse_rfc3339(str(claim.get("expires_at"))) <= now
    except ValueError:
        return False


@dataclass
class ReadyStep:
    plan_id: str
    plan_title: str
    step_id: str
    title: str
    unblocks: list[str] = field(default_factory=list)
    lapsed_holder: str | None = None  # a lapsed claim it would take over


@dataclass
class QueueView:
    """The ready steps in order, and why the other open steps are not ready."""

    ready: list[ReadyStep]
    waiting: list[str]  # "s4 after s2 (claimed, held by cursor#1 until ...)"
    held: list[str]  # "s1 held by cursor#1 until ..."
    open_total: int


def plan_order(plans: Iterable[Payload]) -> list[Payload]:
    """Active plans: highest priority first, then the oldest."""
    active = [p for p in plans if p.get("status") == "active"]
    return sorted(active, key=lambda p: (-int(p.get("priority") or 0),
                                         str(p.get("created_at", "")), str(p.get("id"))))


def queue(plans: Iterable[Payload], lookup: PlanLookup, claims: ClaimLookup, now: datetime,
          *, plan_id: str | None = None, tag: str | None = None) -> QueueView:
    ordered = plan_order(plans)
    unblocks = reverse_edges(ordered)
    view = QueueView([], [], [], 0)
    for plan in ordered:
        if plan_id is not None and plan["id"] != plan_id:
            continue
        if tag is not None and tag not in (plan.get("tags") or []):
            continue
        for step in plan.get("steps") or []:
            _classify(plan, step, lookup, claims, now, unblocks, view)
    return view


def _classify(plan: Payload, step: Payload, lookup: PlanLookup, claims: ClaimLookup,
              now: datetime, unblocks: dict[tuple[str, str], list[str]],
              view: QueueView) -> None:
    status = step.get("status")
    if status in ("done",):
        return
    view.open_total += 1
    home = str(plan["id"])
    claim = claims(str(step["claim_id"])) if step.get("claim_id") else None
    if status == "blocked":
        view.waiting.append(f"{step['id']} is marked blocked")
        return
    if status == "claimed" and not lapsed(claim, now):
        holder = claim.get("holder") if claim else "?"
        until = claim.get("expires_at") if claim else "?"
        view.held.append(f"{_name(home, step)} held by {holder} until {until}")
        return
    blockers = open_blockers(plan, step, lookup, claims)
    if blockers:
        waits = ", ".join(b.describe(home) for b in blockers[:limits.blockers_shown_max])
        view.waiting.append(f"{_name(home, step)} after {waits}")
        return
    view.ready.append(ReadyStep(
        home, str(plan.get("title", "")), str(step["id"]), str(step.get("title", "")),
        unblocks.get((home, str(step["id"])), []),
        claim.get("holder") if claim and status == "claimed" else None,
    ))


def _name(home: str, step: Payload) -> str:
    return f"{home}/{step['id']}"


def reverse_edges(plans: list[Payload]) -> dict[tuple[str, str], list[str]]:
    """(plan, step) -> the steps that wait for it ("s4", or "pln_x/s2" in another plan)."""
    out: dict[tuple[str, str], list[str]] = {}
    for plan in plans:
        home = str(plan["id"])
        for step in plan.get("steps") or []:
            for ref_text in step.get("after") or []:
                try:
                    ref = parse_blocker(ref_text, home)
                except InvalidArgument:
                    continue
                name = str(step["id"]) if ref.plan_id == home else f"{home}/{step['id']}"
                out.setdefault((ref.plan_id, ref.step_id), []).append(name)
    return out


def nothing_ready(view: QueueView, scope: str) -> str:
    """Why ``claim(target="next")`` found nothing: what is open and what it waits for."""
    if view.open_total == 0:
        return f"nothing is ready: no open steps in {scope}"
    parts = [*view.waiting, *view.held][:limits.blockers_shown_max]
    more = view.open_total - len(parts)
    tail = f"; and {more} more" if more > 0 else ""
    return (f"nothing is ready: {view.open_total} open step(s) in {scope}, none startable: "
            + "; ".join(parts) + tail)


# -- cycles -------------------------------------------------------------------------------
def find_cycle(start: StepRef, edges: Callable[[StepRef], list[StepRef]]) -> list[StepRef] | None:
    """A path from ``start`` back to itself along ``after`` edges, or None (bounded)."""
    stack: list[tuple[StepRef, list[StepRef]]] = [(start, [start])]
    seen: set[StepRef] = set()
    steps = 0
    while stack:
        node, path = stack.pop()
        for nxt in edges(node):
            steps += 1
            if steps > limits.dependency_walk_max:
                raise InvalidArgument("the dependency graph is too large to check for cycles")
            if nxt == start:
                return [*path, nxt]
            if nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, [*path, nxt]))
    return None
