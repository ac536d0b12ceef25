"""The replay reducer: complete txn groups, in journal order, onto the in-memory state.

Rules (docs/design.md, "Replay"): a record applies when its entity_rev is above the entity's
current rev; at an equal rev from another writer the later line wins and an overwrite is
counted; a gap in revs is applied and counted as "history incomplete"; a lower rev is never
applied (it would regress the entity) and is counted. A payload must be one of its family's
current shape (``entities.check_shape``: the fields the engine itself relies on, and
``payload.id == item_id``) or migrate to it; one that does not is skipped and counted. A
``renew`` record moves the ephemeral fields of the rev it names, nothing else.

Records this process wrote itself are applied through the same code (``trusted``: their
payloads were validated when they were built, so they are not checked again).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import limits
from .claim_index import ClaimIndex
from .counters import JournalCounters
from .entities import MODELS, check_shape, redact_payload
from .errors import BlobError, InvalidArgument
from .journal import TxnGroup
from .migrations import upgrade
from .vocabulary import ENTITY_STATE_ACTIONS, EPHEMERAL_ACTIONS, FAMILIES, TOMBSTONE_ACTIONS

Record = dict[str, Any]
UNANNOTATED_SUMMARY = "unannotated change"
REDACTED_KEY = "redacted"
CONTENT_MISSING_KEY = "content_missing"


def is_redacted(payload: dict[str, Any]) -> bool:
    """A payload whose secret fields were replaced by ``doctor --redact``."""
    return isinstance(payload.get(REDACTED_KEY), dict)


@dataclass(slots=True)
class EntityState:
    """The journal's view of one entity: its newest applied record."""

    family: str
    item_id: str
    rev: int
    seq: int
    writer: str
    actor: str
    action: str
    ts: str
    payload: dict[str, Any] | None  # None once deleted (or while only a blob ref is known)
    payload_ref: dict[str, Any] | None = None
    origin: str | None = None  # the store that wrote it, when imported; None = this store
    rev_origins: dict[int, tuple[str, ...]] | None = None  # None: every rev is this store's
    changed_seq: int = 0  # the seq of the last record that changed it (a renewal included)

    def __post_init__(self) -> None:
        if self.changed_seq < self.seq:
            self.changed_seq = self.seq

    @property
    def deleted(self) -> bool:
        return self.action == "delete"


@dataclass(slots=True)
class RequestEntry:
    """A mutation that carried a client ``request_id``: where its txn is, and what it was."""

    first_seq: int
    count: int
    digest: str
    result: str | None  # "<family>/<id>" of the answer, when the mutation named one
    ts: str


