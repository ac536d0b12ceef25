"""The digest: what an agent should know before its next step, in one short block (what
``agentjournal hook`` prints into a client's context, docs/design.md "Staying in touch").

It answers four questions and nothing else: how many events I have not seen (by kind),
which handoffs and direct messages wait for me, which of my claims are about to expire,
and which of my claims were taken over. It only reads: no lock, no cursor moved, nothing
written. It is cheap on a big store: the entities come from the open store's state
(newest checkpoint + tail), and unseen events are counted among the newest
``limits.hook_unseen_scan_seqs_max`` seqs at most (then the count is a lower bound).

``digest_text`` renders it in at most ``limits.hook_chars_max_default`` characters, and
as nothing at all when there is nothing to say, so a hook adds no noise.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from . import limits
from .claim_index import claim_targets
from .ids import check_actor
from .queries import claim_status, clip, seconds_left
from .replay import EntityState
from .unseen import matches

if TYPE_CHECKING:
    from .store import Store

WIDTHS = (60, 40, 24)  # item widths tried, widest first, until the block fits


def digest(store: Store, actor: str) -> dict[str, Any]:
    """The four answers for ``actor``, each list capped at ``limits.hook_items_max`` with
    its total."""
    check_actor(actor)
    store.refresh()
    now = store.now()
    cursor = store.cursor(actor)
    head = store.head_seq
    unseen, lower_bound = _unseen_by_type(store, actor, cursor, head)
    with store.replica.state_lock:
        state = store.replica.state
        handoffs = [_handoff_row(e) for e, p in _live(state.families["handoff"].values())
                    if p.get("status") == "open" and p.get("to") == actor]
        messages = [_message_row(e) for e, p in _live(state.families["message"].values())
                    if p.get("to") == actor and e.seq > cursor]
        taken = [_taken_row(e) for e, p in _live(state.families["claim"].values())
                 if p.get("holder") == actor and p.get("taken_over_by") and e.seq > cursor]
        claims = [e for claim_id in sorted(state.claims.active_ids())
                  if (e := state.entity("claim", claim_id)) is not None and e.payload]
    expiring = _expiring(claims, actor, now)
    cap = limits.hook_items_max
    return {
        "actor": actor, "head_seq": head, "last_seq": cursor,
        "unseen_count": sum(unseen.values()), "unseen_by_type": unseen,
        **({"unseen_count_is_lower_bound": True} if lower_bound else {}),
        "handoffs": handoffs[-cap:], "handoffs_total": len(handoffs),
        "messages": messages[-cap:], "messages_total": len(messages),
        "expiring": expiring[:cap], "expiring_total": len(expiring),
        "taken_over": taken[-cap:], "taken_over_total": len(taken),
    }


def _live(entities: Any) -> list[tuple[EntityState, dict[str, Any]]]:
    """(entity, payload) of the live ones whose payload is known, oldest first."""
    found = [(e, e.payload) for e in entities if not e.deleted and e.payload is not None]
    return sorted(found, key=lambda pair: pair[0].seq)


def _unseen_by_type(store: Store, actor: str, cursor: int,
                    head: int) -> tuple[dict[str, int], bool]:
    """Unseen events by item type, counted after the cursor -- but among the newest
    ``hook_unseen_scan_seqs_max`` seqs at most, and never before the newest checkpoint
    (what the open store read is cheap to read again; what lies before it is not). The
    bool: the counts are a lower bound."""
    heads = store.checkpoints.heads()
    floor = heads[-1] if heads else 0
    start = max(cursor, head - limits.hook_unseen_scan_seqs_max, min(floor, head))
    kinds: dict[str, int] = {}
    for group in store.journal.scan(start, envelope_only=True):
        for record in group.records:
            if record["seq"] > head:
                break
            if matches(record, actor, None):
                kinds[record["item_type"]] = kinds.get(record["item_type"], 0) + 1
        if group.last_seq >= head:
            break
    return kinds, start > cursor


def _handoff_row(entity: EntityState) -> dict[str, Any]:
    payload = entity.payload or {}
    return {"id": entity.item_id, "from": payload.get("from"),
            "summary": clip(payload.get("summary"), limits.briefing_summary_chars_max)}


def _message_row(entity: EntityState) -> dict[str, Any]:
    payload = entity.payload or {}
    return {"id": entity.item_id, "from": payload.get("from"),
            "body": clip(payload.get("body"), limits.briefing_summary_chars_max)}


def _taken_row(entity: EntityState) -> dict[str, Any]:
    payload = entity.payload or {}
    return {"id": entity.item_id, "target": _shown_target(payload),
            "by": payload.get("taken_over_by"), "at": payload.get("taken_over_at")}


def _expiring(claims: list[EntityState], actor: str, now: datetime) -> list[dict[str, Any]]:
    rows = []
    for entity in claims:
        payload = entity.payload or {}
        if payload.get("holder") != actor or claim_status(payload, now) != "active":
            continue
        left = seconds_left(payload, now)
        if left <= limits.hook_claim_expiring_s:
            rows.append({"id": entity.item_id, "target": _shown_target(payload), "left_s": left})
    return sorted(rows, key=lambda row: int(row["left_s"]))


def _shown_target(payload: dict[str, Any]) -> str:
    targets = claim_targets(payload)
    shown = targets[0] if len(targets) == 1 else f"{targets[0]} (+{len(targets) - 1})"
    return clip(shown, limits.briefing_target_chars_max)


def has_news(found: dict[str, Any]) -> bool:
    return bool(found["unseen_count"] or found["handoffs_total"] or found["messages_total"]
                or found["expiring_total"] or found["taken_over_total"])


# -- the block of text ----------------------------------------------------------------------
def digest_text(found: dict[str, Any], chars_max: int = limits.hook_chars_max_default) -> str:
    """The digest as a few short lines, at most ``chars_max`` characters; "" when there is
    nothing to say. Fewer items and narrower ones are tried until it fits."""
    if not has_news(found):
        return ""
    for items in range(limits.hook_items_max, 0, -1):
        for width in WIDTHS:
            text = "\n".join(_lines(found, items, width))
            if len(text) <= chars_max:
                return text
    text = "\n".join(_lines(found, 1, WIDTHS[-1]))
    return text[: max(0, chars_max - 1)] + "…"


def _lines(found: dict[str, Any], items: int, width: int) -> list[str]:
    lines = [_headline(found)]
    lines += _section("Handoffs to you", found["handoffs"], found["handoffs_total"], items,
                      lambda h: f'{h["id"]} from {h["from"]} "{clip(h["summary"], width)}"',
                      "respond")
    lines += _section("Messages to you", found["messages"], found["messages_total"], items,
                      lambda m: f'{m["from"]} "{clip(m["body"], width)}"', "")
    lines += _section("Your claims expiring", found["expiring"], found["expiring_total"], items,
                      lambda c: f'{clip(c["target"], width)} in {c["left_s"]}s', "renew")
    lines += _section("Your claims taken over", found["taken_over"], found["taken_over_total"],
                      items, lambda c: f'{clip(c["target"], width)} by {c["by"]}', "")
    return lines


def _headline(found: dict[str, Any]) -> str:
    count = found["unseen_count"]
    if not count:
        return f"agentjournal ({found['actor']}): nothing unseen."
    ranked = sorted(found["unseen_by_type"].items(), key=lambda kv: (-kv[1], kv[0]))
    kinds = ", ".join(f"{n} {kind}" for kind, n in ranked)  # five families at most
    more = "+" if found.get("unseen_count_is_lower_bound") else ""
    return f"agentjournal ({found['actor']}): {count}{more} unseen ({kinds}): read_unseen."


def _section(title: str, rows: list[dict[str, Any]], total: int, items: int,
             show: Any, then: str) -> list[str]:
    if not total:
        return []
    shown = "; ".join(show(row) for row in rows[-items:])
    listed = min(items, len(rows))
    rest = f" (+{total - listed})" if total > listed else ""
    return [f"{title}: {shown}{rest}{' -> ' + then if then else ''}"]


def stop_reminder(found: dict[str, Any]) -> str:
    """What an agent about to stop is reminded of: handoffs to it still open ("" if none)."""
    total = found["handoffs_total"]
    if not total:
        return ""
    listed = "; ".join(f'{h["id"]} from {h["from"]}: "{h["summary"]}"'
                       for h in found["handoffs"])
    more = f" (+{total - len(found['handoffs'])} more)" if total > len(found["handoffs"]) else ""
    return (f"agentjournal: {total} handoff(s) to you still open: {listed}{more}. Before you "
            "stop, accept or reject each with respond(handoff_id, answer), or say why not.")


__all__ = ["digest", "digest_text", "has_news", "stop_reminder"]
