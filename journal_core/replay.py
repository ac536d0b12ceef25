"""The replay reducer: complete txn groups, in file order, onto the in-memory state.

Rules (SPEC §5): a record applies when its entity_rev is above the entity's current rev; at
an equal rev from another writer the later line wins and an overwrite is counted; a gap in
revs is applied and counted as "history incomplete"; a lower rev is never applied (it would
regress the entity) and is counted. Payloads are migrated and validated; one that fails is
skipped and counted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .counters import JournalCounters
from .errors import BlobError, InvalidArgument
from .ids import FAMILIES
from .migrations import upgrade
from .record import ENTITY_STATE_ACTIONS

Record = dict[str, Any]
UNANNOTATED_SUMMARY = "unannotated change"
REDACTED_KEY = "redacted"


def is_redacted(payload: dict[str, Any]) -> bool:
    """A payload replaced by ``doctor --redact``: ``{"redacted": {by, reason, at}}``."""
    return REDACTED_KEY in payload and len(payload) == 1


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

    @property
    def deleted(self) -> bool:
        return self.action == "delete"


@dataclass
class State:
    """Live entities of every family at ``head_seq``, plus tombstones (their revs live on)."""

    counters: JournalCounters = field(default_factory=JournalCounters)
    families: dict[str, dict[str, EntityState]] = field(
        default_factory=lambda: {family: {} for family in FAMILIES}
    )
    head_seq: int = 0
    active_claims: dict[str, set[str]] = field(default_factory=dict)  # target -> claim ids
    notes: list[Record] = field(default_factory=list)  # journal-meta records, newest last
    on_note: Callable[[Record], None] | None = None
    resolve_ref: Callable[[dict[str, Any]], dict[str, Any]] | None = None  # blob loader
    floor_seq: int = 0  # groups at or below it are already in (from a checkpoint)
    checkpoint_refs: dict[str, str] = field(default_factory=dict)  # file -> newest sha256
    blob_errors: list[str] = field(default_factory=list)
    local_origin: str = ""  # this store's id: the origin of records without ``origin``
    imported: dict[str, dict[str, set[int]]] = field(default_factory=dict)  # store->writer->seqs

    def entity(self, family: str, item_id: str) -> EntityState | None:
        return self.families[family].get(item_id)

    def live(self, family: str) -> list[EntityState]:
        return [e for e in self.families[family].values() if not e.deleted]

    def apply_group(self, group: list[Record]) -> None:
        below_floor = group[-1]["seq"] <= self.floor_seq
        for record in group:
            if below_floor:  # already in the checkpoint; only its notes still count
                if record["item_type"] == "journal":
                    self._apply_meta(record)
                continue
            self.apply(record)
            if record["seq"] > self.head_seq:
                self.head_seq = record["seq"]

    def apply(self, record: Record) -> None:
        action = record["action"]
        if action in ENTITY_STATE_ACTIONS or action == "delete":
            self._apply_entity(record)
        elif record["item_type"] == "journal":
            self._apply_meta(record)

    def _apply_meta(self, record: Record) -> None:
        self.notes.append(record)
        if record["action"] == "checkpoint_ref":
            self.checkpoint_refs[record["payload"]["file"]] = record["payload"]["sha256"]
        elif record["action"] == "seq_repair":
            self.counters.seq_repairs += 1
        elif record["payload"].get("kind") == "incomplete_txn":
            self.counters.incomplete_txns_noted += 1
        elif record["payload"].get("kind") == "redaction":
            self._apply_redaction(record["payload"])
        if self.on_note is not None:
            self.on_note(record)

    def _apply_redaction(self, note: dict[str, Any]) -> None:
        """A redaction note carries its marker: entities whose current record it names
        hold the marker from here on, in every process that replays the note -- even before
        (or without) the rewrite of the segment bytes. So no checkpoint written later from
        this state brings the redacted payload back."""
        marker, seqs = note.get("marker"), note.get("seqs")
        if not isinstance(marker, dict) or not is_redacted(marker) or not isinstance(seqs, list):
            return  # a note of an older doctor: its segments were rewritten before it
        wanted = set(seqs)
        for entities in self.families.values():
            for entity in entities.values():
                if entity.seq in wanted and not entity.deleted:
                    entity.payload, entity.payload_ref = dict(marker), None

    def origin_of(self, record: Record) -> str:
        origin = record.get("origin")
        return str(origin["store"]) if origin else self.local_origin

    def has_imported(self, origin: dict[str, Any]) -> bool:
        seqs = self.imported.get(origin["store"], {}).get(origin["writer"])
        return seqs is not None and origin["seq"] in seqs

    def _apply_entity(self, record: Record) -> None:
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
        if current is None and rev != 1:
            self.counters.rev_gaps += 1
        payload = record.get("payload")
        if payload is None and record.get("payload_ref") is not None:
            payload = self.resolve(record["payload_ref"])
        if payload is not None and not is_redacted(payload):
            try:
                payload = upgrade(family, payload)
            except InvalidArgument:
                self.counters.payloads_invalid += 1
                return
        if record.get("summary") == UNANNOTATED_SUMMARY:
            self.counters.unannotated_emissions += 1
        entity = EntityState(
            family, item_id, rev, record["seq"], record["writer"], record["actor"],
            record["action"], record["ts"], payload, record.get("payload_ref"),
            None if origin == self.local_origin else origin, history,
        )
        if family == "claim":
            self._index_claim(current, entity)
        self.families[family][item_id] = entity

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
        """Origins other than ``origin`` that wrote ``rev`` of this entity here (§12)."""
        current = self.families[family].get(item_id)
        if current is None or rev > current.rev:
            return []
        if current.rev_origins is None:
            return [self.local_origin] if origin != self.local_origin else []
        return [o for o in current.rev_origins.get(rev, ()) if o != origin]

    def _rev_admits(self, current: EntityState, record: Record, origin: str) -> bool:
        """Highest rev wins; at an equal rev, the same origin's later line wins (§5 case 4)
        and between origins the greater origin id wins (last-writer-wins on
        ``(entity_rev, origin_id)``, never on wall time)."""
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

    def resolve(self, ref: dict[str, Any]) -> dict[str, Any] | None:
        if self.resolve_ref is None:
            return None
        try:
            return self.resolve_ref(ref)
        except BlobError as exc:
            self.blob_errors.append(str(exc))  # the entity keeps its ref; reading it fails
            return None

    def rebuild_claim_index(self) -> None:
        self.active_claims.clear()
        for entity in self.families["claim"].values():
            self._index_claim(None, entity)

    def _index_claim(self, before: EntityState | None, after: EntityState) -> None:
        if before is not None and before.payload is not None and "target" in before.payload:
            holders = self.active_claims.get(before.payload["target"])
            if holders is not None:
                holders.discard(before.item_id)
                if not holders:
                    del self.active_claims[before.payload["target"]]
        if after.payload is not None and after.payload.get("status") == "active":
            self.active_claims.setdefault(after.payload["target"], set()).add(after.item_id)
