"""The claims a person watches: the live ones with their time left (soonest to expire first,
those under ``claim_expiring_soon_s`` marked), the ones that lapsed recently without being
taken over, and the ones recently taken over by another actor.

A claim's targets are shown as their kind says: a file reservation as its path (or glob),
a plan step as the plan and step, anything else as its text.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from . import clock, limits
from .claim_index import claim_targets
from .errors import InvalidArgument
from .queries import active_claim_views, claim_status, seconds_left
from .store import Store
from .vocabulary import FILE_TARGET_PREFIX, STEP_TARGET_PREFIX


@dataclass(frozen=True)
class Target:
    kind: str  # "file" | "step" | "other"
    text: str  # the path or glob, "pln_x/s2", or the target as given
    plan_id: str | None = None
    step_id: str | None = None


@dataclass
class ClaimRow:
    id: str
    holder: str
    targets: list[Target]
    status: str  # as a reader should see it: an active claim past its expiry is "expired"
    expires_at: str
    seconds_left: int
    fence: int | None
    expiring_soon: bool = False
    note: str | None = None
    previous_holder: str | None = None
    taken_over_by: str | None = None
    taken_over_at: str | None = None


@dataclass
class ClaimOverview:
    active: list[ClaimRow]  # one page, soonest expiry first
    active_total: int
    expiring_soon_total: int
    page: int
    pages: int
    lapsed: list[ClaimRow] = field(default_factory=list)  # expired recently, not taken over
    taken_over: list[ClaimRow] = field(default_factory=list)  # taken over recently


def target_of(text: str) -> Target:
    if text.startswith(FILE_TARGET_PREFIX):
        return Target("file", text[len(FILE_TARGET_PREFIX):])
    if text.startswith(STEP_TARGET_PREFIX):
        plan_id, _, step_id = text[len(STEP_TARGET_PREFIX):].partition("/")
        if plan_id and step_id:
            return Target("step", f"{plan_id}/{step_id}", plan_id, step_id)
    return Target("other", text)


def claim_row(claim_id: str, entity: dict[str, Any], now: datetime) -> ClaimRow:
    left = seconds_left(entity, now)
    status = claim_status(entity, now)
    return ClaimRow(
        claim_id, str(entity.get("holder")), [target_of(t) for t in claim_targets(entity)],
        status, str(entity.get("expires_at")), left, entity.get("fence"),
        expiring_soon=status == "active" and left < limits.claim_expiring_soon_s,
        note=entity.get("note"), previous_holder=entity.get("previous_holder"),
        taken_over_by=entity.get("taken_over_by"), taken_over_at=entity.get("taken_over_at"))


def claim_overview(store: Store, page: int = 1,
                   per_page: int = limits.claims_page_max) -> ClaimOverview:
    if isinstance(page, bool) or not isinstance(page, int) or page < 1:
        raise InvalidArgument("page must be a whole number from 1")
    per_page = max(1, min(per_page, limits.claims_page_max))
    now = store.now()
    since = clock.to_rfc3339(now - timedelta(seconds=limits.claim_recent_s))
    rows = [claim_row(str(v["item_id"]), v["entity"], now) for v in active_claim_views(store)]
    live = sorted((r for r in rows if r.status == "active"), key=lambda r: (r.expires_at, r.id))
    lapsed = sorted((r for r in rows if r.status == "expired" and r.expires_at >= since),
                    key=lambda r: r.expires_at, reverse=True)
    return ClaimOverview(
        live[(page - 1) * per_page: page * per_page], len(live),
        sum(1 for r in live if r.expiring_soon), page, max(1, math.ceil(len(live) / per_page)),
        lapsed[:per_page], _taken_over_since(store, since, now)[:per_page])


def _taken_over_since(store: Store, since: str, now: datetime) -> list[ClaimRow]:
    """Claims taken over by another actor since ``since``, the newest first."""
    views, _ = store.entities("claim")
    found = [claim_row(str(v["item_id"]), v["entity"], now) for v in views
             if str(v["entity"].get("taken_over_at") or "") >= since
             and v["entity"].get("taken_over_by")]
    return sorted(found, key=lambda r: str(r.taken_over_at), reverse=True)


__all__ = ["ClaimOverview", "ClaimRow", "Target", "claim_overview", "claim_row", "target_of"]
