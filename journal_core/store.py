"""The store: open, mutate, read fresh, cursors (SPEC §2, §5-§7).

The order inside a mutation is the central invariant (SPEC §6.2):
lock -> tail validation -> build records -> append -> fsync -> projections -> meta -> unlock.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import orjson

from . import clock, limits
from .blob import BlobStore, blob_ref
from .checkpoint import (
    CheckpointFile,
    CheckpointInvalid,
    build_checkpoint,
    checkpoint_name,
    list_checkpoints,
    load_checkpoint,
)
from .counters import JournalCounters
from .cursor import Cursors
from .entities import MODELS
from .errors import BlobError, InvalidArgument, NotFound, StoreCorrupt
from .fileio import FileIO
from .ids import FAMILIES, check_actor, check_family, check_item_id, writer_id
from .journal import FsyncMode, LocalJournal
from .meta import Meta, load_meta
from .migrations import upgrade
from .mutation import Change, Loaded, Mutation
from .projection import Projections
from .reader import JournalReader, Record, scan_groups_at
from .record import encode_record, payload_bytes
from .replay import EntityState, State, is_redacted
from .segment import parse_segment_name, segment_for_seq, segment_name

T = TypeVar("T")
STORE_ACTOR = "agentjournal"


def require(condition: bool, message: str) -> None:
    """An invariant check that survives ``python -O``."""
    if not condition:
        raise StoreCorrupt(f"invariant violated: {message}")


@dataclass
class StoreConfig:
    fsync: FsyncMode = "always"
    segment_bytes_max: int = limits.segment_bytes_max_default
    lock_wait_s: float = limits.lock_wait_s_default


@dataclass
class Committed:
    """What a mutation wrote: its txn, and the keys it changed."""

    first_seq: int
    count: int
    changed: list[tuple[str, str]]


class Store:
    """One open store. Thread-safe; many processes may open the same store at once."""

    def __init__(
        self,
        root: str,
        config: StoreConfig | None = None,
        *,
        fileio: FileIO | None = None,
        now: Callable[[], datetime] = clock.utc_now,
        create: bool = True,
    ) -> None:
        self.root = os.path.abspath(root)
        self.config = config or StoreConfig()
        self.fileio = fileio or FileIO()
        self.now = now
        self.events_dir = os.path.join(self.root, "events")
        self.meta_path = os.path.join(self.events_dir, "meta.json")
        self.boot_id = clock.boot_id()
        self._mutex = threading.RLock()
        if not os.path.exists(os.path.join(self.root, "store.json")):
            if not create:
                raise NotFound(f"no agentjournal store at {self.root} (run `agentjournal init`)")
            self.fileio.mkdir(self.events_dir)
        self.journal = LocalJournal(
            self.events_dir, os.path.join(self.root, "lock"), self.fileio, self.config.fsync
        )
        self.projections = Projections(os.path.join(self.root, "state"), self.fileio)
        self.cursors = Cursors(os.path.join(self.root, "cursors"), self.fileio)
        self.blobs = BlobStore(os.path.join(self.events_dir, "blobs"), self.fileio)
        self.checkpoints_dir = os.path.join(self.events_dir, "checkpoints")
        self.reader = JournalReader(self.journal)
        self.state = self._new_state(self.reader)
        self.checkpoint_fallbacks: list[str] = []  # why newer checkpoints were passed over
        self._last_checkpoint: CheckpointFile | None = None  # see _write_checkpoint
        self._positions: dict[int, tuple[int, int]] = {}  # seq -> where its txn starts
        self.store_id = self._ensure_initialized()
        self.projections.local_origin = self.store_id
        self._open_state()
        self._rebuild_missing_projections()

    def _new_state(self, reader: JournalReader) -> State:
        return State(
            counters=reader.counters, on_note=reader.adjudicate,
            resolve_ref=self.blobs.get_payload, local_origin=getattr(self, "store_id", ""),
        )

    def _open_state(self) -> None:
        """Cold open (SPEC §8); a store with no segments restarts its journal."""
        with self._mutex:
            if not self.journal.segments():
                self._restart_journal()
                return
            self.reader, self.state = self.rebuild_state()

    def rebuild_state(self, *, from_first_segment: bool = False) -> tuple[JournalReader, State]:
        """The state as the journal alone gives it: the newest checkpoint that loads and
        whose sha256 matches its checkpoint_ref, then the tail after it; falling back to
        older checkpoints, then to a full replay. Touches no file."""
        segments = self.journal.segments()
        fallbacks: list[str] = []
        for head in reversed(list_checkpoints(self.fileio, self.checkpoints_dir)):
            built = self._state_from_checkpoint(head, segments, fallbacks)
            if built is not None:
                self.checkpoint_fallbacks = fallbacks
                return built
        self.checkpoint_fallbacks = fallbacks
        if segments and segments[0] > 1:
            raise StoreCorrupt(
                f"the journal before seq {segments[0]} is archived and no checkpoint "
                f"verifies: {'; '.join(fallbacks) or 'none found'}"
            )
        reader = JournalReader(self.journal)
        state = self._new_state(reader)
        for group in reader.read_new(None):
            state.apply_group(group)
        return reader, state

    def _state_from_checkpoint(
        self, head: int, segments: list[int], fallbacks: list[str],
    ) -> tuple[JournalReader, State] | None:
        name = checkpoint_name(head)
        data = self.fileio.read_file(os.path.join(self.checkpoints_dir, name)) or b""
        reader = JournalReader(self.journal)
        state = self._new_state(reader)
        try:
            load_checkpoint(data, self.store_id, state)
        except CheckpointInvalid as exc:
            fallbacks.append(f"{name}: {exc}")
            return None
        start = segment_for_seq(segments, head + 1) if segments else None
        reader.segment = start if start is not None else (segments[0] if segments else None)
        for group in reader.read_new(None):
            state.apply_group(group)
        if state.checkpoint_refs.get(name) != hashlib.sha256(data).hexdigest():
            fallbacks.append(f"{name}: sha256 does not match its checkpoint_ref")
            return None
        return reader, state

    def _restart_journal(self) -> None:
        """A store with no segments (a git clone carries projections and checkpoints, not
        segments): restart the journal from the newest checkpoint that loads, else backfill
        it from the projections, so the journal is the truth again."""
        with self.journal.locked(STORE_ACTOR, self.config.lock_wait_s):
            if self.journal.segments():
                self.reader, self.state = self.rebuild_state()
                return
            self.reader = JournalReader(self.journal)
            self.state = self._new_state(self.reader)
            notes: list[tuple[str, dict[str, Any], str]] = []
            changes: list[Change] = []
            for head in reversed(list_checkpoints(self.fileio, self.checkpoints_dir)):
                name = checkpoint_name(head)
                data = self.fileio.read_file(os.path.join(self.checkpoints_dir, name)) or b""
                try:
                    load_checkpoint(data, self.store_id, self.state)
                except CheckpointInvalid as exc:
                    self.checkpoint_fallbacks.append(f"{name}: {exc}")
                    self.state = self._new_state(self.reader)
                    continue
                checkpoint = CheckpointFile(name, head, data, hashlib.sha256(data).hexdigest(),
                                            len(self.state.live("plan")), [])
                notes = [("journal_note", {"kind": "store_marker", "restarted_from": name},
                          f"journal restarted from {name}"), self._checkpoint_note(checkpoint)]
                break
            else:
                notes = [("journal_note", {"kind": "store_marker", "restarted_from": "state/"},
                          "journal restarted from projections (backfill)")]
            changes = self._backfill_changes()  # projections newer than the checkpoint
            first = self.state.head_seq + 1
            self.fileio.mkdir(self.events_dir)
            self.journal.create_segment(first)
            meta = Meta(self.store_id, first, segment_name(first), {}, self.boot_id,
                        rebuilt=True)
            self.projections.ensure_dirs()
            self._heal(meta)  # projections the checkpoint holds and the clone lacks
            self._commit(STORE_ACTOR, meta, first - 1, changes, notes)

    def _backfill_changes(self) -> list[Change]:
        changes = []
        for family in FAMILIES:
            for item_id in self.projections.ids(family):
                found = self.projections.read(family, item_id)
                payload = (found.doc or {}).get("payload")
                if found.rev is None or not isinstance(payload, dict):
                    continue
                known = self.state.entity(family, item_id)
                if known is not None and known.rev >= found.rev:
                    continue
                try:
                    payload = upgrade(family, payload)
                except InvalidArgument:
                    continue  # doctor reports projections it cannot read
                changes.append(Change("record", family, item_id, "backfill", found.rev, payload,
                                      "backfilled from its projection"))
        return changes

    def _missing_projection_families(self) -> list[str]:
        present = set(self.fileio.listdir(self.projections.state_dir))
        return [family for family in FAMILIES if family not in present]

    def _rebuild_missing_projections(self) -> None:
        """A store opened without projections (fresh clone, deleted state/) rebuilds them."""
        missing = self._missing_projection_families()
        if not missing:
            return
        with self._mutex, self.journal.locked(STORE_ACTOR, self.config.lock_wait_s):
            self._catch_up(None)
            meta = self._meta_for_write()
            for family in self._missing_projection_families():
                meta.applied[family] = 0
            self.projections.ensure_dirs()
            self._heal(meta)
            self._write_meta(meta, atomic=True)

    def _open_from_checkpoint(self, head: int, segments: list[int]) -> bool:
        name = checkpoint_name(head)
        data = self.fileio.read_file(os.path.join(self.checkpoints_dir, name))
        reader = JournalReader(self.journal)
        state = self._new_state(reader)
        try:
            load_checkpoint(data or b"", self.store_id, state)
        except CheckpointInvalid as exc:
            self.checkpoint_fallbacks.append(f"{name}: {exc}")
            return False
        start = segment_for_seq(segments, head + 1) if segments else None
        reader.segment = start if start is not None else (segments[0] if segments else None)
        self.reader, self.state = reader, state
        self._catch_up(None)
        if state.checkpoint_refs.get(name) != hashlib.sha256(data or b"").hexdigest():
            self.checkpoint_fallbacks.append(f"{name}: sha256 does not match its checkpoint_ref")
            return False
        return True

    def close(self) -> None:
        self.journal.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def counters(self) -> JournalCounters:
        return self.reader.counters

    # -- initialisation ----------------------------------------------------------------
    def _ensure_initialized(self) -> str:
        info_path = os.path.join(self.root, "store.json")
        data = self.fileio.read_file(info_path)
        if data is None:
            with self.journal.locked(STORE_ACTOR, self.config.lock_wait_s):
                data = self.fileio.read_file(info_path)
                if data is None:
                    data = self._create_store(info_path)
        try:
            return str(orjson.loads(data)["store_id"])
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise StoreCorrupt(f"{info_path} is unreadable: {exc}") from exc

    def _create_store(self, info_path: str) -> bytes:
        store_id = "st_" + secrets.token_hex(8)
        created = clock.to_rfc3339(self.now())
        for sub in ("events", "state", "cursors"):
            self.fileio.mkdir(os.path.join(self.root, sub))
        self.projections.ensure_dirs()
        self.journal.create_segment(1)
        genesis = self._record(
            1, (1, 1), STORE_ACTOR, "journal_note", "journal", None, None,
            {"kind": "genesis", "store_id": store_id, "created": created}, "store created",
        )
        self.journal.append(1, b"\n" + encode_record(genesis) + b"\n")
        meta = Meta(store_id, 2, segment_name(1), {f: 1 for f in FAMILIES}, self.boot_id)
        self.fileio.write_atomic(self.meta_path, meta.to_bytes())
        info = {"store_id": store_id, "format": limits.STORE_FORMAT_VERSION, "created": created}
        data = orjson.dumps(info, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
        self.fileio.write_atomic(info_path, data)
        return data

    # -- following the journal -----------------------------------------------------------
    def _catch_up(self, active_hint: int | None) -> None:
        for group in self.reader.read_new(active_hint):
            self.state.apply_group(group)

    def _load_meta(self) -> Meta | None:
        return load_meta(self.fileio, self.meta_path)

    def refresh(self) -> Meta | None:
        """Fresh path step one: re-read meta and follow the journal tail."""
        meta = self._load_meta()
        hint = parse_segment_name(meta.active_segment) if meta else None
        self._catch_up(hint)
        return meta

    # -- the fresh path (SPEC §7.1) -----------------------------------------------------
    def fresh(self, family: str) -> bool:
        """Bring ``family``'s projections up to the journal head if we can; True if stale."""
        with self._mutex:
            meta = self.refresh()
            head = self.state.head_seq
            if (meta is not None and meta.applied.get(family, 0) >= head
                    and not self._rebooted_since(meta)):
                return False
            if not self.journal.try_lock(STORE_ACTOR):
                return family != "claim"  # claims read through to the journal tail
            try:
                self._catch_up(None)
                meta = self._meta_for_write()
                self._heal(meta)
                self._write_meta(meta, atomic=False)
            finally:
                self.journal.unlock()
            return False

    def _meta_for_write(self) -> Meta:
        """Meta as it is, or rebuilt from the segment listing and tail (lock held).

        Meta written in an earlier boot of the machine is not trusted for the projections:
        a power loss may have kept it and lost projection writes it covers (both are
        unsynced caches). Its watermarks go to zero, so the next heal reads every
        projection once and rewrites those missing, torn or behind (SPEC §7.2)."""
        meta = self._load_meta()
        if meta is not None and meta.store_id == self.store_id:
            if self._rebooted_since(meta):
                meta.applied, meta.boot_id, meta.rebooted = {}, self.boot_id, True
            return meta
        segments = self.journal.segments()
        require(bool(segments), "a store has at least one segment")
        return Meta(
            self.store_id, self.reader.tail_seq() + 1, segment_name(segments[-1]),
            applied={}, boot_id=self.boot_id, rebuilt=True,
        )

    def _rebooted_since(self, meta: Meta) -> bool:
        return self.boot_id is not None and meta.boot_id != self.boot_id

    def _heal(self, meta: Meta) -> None:
        """Write projections of every family whose watermark is behind the head."""
        head = self.state.head_seq
        for family in FAMILIES:
            applied = meta.applied.get(family, 0)
            if applied >= head:
                continue
            for entity in list(self.state.families[family].values()):
                if entity.seq > applied:
                    self._project(entity, equal_ok=False)
            meta.applied[family] = head

    def _project(self, entity: EntityState, *, equal_ok: bool,
                 payload: dict[str, Any] | None = None) -> None:
        if entity.deleted:
            self.projections.remove(entity)
            return
        body = payload if payload is not None else self._payload_of(entity)
        self.projections.write(entity, body, equal_ok=equal_ok)

    def _payload_of(self, entity: EntityState) -> dict[str, Any]:
        """The entity's payload; a blob that cannot be read fails loudly (SPEC §9)."""
        if entity.payload is None and entity.payload_ref is not None:
            raw = self.blobs.get_payload(entity.payload_ref)  # raises BlobError
            try:
                entity.payload = upgrade(entity.family, raw)
            except InvalidArgument as exc:
                raise BlobError(f"blob of {entity.item_id} holds an invalid payload") from exc
        if entity.payload is None:
            raise BlobError(f"{entity.family} {entity.item_id} has no readable payload")
        return entity.payload

    def _write_meta(self, meta: Meta, *, atomic: bool) -> None:
        if atomic or meta.rebuilt or meta.rolled or meta.rebooted:
            self.fileio.write_atomic(self.meta_path, meta.to_bytes())
        else:
            self.fileio.write_in_place(self.meta_path, meta.to_bytes())

    # -- mutations (SPEC §6) -------------------------------------------------------------
    def mutate(
        self, actor: str, verb: Callable[[Mutation], T], *, lock_wait_s: float | None = None,
    ) -> tuple[T, Committed]:
        """Run ``verb`` as one mutation under the lock; return its result once durable."""
        check_actor(actor)
        wait_s = self.config.lock_wait_s if lock_wait_s is None else lock_wait_s
        with self._mutex, self.journal.locked(actor, wait_s):
            self._catch_up(None)  # tail validation: everything on disk is read
            meta = self._meta_for_write()
            tail_seq = self.reader.tail_seq()
            self._heal(meta)
            mutation = Mutation(actor, self.now(), self._loader, self._active_claims)
            result = verb(mutation)
            changes = mutation.changes()
            committed = self._commit(actor, meta, tail_seq, changes)
            return result, committed

    def _commit(
        self, actor: str, meta: Meta, tail_seq: int, changes: list[Change],
        notes: list[tuple[str, dict[str, Any], str]] | None = None, *, roll: bool = False,
        imported: list[dict[str, Any]] | None = None,
    ) -> Committed:
        """Append the mutation (and any journal-meta records owed), then project it.

        ``imported`` are records from another store (with their ``origin``): they are
        appended after the mutation's records, in the same txn, and projected too."""
        records = [c for c in changes if c.kind == "record"]
        imported = imported or []
        next_seq = max(meta.next_seq, tail_seq + 1)
        committed = Committed(next_seq, 0, [(c.family, c.item_id) for c in changes])
        if records or notes or roll or imported:
            segment, owed = self._segment_for_append(meta, next_seq, force=roll)
            owed = self._repair_notes(meta, tail_seq) + owed + list(notes or [])
            repairs = self._journal_records(next_seq, owed)
            next_seq += len(repairs)
            batch = self._mutation_records(actor, next_seq, records, imported)
            committed.first_seq, committed.count = next_seq, len(batch)
            seal = b"#" if self._needs_seal(segment) else b""
            data = seal + b"".join(b"\n" + line + b"\n" for line in repairs + batch)
            self.journal.append(segment, data)  # one write, then fsync: durable from here
            self._catch_up(segment)  # read our own records back, validated
            last_seq = next_seq + len(batch) - 1
            require(self.state.head_seq >= last_seq, f"seq {last_seq} read back after append")
            meta.next_seq = last_seq + 1
        for change in changes:
            self._project_change(change)
        for key in dict.fromkeys((r["item_type"], r["item_id"]) for r in imported):
            entity = self.state.entity(*key)
            if entity is not None:
                self._project(entity, equal_ok=False)
        head = self.state.head_seq
        for family in FAMILIES:
            meta.applied[family] = head
        self._write_meta(meta, atomic=False)
        return committed

    def _project_change(self, change: Change) -> None:
        entity = self.state.entity(change.family, change.item_id)
        require(entity is not None, f"{change.family} {change.item_id} is in the state")
        assert entity is not None
        if change.kind == "ephemeral":
            self._project(entity, equal_ok=True, payload=change.payload)
        else:
            require(entity.rev == change.rev, f"{change.item_id} reached rev {change.rev}")
            self._project(entity, equal_ok=False)

    def _segment_for_append(
        self, meta: Meta, next_seq: int, *, force: bool = False,
    ) -> tuple[int, list[tuple[str, dict[str, Any], str]]]:
        """The segment to append to; rolls it when full (SPEC §4), returning the owed
        checkpoint_ref of the checkpoint written at the roll."""
        segments = self.journal.segments()
        active = segments[-1]
        if not force and self.journal.size(active) < self.config.segment_bytes_max:
            self._point_meta_at(meta, active)
            return active, []
        checkpoint = self._write_checkpoint()
        self.journal.create_segment(next_seq)
        self._point_meta_at(meta, next_seq)
        return next_seq, [self._checkpoint_note(checkpoint)]

    def _point_meta_at(self, meta: Meta, segment: int) -> None:
        """Readers that follow meta's active segment (``refresh``) read only that segment,
        so meta names a segment before any record lands in it: a failed or crashed roll
        (records appended, meta not updated) must not hide records from them for good."""
        name = segment_name(segment)
        if meta.active_segment == name:
            return
        meta.active_segment = name
        meta.rolled = True  # the active segment changed: meta is written atomically
        self._write_meta(meta, atomic=True)

    def _write_checkpoint(self) -> CheckpointFile:
        """Write ckpt-<head>.json durably (lock held); its ref is appended by the caller.

        Once per head: when a compact's append rolls the segment, the roll reuses the
        compact's checkpoint. (Written twice, the file held the roll's bytes -- they differ
        in ``created`` -- while the compact's ref, appended last, named the first ones.)"""
        last = self._last_checkpoint
        if last is not None and last.head_seq == self.state.head_seq and self.fileio.size(
                os.path.join(self.checkpoints_dir, last.name)) == len(last.data):
            return last
        checkpoint = build_checkpoint(self.state, self.store_id)
        self.fileio.mkdir(self.checkpoints_dir)
        path = os.path.join(self.checkpoints_dir, checkpoint.name)
        self.fileio.write_atomic(path, checkpoint.data, durable=True)
        self._last_checkpoint = checkpoint
        return checkpoint

    def _checkpoint_note(self, checkpoint: CheckpointFile) -> tuple[str, dict[str, Any], str]:
        return ("checkpoint_ref", checkpoint.ref_payload(), f"checkpoint {checkpoint.name}")

    def locked_maintenance(self, actor: str) -> Any:
        """The store lock for doctor's offline work (gc, repair, redact), re-entrant."""
        return self.journal.locked(actor, self.config.lock_wait_s)

    def append_notes(
        self, actor: str, notes: list[tuple[str, dict[str, Any], str]], *, roll: bool = False,
    ) -> Committed:
        """Append journal-meta records as one txn (lock taken here, re-entrant); ``roll``
        seals the active segment first, with a checkpoint."""
        with self._mutex, self.journal.locked(actor, self.config.lock_wait_s):
            self._catch_up(None)
            meta = self._meta_for_write()
            tail_seq = self.reader.tail_seq()
            self._heal(meta)
            return self._commit(actor, meta, tail_seq, [], notes, roll=roll)

    def reload(self) -> None:
        """Forget the in-memory state and rebuild it from checkpoint + journal."""
        with self._mutex:
            self.reader, self.state = self.rebuild_state()

    def import_chunk(
        self, chunk: list[dict[str, Any]],
    ) -> tuple[int, int, list[dict[str, Any]]]:
        """Apply one chunk of imported records under one lock hold, as one txn (SPEC §12).
        Returns (applied, skipped as already here, conflicts)."""
        with self._mutex, self.journal.locked(STORE_ACTOR, self.config.lock_wait_s):
            self._catch_up(None)
            meta = self._meta_for_write()
            tail_seq = self.reader.tail_seq()
            self._heal(meta)
            fresh, conflicts = self._triage_imports(chunk)
            notes = [("journal_note", {"kind": "import_conflict", **conflict},
                      f"conflict on {conflict['item_id']} rev {conflict['entity_rev']}")
                     for conflict in conflicts]
            if fresh or notes:
                self._commit(STORE_ACTOR, meta, tail_seq, [], notes, imported=fresh)
            for conflict in conflicts:
                kept = self.state.entity(conflict["item_type"], conflict["item_id"])
                if kept is not None:
                    conflict["kept_rev"] = kept.rev
                    conflict["kept_origin"] = kept.origin or self.store_id
            return len(fresh), len(chunk) - len(fresh), conflicts

    def _triage_imports(
        self, chunk: list[dict[str, Any]],
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Drop what is already here; name every (item_id, entity_rev) that another origin
        also wrote (a conflict: reported, and resolved by last-writer-wins)."""
        fresh: list[dict[str, Any]] = []
        conflicts: list[dict[str, Any]] = []
        seen: set[tuple[str, int, str]] = set()
        chunk_revs: dict[tuple[str, str, int], list[str]] = {}
        for record in chunk:
            origin = record["origin"]
            key = (origin["store"], origin["seq"], origin["writer"])
            if origin["store"] == self.store_id or key in seen or self.state.has_imported(origin):
                continue
            seen.add(key)
            rev_key = (record["item_type"], record["item_id"], record["entity_rev"])
            others = self.state.rev_conflicts(*rev_key, origin["store"])
            others += [o for o in chunk_revs.get(rev_key, []) if o != origin["store"]]
            chunk_revs.setdefault(rev_key, []).append(origin["store"])
            if others:
                conflicts.append({
                    "item_type": rev_key[0], "item_id": rev_key[1], "entity_rev": rev_key[2],
                    "local_origins": sorted(set(others)), "incoming_origin": origin["store"],
                    "incoming_seq": origin["seq"],
                })
            fresh.append(record)
        return fresh, conflicts

    def origins(self) -> dict[str, int]:
        """Stores this one has imported from, and the newest origin seq imported from each."""
        with self._mutex:
            self.refresh()
            return {
                store: max((max(seqs) for seqs in writers.values() if seqs), default=0)
                for store, writers in sorted(self.state.imported.items())
            }

    def rebuild_projections(self) -> int:
        """Write every projection from the journal (doctor --repair); meta rebuilt too."""
        with self._mutex, self.journal.locked(STORE_ACTOR, self.config.lock_wait_s):
            self.reader, self.state = self.rebuild_state()
            meta = self._meta_for_write()
            meta.applied = {}
            self.projections.ensure_dirs()
            before = self.projections.written
            self._heal(meta)
            self._write_meta(meta, atomic=True)
            return self.projections.written - before

    def rewrite_redacted_projections(self, seqs: set[int]) -> list[str]:
        """Projections whose current record was redacted now hold the marker."""
        rewritten = []
        with self._mutex:
            for family in FAMILIES:
                for entity in self.state.live(family):
                    if entity.seq in seqs and entity.payload is not None:
                        self.projections.write(entity, entity.payload, equal_ok=True)
                        rewritten.append(f"{family}/{entity.item_id}")
        return rewritten

    def compact(self, actor: str = STORE_ACTOR) -> dict[str, Any]:
        """Write a checkpoint now (``doctor --compact``) and return its ref."""
        with self._mutex, self.journal.locked(actor, self.config.lock_wait_s):
            self._catch_up(None)
            meta = self._meta_for_write()
            tail_seq = self.reader.tail_seq()
            self._heal(meta)
            checkpoint = self._write_checkpoint()
            self._commit(actor, meta, tail_seq, [], [self._checkpoint_note(checkpoint)])
            return checkpoint.ref_payload()

    def _needs_seal(self, segment: int) -> bool:
        fragment = self.reader.pending_fragment
        return fragment is not None and fragment.segment == segment

    def _repair_notes(self, meta: Meta, tail_seq: int) -> list[tuple[str, dict[str, Any], str]]:
        """journal-meta records the writer owes before its first append (SPEC §5, §6.4-5)."""
        notes: list[tuple[str, dict[str, Any], str]] = []
        if meta.next_seq < tail_seq + 1 and not meta.rebuilt:
            notes.append(("seq_repair", {
                "meta_next_seq": meta.next_seq, "tail_seq": tail_seq,
                "repaired_next_seq": tail_seq + 1,
            }, f"meta was behind the tail at seq {tail_seq}"))
        if self.reader.pending_fragment is not None:
            note = self.reader.pending_fragment.note()
            notes.append(("journal_note", note, "torn tail adjudicated"))
        if self.reader.pending_run is not None:
            run = self.reader.pending_run
            notes.append(("journal_note", {
                "kind": "incomplete_txn", "txn": run.txn, "writer": run.writer, "seqs": run.seqs,
            }, f"incomplete txn {run.txn} dropped"))
        return notes

    def _journal_records(
        self, first: int, notes: list[tuple[str, dict[str, Any], str]],
    ) -> list[bytes]:
        count = len(notes)
        return [
            encode_record(self._record(
                first + i, (first, count), STORE_ACTOR, action, "journal", None, None, payload,
                summary,
            ))
            for i, (action, payload, summary) in enumerate(notes)
        ]

    def _mutation_records(
        self, actor: str, first: int, changes: list[Change],
        imported: list[dict[str, Any]] | None = None,
    ) -> list[bytes]:
        """Encode the mutation's records; oversized payloads become blobs (SPEC §9), written
        only once every record has encoded, and always before the append."""
        count = len(changes) + len(imported or [])
        lines, blobs = [], []
        records = [
            self._record(
                first + i, (first, count), actor, change.action, change.family, change.item_id,
                change.rev, change.payload if change.action != "delete" else None,
                change.summary,
            )
            for i, change in enumerate(changes)
        ]
        for i, incoming in enumerate(imported or [], start=len(changes)):
            records.append({**incoming, "seq": first + i, "txn": [first, count],
                            "writer": writer_id()})
        for record in records:
            payload = record.get("payload")
            if payload is not None and record["item_type"] != "journal":
                encoded = payload_bytes(payload)
                if len(encoded) > limits.payload_inline_bytes_max:
                    del record["payload"]
                    record["payload_ref"] = blob_ref(encoded)
                    blobs.append(encoded)
            lines.append(encode_record(record))
        for encoded in blobs:
            self.blobs.put(encoded)
        return lines

    def _record(
        self, seq: int, txn: tuple[int, int], actor: str, action: str, item_type: str,
        item_id: str | None, rev: int | None, payload: dict[str, Any] | None,
        summary: str | None,
    ) -> dict[str, Any]:
        record: dict[str, Any] = {
            "v": limits.ENVELOPE_VERSION, "seq": seq, "ts": clock.to_rfc3339(self.now()),
            "writer": writer_id(), "actor": actor, "action": action, "item_type": item_type,
        }
        if item_id is not None:
            record["item_id"] = item_id
        if rev is not None:
            record["entity_rev"] = rev
        record["txn"] = list(txn)
        if summary:
            record["summary"] = summary[: limits.summary_chars_max]
        if payload is not None:
            record["payload"] = payload
        return record

    def _loader(self, family: str, item_id: str) -> Loaded:
        entity = self.state.entity(family, item_id)
        if entity is None:
            return Loaded(0, None)
        if entity.deleted:
            return Loaded(entity.rev, None, entity.origin)
        payload = dict(self._payload_of(entity))
        return Loaded(entity.rev, self._overlay_ephemeral(entity, payload), entity.origin)

    def _overlay_ephemeral(self, entity: EntityState, payload: dict[str, Any]) -> dict[str, Any]:
        """Ephemeral fields live only in the projection at an equal rev (SPEC §6.3, §7.2)."""
        ephemeral = MODELS[entity.family].EPHEMERAL
        if not ephemeral:
            return payload
        found = self.projections.read(entity.family, entity.item_id)
        if found.doc is not None and found.rev == entity.rev:
            projected = found.doc.get("payload") or {}
            for field in ephemeral:
                if field in projected:
                    payload[field] = projected[field]
        return payload

    def _active_claims(self, target: str) -> list[str]:
        return sorted(self.state.active_claims.get(target, ()))

    # -- reads --------------------------------------------------------------------------
    def entity_view(self, family: str, item_id: str) -> dict[str, Any]:
        """One entity as the fresh path serves it: ``entity, entity_rev, seq, stale``."""
        check_family(family)
        check_item_id(family, item_id)
        stale = self.fresh(family)
        with self._mutex:
            if stale:
                found = self.projections.read(family, item_id)
                if found.doc is not None:
                    return self._view_doc(found.doc, stale=True)
            entity = self.state.entity(family, item_id)
            if entity is None or entity.deleted:
                raise NotFound(f"no {family} with id {item_id!r}")
            payload = self._overlay_ephemeral(entity, dict(self._payload_of(entity)))
            return self._view(entity, payload, stale=stale)

    def _view(self, entity: EntityState, payload: dict[str, Any], *, stale: bool) -> dict[str, Any]:
        return {
            "item_type": entity.family, "item_id": entity.item_id, "entity_rev": entity.rev,
            "seq": entity.seq, "entity": payload, "stale": stale,
        }

    def _view_doc(self, doc: dict[str, Any], *, stale: bool) -> dict[str, Any]:
        """A view of a projection. Projections hold no local seq: it comes from the state
        when that knows the same rev, else 0 (seqs start at 1). Never None: readers sort and
        type views by their seq (None failed the work briefing and the tools' outputs)."""
        family, item_id, rev = doc.get("item_type"), doc.get("item_id"), doc.get("entity_rev")
        known = (self.state.entity(family, item_id)
                 if family in FAMILIES and isinstance(item_id, str) else None)
        return {
            "item_type": family, "item_id": item_id, "entity_rev": rev,
            "seq": known.seq if known is not None and known.rev == rev else 0,
            "entity": doc.get("payload"), "stale": stale,
        }

    def entities(self, family: str) -> tuple[list[dict[str, Any]], bool]:
        """Every live entity of a family (views), and whether they are stale."""
        check_family(family)
        stale = self.fresh(family)
        with self._mutex:
            if stale:
                docs = [self.projections.read(family, i).doc for i in self.projections.ids(family)]
                return [self._view_doc(d, stale=True) for d in docs if d is not None], True
            views = []
            for entity in self.state.live(family):
                payload = self._payload_of(entity)
                if MODELS[family].EPHEMERAL:
                    payload = self._overlay_ephemeral(entity, dict(payload))
                views.append(self._view(entity, payload, stale=False))
            return views, False

    @property
    def head_seq(self) -> int:
        return self.state.head_seq

    # -- cursors (SPEC §7.3) --------------------------------------------------------------
    def read_unseen(
        self, actor: str, limit: int = 100, item_types: list[str] | None = None,
        advance: bool = False,
    ) -> dict[str, Any]:
        check_actor(actor)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise InvalidArgument("limit must be a positive integer")
        limit = min(limit, limits.unseen_events_max)
        wanted = {check_family(t) if t != "journal" else t for t in item_types or []} or None
        with self._mutex:
            self.refresh()
            head = self.state.head_seq
            last = self.cursors.get(actor)
            answer = self._unseen_page(actor, last, head, limit, wanted)
        if advance and answer["last_seq"] > last:
            self.ack(actor, answer["last_seq"])
        return answer

    def _unseen_page(
        self, actor: str, last: int, head: int, limit: int, wanted: set[str] | None,
    ) -> dict[str, Any]:
        oldest = self._oldest_seq()
        answer: dict[str, Any] = {"events": [], "last_seq": last, "next_seq": last + 1,
                                  "head_seq": head, "has_more": False, "gap": False}
        if last + 1 < oldest:
            answer["gap"] = True
            answer["gap_summary"] = self.gap_summary(last, oldest)
        events: list[Record] = answer["events"]
        for record, where in self._records_with_positions(last, head):
            if len(events) == limit and _matches(record, actor, wanted):
                answer["has_more"] = True
                if where is not None:  # the next page starts at this record's txn
                    self._remember_position(record["seq"], where)
                break
            answer["last_seq"] = record["seq"]
            if _matches(record, actor, wanted):
                events.append(record)
        else:
            answer["last_seq"] = max(answer["last_seq"], head)  # everything up to head seen
        answer["next_seq"] = answer["last_seq"] + 1
        return answer

    def _records_after(self, last: int, head: int) -> Iterator[Record]:
        for record, _ in self._records_with_positions(last, head):
            yield record

    def _records_with_positions(
        self, last: int, head: int,
    ) -> Iterator[tuple[Record, tuple[int, int] | None]]:
        """Records after ``last`` up to ``head``; with each txn's first record, the
        position its txn starts at (None with the others)."""
        segment, offset = self._position_for(last + 1)
        if segment is None:
            return
        for group, at_segment, at_offset in scan_groups_at(self.journal, segment, offset):
            where: tuple[int, int] | None = (at_segment, at_offset)
            for record in group:
                if record["seq"] > head:
                    return
                if record["seq"] > last:
                    yield record, where
                where = None

    def _remember_position(self, seq: int, where: tuple[int, int]) -> None:
        """Where the txn starting at ``seq`` lies, for the page a reader asks for next."""
        self._positions[seq] = where
        if len(self._positions) > limits.unseen_positions_max:
            del self._positions[next(iter(self._positions))]

    def _position_for(self, seq: int) -> tuple[int | None, int]:
        known = self._positions.get(seq)
        if known is not None:  # (in a segment gc archived since, the scan skips it)
            return known
        index = self.reader.sparse_index
        lo, hi = 0, len(index)
        while lo < hi:
            mid = (lo + hi) // 2
            if index[mid][0] <= seq:
                lo = mid + 1
            else:
                hi = mid
        if lo > 0:
            _, segment, offset = index[lo - 1]
            return segment, offset
        segments = self.journal.segments()
        first = segment_for_seq(segments, seq) if segments else None
        return (first if first is not None else (segments[0] if segments else None)), 0

    def _oldest_seq(self) -> int:
        segments = self.journal.segments()
        return segments[0] if segments else 1

    def gap_summary(self, last: int, oldest: int) -> dict[str, Any]:
        """What a reader whose history was archived missed, from the latest checkpoint
        (SPEC §7.3): its head and the live entities per family and status."""
        summary: dict[str, Any] = {"missed_from_seq": last + 1, "oldest_kept_seq": oldest}
        heads = list_checkpoints(self.fileio, self.checkpoints_dir)
        if not heads:
            return summary
        scratch = State()
        name = checkpoint_name(heads[-1])
        try:
            load_checkpoint(self.fileio.read_file(
                os.path.join(self.checkpoints_dir, name)) or b"", self.store_id, scratch)
        except CheckpointInvalid:
            return summary
        counts: dict[str, dict[str, int]] = {}
        for family in FAMILIES:
            for entity in scratch.live(family):
                payload = entity.payload or {}
                status = "redacted" if is_redacted(payload) else str(payload.get("status", "live"))
                counts.setdefault(family, {}).setdefault(status, 0)
                counts[family][status] += 1
        summary.update({"checkpoint": name, "checkpoint_head_seq": heads[-1], "live": counts})
        return summary

    def ack(self, actor: str, up_to_seq: int) -> int:
        """Move the actor's cursor forward to ``up_to_seq`` (never backwards)."""
        check_actor(actor)
        if isinstance(up_to_seq, bool) or not isinstance(up_to_seq, int) or up_to_seq < 0:
            raise InvalidArgument("up_to_seq must be a non-negative integer")
        with self._mutex:
            self.refresh()
            if up_to_seq > self.state.head_seq:
                raise InvalidArgument(
                    f"up_to_seq {up_to_seq} is past the head of the journal "
                    f"({self.state.head_seq}); ack the last_seq that read_unseen returned"
                )
            with self.journal.locked(actor, self.config.lock_wait_s):
                current = self.cursors.get(actor)
                if up_to_seq > current:
                    self.cursors.set(actor, up_to_seq)
                    current = up_to_seq
            return current


def _matches(record: Record, actor: str, wanted: set[str] | None) -> bool:
    if record["actor"] == actor:
        return False
    if wanted is None:
        return bool(record["item_type"] != "journal")
    return record["item_type"] in wanted


@contextmanager
def open_store(root: str, **kwargs: Any) -> Iterator[Store]:
    store = Store(root, **kwargs)
    try:
        yield store
    finally:
        store.close()