@dataclass
class State:
    """Live entities of every family at ``head_seq``, plus tombstones (their revs live on)."""

    counters: JournalCounters = field(default_factory=JournalCounters)
    families: dict[str, dict[str, EntityState]] = field(
        default_factory=lambda: {family: {} for family in FAMILIES}
    )
    head_seq: int = 0
    claims: ClaimIndex = field(default_factory=ClaimIndex)
    resolve_ref: Callable[[dict[str, Any]], dict[str, Any]] | None = None  # blob loader
    # a payload whose blob is missing, from elsewhere (its projection, when it matches)
    fallback: Callable[[str, str, dict[str, Any]], dict[str, Any] | None] | None = None
    floor_seq: int = 0  # groups at or below it are already in (from a checkpoint)
    checkpoint_refs: dict[str, set[str]] = field(default_factory=dict)  # file -> every sha256
    adjudicated: set[tuple[str, int]] = field(default_factory=set)  # (segment, start) noted
    redactions: list[dict[str, Any]] = field(default_factory=list)  # redaction notes
    blob_errors: list[str] = field(default_factory=list)
    local_origin: str = ""  # this store's id: the origin of records without ``origin``
    imported: dict[str, dict[str, set[int]]] = field(default_factory=dict)  # store->writer->seqs
    requests: OrderedDict[tuple[str, str], RequestEntry] = field(default_factory=OrderedDict)
    last_note_seq: int = 0

    def entity(self, family: str, item_id: str) -> EntityState | None:
        return self.families[family].get(item_id)

    def live(self, family: str) -> list[EntityState]:
        return [e for e in self.families[family].values() if not e.deleted]

    # -- groups -----------------------------------------------------------------------
    def apply_group(self, group: TxnGroup | list[Record], *, trusted: bool = False) -> None:
        records = group.records if isinstance(group, TxnGroup) else group
        below_floor = records[-1]["seq"] <= self.floor_seq
        for record in records:
            if below_floor:  # already in the checkpoint; only its notes still count
                if record["item_type"] == "journal":
                    self._apply_meta(record)
                continue
            self.apply(record, trusted=trusted)
            if record["seq"] > self.head_seq:
                self.head_seq = record["seq"]
        first = records[0]
        if not below_floor and first.get("request") and first["seq"] == first["txn"][0]:
            self._remember_request(first, len(records))

    def apply(self, record: Record, *, trusted: bool = False) -> None:
        action = record["action"]
        if action in ENTITY_STATE_ACTIONS or action in TOMBSTONE_ACTIONS:
            self._apply_entity(record, trusted)
        elif action in EPHEMERAL_ACTIONS:
            self._apply_renewal(record)
        elif record["item_type"] == "journal":
            self._apply_meta(record)

    # -- journal-meta -----------------------------------------------------------------
    def _apply_meta(self, record: Record) -> None:
        payload = record["payload"]
        self.last_note_seq = max(self.last_note_seq, int(record["seq"]))
        if record["action"] == "checkpoint_ref":
            self.checkpoint_refs.setdefault(payload["file"], set()).add(payload["sha256"])
        elif record["action"] == "seq_repair":
            self.counters.seq_repairs += 1
        elif payload.get("kind") == "incomplete_txn":
            self.counters.incomplete_txns_noted += 1
        elif payload.get("kind") == "torn_tail_adjudicated":
            if isinstance(payload.get("start"), int):
                self.adjudicated.add((str(payload.get("segment")), payload["start"]))
                self.counters.fragments_adjudicated += 1
        elif payload.get("kind") == "redaction":
            self.redactions.append(payload)
            self._apply_redaction(payload)

    def _apply_redaction(self, note: dict[str, Any]) -> None:
        """A redaction note carries its marker: entities whose current record it names hold
        the redacted payload from here on, in every process that replays the note -- even
        before (or without) the rewrite of the segment bytes. So no checkpoint written later
        from this state brings the secret back. Coordination fields are kept."""
        marker, seqs = note.get("marker"), note.get("seqs")
        if not isinstance(marker, dict) or not isinstance(seqs, list):
            return  # a note of an older doctor: its segments were rewritten before it
        wanted = set(seqs)
        for family, entities in self.families.items():
            for entity in entities.values():
                if entity.seq in wanted and not entity.deleted:
                    before = entity.payload
                    entity.payload = redact_payload(family, before, marker) if before \
                        else redact_payload(family, {"id": entity.item_id}, marker)
                    entity.payload_ref = None
                    entity.changed_seq = max(entity.changed_seq, self.last_note_seq)
                    if family == "claim":
                        self.claims.update(before, entity)

    # -- entities ---------------------------------------------------------------------
    def origin_of(self, record: Record) -> str:
        origin = record.get("origin")
        return str(origin["store"]) if origin else self.local_origin

    def has_imported(self, origin: dict[str, Any]) -> bool:
        seqs = self.imported.get(origin["store"], {}).get(origin["writer"])
        return seqs is not None and origin["seq"] in seqs

    def _apply_entity(self, record: Record, trusted: bool) -> None:
        family, item_id, rev = record["item_type"], record["item_id"], record["entity_rev"]
        origin = self.origin_of(record)
        if record.get("origin"):
            if self.has_imported(record["origin"]):
                self.counters.dup_identical += 1  # the same origin record, imported twice
                return
            key = record["origin"]
            self.imported.setdefault(key["store"], {}).setdefault(key["writer"], set()).add(
                key["seq"])
        current = self.families[family].get(item_id)
        history = self._history(current, rev, origin)
        if current is not None and not self._rev_admits(current, record, origin):
            current.rev_origins = history
            return
        payload = self._payload(record, trusted)
        if payload is False:
            return
        if current is None and rev != 1:
            self.counters.rev_gaps += 1
        if record.get("summary") == UNANNOTATED_SUMMARY:
            self.counters.unannotated_emissions += 1
        entity = EntityState(
            family, item_id, rev, record["seq"], record["writer"], record["actor"],
            record["action"], record["ts"], payload,  # type: ignore[arg-type]
            record.get("payload_ref"), None if origin == self.local_origin else origin, history,
        )
        if family == "claim":
            self.claims.update(current.payload if current else None, entity)
        self.families[family][item_id] = entity

    def _payload(self, record: Record, trusted: bool) -> dict[str, Any] | bool | None:
        """The payload to apply, None (a tombstone, or an unreadable blob), or False when
        it must be skipped (counted)."""
        if record["action"] in TOMBSTONE_ACTIONS:
            return None
        payload = record.get("payload")
        if payload is None and record.get("payload_ref") is not None:
            payload = self.resolve(record["payload_ref"], record["item_type"], record["item_id"])
            if payload is None:
                return None  # the entity keeps its ref; readers mark the content missing
        if payload is None or trusted or is_redacted(payload):
            return payload
        family = record["item_type"]
        try:
            if payload.get("schema_version") != MODELS[family].SCHEMA_VERSION:
                payload = upgrade(family, payload)
            check_shape(family, payload, record["item_id"])
        except InvalidArgument:
            self.counters.payloads_invalid += 1
            return False
        return payload

    def _apply_renewal(self, record: Record) -> None:
        """A ``renew`` record moves the ephemeral fields of the rev it names (no rev bump);
        a renewal of an older rev than the entity's current one changes nothing."""
        family, item_id = record["item_type"], record["item_id"]
        current = self.families[family].get(item_id)
        if current is None or current.deleted or current.payload is None \
                or current.rev != record["entity_rev"]:
            return
        allowed = MODELS[family].EPHEMERAL
        moved = {k: v for k, v in record["payload"].items() if k in allowed}
        if not moved:
            return
        before = current.payload
        current.payload = {**before, **moved}
        current.changed_seq = int(record["seq"])
        if family == "claim":
            self.claims.update(before, current)

    def _history(self, current: EntityState | None, rev: int, origin: str,
                 ) -> dict[int, tuple[str, ...]] | None:
        """Which origins wrote each rev of an entity; kept only once another store did."""
        history = current.rev_origins if current is not None else None
        if history is None:
            if origin == self.local_origin:
                return None
            history = {}
            if current is not None:
                owner = current.origin or self.local_origin
                history = {r: (owner,) for r in range(1, current.rev + 1)}
        prior = history.get(rev, ())
        if origin not in prior:
            history[rev] = (*prior, origin)
        return history

    def rev_conflicts(self, family: str, item_id: str, rev: int, origin: str) -> list[str]:
        """Origins other than ``origin`` that wrote ``rev`` of this entity here."""
        current = self.families[family].get(item_id)
        if current is None or rev > current.rev:
            return []
        if current.rev_origins is None:
            return [self.local_origin] if origin != self.local_origin else []
        return [o for o in current.rev_origins.get(rev, ()) if o != origin]

    def _rev_admits(self, current: EntityState, record: Record, origin: str) -> bool:
        """Highest rev wins; at an equal rev, the same origin's later line wins and between
        origins the greater origin id wins (last-writer-wins on ``(entity_rev,
        origin_id)``, never on wall time)."""
        rev = record["entity_rev"]
        current_origin = current.origin or self.local_origin
        if rev > current.rev:
            if rev > current.rev + 1 and origin == current_origin:
                self.counters.rev_gaps += 1
            return True
        if rev == current.rev:
            if origin != current_origin:
                return origin > current_origin
            if record["writer"] != current.writer:
                self.counters.rev_overwrites += 1
            return True
        if origin == current_origin == self.local_origin:
            self.counters.rev_regressions += 1
        return False

    def resolve(self, ref: dict[str, Any], family: str | None = None,
                item_id: str | None = None) -> dict[str, Any] | None:
        """A blob's payload; when the blob is unreadable, the fallback's (a projection with
        the same sha256), else None (an error is noted: the content is missing)."""
        if self.resolve_ref is None:
            return None
        try:
            return self.resolve_ref(ref)
        except BlobError as exc:
            found = self.fallback(family, item_id, ref) if (
                self.fallback is not None and family and item_id) else None
            if found is None:
                self.blob_errors.append(str(exc))
            return found

    def rebuild_claim_index(self) -> None:
        self.claims = ClaimIndex()
        for entity in self.families["claim"].values():
            self.claims.update(None, entity)

    # -- idempotent requests ----------------------------------------------------------
    def _remember_request(self, first: Record, count: int) -> None:
        request = first["request"]
        key = (str(first["actor"]), str(request["id"]))
        self.requests[key] = RequestEntry(int(first["seq"]), count, str(request["hash"]),
                                          request.get("result"), str(first["ts"]))
        self.requests.move_to_end(key)
        self.forget_old_requests()

    def forget_old_requests(self, now_text: str | None = None) -> None:
        """Keep a request while it is among the newest ``requests_kept_min`` or younger
        than ``request_window_s`` (whichever keeps more); bounded either way."""
        extra = len(self.requests) - limits.requests_kept_min
        if extra <= 0:
            return
        horizon = now_text or next(reversed(self.requests.values())).ts
        cutoff = _minus_seconds(horizon, limits.request_window_s)
        while extra > 0:
            oldest = next(iter(self.requests.values()))
            if oldest.ts >= cutoff and len(self.requests) <= limits.requests_kept_max:
                return
            self.requests.popitem(last=False)
            extra -= 1

    def request(self, actor: str, request_id: str) -> RequestEntry | None:
        return self.requests.get((actor, request_id))


def _minus_seconds(ts: str, seconds: int) -> str:
    from . import clock

    try:
        moment = clock.parse_rfc3339(ts)
    except ValueError:
        return ts
    return clock.to_rfc3339(clock.plus_seconds(moment, -seconds))
