"""An entity's revisions: every record the journal keeps of it, who wrote it, when, and what
changed from the revision before (the audit trail the dashboard shows), a page at a time.

The journal holds full snapshots, so a change is the difference of two payloads: fields
added, removed or changed, steps matched by their id, long texts as a line diff. A
``renew`` record carries only the ephemeral fields it moved (a claim's expiry); it is
applied over the snapshot before it, as replay does.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

import orjson

from . import limits
from .entities import MODELS
from .errors import BlobError, InvalidArgument, NotFound
from .ids import check_family, check_item_id
from .journal import Record
from .queries import clip
from .replay import is_redacted
from .store import Store
from .vocabulary import EPHEMERAL_ACTIONS


@dataclass
class Change:
    path: str  # "status", "steps[s2].status", "tags"
    kind: str  # "added" | "removed" | "changed"
    before: str | None = None  # the old value (a string as is, else JSON), clipped
    after: str | None = None
    lines: list[str] | None = None  # a line diff of a long text: "-old", "+new", " same"


@dataclass
class Revision:
    seq: int
    ts: str
    actor: str
    action: str
    entity_rev: int | None
    summary: str
    changes: list[Change] = field(default_factory=list)
    changes_total: int = 0
    note: str | None = None  # why there is nothing to compare (payload unreadable, redacted)


@dataclass
class History:
    family: str
    item_id: str
    revisions: list[Revision]  # newest first, one page
    older: int | None  # pass as ``before`` for the next (older) page; None: nothing older
    reached_first: bool  # the page reaches the entity's first record (rev 1)
    archived_before: bool  # its older records are not in this journal (gc, or a restart)


def entity_history(store: Store, family: str, item_id: str, before: int | None = None,
                   per_page: int = limits.revisions_page_max) -> History:
    """One page of an entity's revisions with ``seq < before`` (default: up to the head),
    newest first, each with what changed from the one before it.

    The journal is read in at most two forward passes, each starting once (a scan's start is
    what costs): the stretch around the entity's current revision (from it up to the head
    for a claim, whose renewals come later), where a young entity's whole history lies;
    then, when the page needs more, the stretch below it, up to ``history_scan_seqs_max``
    seqs in all (an old entity's history then comes a page at a time, through ``older``)."""
    check_family(family)
    check_item_id(family, item_id)
    if before is not None and (isinstance(before, bool) or not isinstance(before, int)
                               or before < 1):
        raise InvalidArgument("before must be a positive whole number (a seq)")
    per_page = max(1, min(per_page, limits.revisions_page_max))
    found, top, oldest = _read_back(store, family, item_id, before, per_page)
    reached_first = bool(found) and found[-1].get("entity_rev") == 1 and \
        found[-1]["action"] not in EPHEMERAL_ACTIONS
    revisions = _revisions(store, list(reversed(found)))
    revisions.reverse()
    shown = revisions[:per_page]
    if len(revisions) > per_page:
        older: int | None = shown[-1].seq
    elif reached_first or top < oldest:
        older = None
    else:
        older = top + 1
        if shown and shown[-1].note is None and not _has_base(found, len(shown)):
            shown[-1].note = ("the revision before this one is further back than one page "
                              "reads: see the older page")
            shown[-1].changes, shown[-1].changes_total = [], 0
    return History(family, item_id, shown, older, reached_first and len(revisions) <= per_page,
                   top < oldest and not reached_first)


def _read_back(store: Store, family: str, item_id: str, before: int | None,
               per_page: int) -> tuple[list[Record], int, int]:
    """The entity's records below ``before``, newest first: enough for a page and the full
    snapshot before its oldest revision. Also where reading stopped and the oldest seq."""
    store.refresh()
    top = store.head_seq if before is None else min(before - 1, store.head_seq)
    oldest = max(1, store.journal.oldest_seq())
    found: list[Record] = []
    newest = _newest_seq(store, family, item_id, top)
    if not MODELS[family].EPHEMERAL:
        top = newest  # nothing of it lies above its current revision (no renew records)
    first = min(limits.history_scan_seqs_max, max(limits.history_window_seqs_min, top - newest + 1))
    for window in (first, limits.history_scan_seqs_max - first):
        if top < oldest or window <= 0 or _enough(found, per_page):
            break
        low = max(oldest, top - window + 1)
        found.extend(reversed(_window(store, family, item_id, low, top)))
        top = low - 1
    return found, top, oldest


def _newest_seq(store: Store, family: str, item_id: str, top: int) -> int:
    """The seq of the entity's current revision when it is at or below ``top`` (a first
    window that reaches it costs one short read), else ``top``."""
    try:
        seq = int(store.entity_view(family, item_id)["seq"])
    except NotFound:
        return top
    return seq if seq <= top else top


def _enough(found: list[Record], per_page: int) -> bool:
    if found and found[-1].get("entity_rev") == 1 and \
            found[-1]["action"] not in EPHEMERAL_ACTIONS:
        return True  # the first record
    return len(found) > per_page and _has_base(found, per_page)


def _has_base(found: list[Record], shown: int) -> bool:
    """A full snapshot older than the ``shown`` newest records (the base of their diffs)."""
    return any(r["action"] not in EPHEMERAL_ACTIONS for r in found[shown:])


def _window(store: Store, family: str, item_id: str, low: int, high: int) -> list[Record]:
    out: list[Record] = []
    for group in store.journal.scan(low - 1):
        for record in group.records:
            if record["seq"] > high:
                return out
            if record.get("item_id") == item_id and record["item_type"] == family:
                out.append(record)
        if group.last_seq >= high:
            break
    return out


def _revisions(store: Store, records: list[Record]) -> list[Revision]:
    """Oldest first: each record against the snapshot before it."""
    out: list[Revision] = []
    before: dict[str, Any] | None = None
    for record in records:
        revision = Revision(int(record["seq"]), str(record["ts"]), str(record["actor"]),
                            str(record["action"]), record.get("entity_rev"),
                            clip(record.get("summary"), limits.event_summary_chars_max))
        payload, revision.note = _payload(store, record)
        if payload is not None and record["action"] in EPHEMERAL_ACTIONS:
            payload = {**(before or {}), **payload}
        if payload is not None:
            changes = payload_changes(before or {}, payload)
            revision.changes_total = len(changes)
            revision.changes = changes[: limits.revision_changes_max]
            before = payload
        out.append(revision)
    return out


def _payload(store: Store, record: Record) -> tuple[dict[str, Any] | None, str | None]:
    payload = record.get("payload")
    if payload is None and record.get("payload_ref") is not None:
        try:
            payload = store.blobs.get_payload(record["payload_ref"])
        except (BlobError, OSError) as exc:
            return None, f"its payload is in a blob that cannot be read ({exc})"
    if payload is None:
        return None, "this record carries no payload"
    if is_redacted(payload):
        return payload, "redacted by doctor --redact: the secret fields are gone"
    return payload, None


# -- the difference of two payloads --------------------------------------------------------
def payload_changes(before: Any, after: Any, path: str = "") -> list[Change]:
    """What changed from ``before`` to ``after``, field by field (depth first)."""
    if isinstance(before, dict) and isinstance(after, dict):
        return _dict_changes(before, after, path)
    if _keyed_list(before) and _keyed_list(after):
        return _list_changes(before, after, path)
    if before == after:
        return []
    return [_changed(path or "(value)", before, after)]


def _dict_changes(before: dict[str, Any], after: dict[str, Any], path: str) -> list[Change]:
    out: list[Change] = []
    for key in [*after, *(k for k in before if k not in after)]:
        where = f"{path}.{key}" if path else str(key)
        if key not in before:
            out.append(Change(where, "added", after=_shown(after[key])))
        elif key not in after:
            out.append(Change(where, "removed", before=_shown(before[key])))
        else:
            out.extend(payload_changes(before[key], after[key], where))
    return out


def _keyed_list(value: Any) -> bool:
    """A list of objects with ids (a plan's steps): compared item by item."""
    return isinstance(value, list) and bool(value) and all(
        isinstance(item, dict) and "id" in item for item in value)


def _list_changes(before: list[Any], after: list[Any], path: str) -> list[Change]:
    old = {str(item["id"]): item for item in before}
    new = {str(item["id"]): item for item in after}
    out: list[Change] = []
    for key in [*new, *(k for k in old if k not in new)]:
        where = f"{path}[{key}]"
        if key not in old:
            out.append(Change(where, "added", after=_shown(new[key])))
        elif key not in new:
            out.append(Change(where, "removed", before=_shown(old[key])))
        else:
            out.extend(payload_changes(old[key], new[key], where))
    return out


def _changed(path: str, before: Any, after: Any) -> Change:
    change = Change(path, "changed", before=_shown(before), after=_shown(after))
    if isinstance(before, str) and isinstance(after, str) and _long_text(before, after):
        change.lines = text_diff(before, after)
    return change


def _long_text(before: str, after: str) -> bool:
    return ("\n" in before or "\n" in after
            or max(len(before), len(after)) > limits.revision_text_diff_chars_min)


def text_diff(before: str, after: str) -> list[str]:
    """A line diff ("-old", "+new", " context"), at most ``revision_text_lines_max`` lines."""
    lines = [line for line in difflib.unified_diff(
        before.splitlines(), after.splitlines(), lineterm="",
        n=limits.revision_text_diff_context_lines)
        if not line.startswith(("---", "+++"))]
    cap = limits.revision_text_lines_max
    if len(lines) > cap:
        lines = [*lines[:cap], f"… and {len(lines) - cap} more lines"]
    return [_shown(line) for line in lines]


def _shown(value: Any) -> str:
    """A string as it is, anything else as JSON; at most ``revision_value_chars_max``
    characters."""
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    cap = limits.revision_value_chars_max
    return text if len(text) <= cap else text[: cap - 1] + "…"


__all__ = ["Change", "History", "Revision", "entity_history", "payload_changes", "text_diff"]
