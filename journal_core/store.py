"""The store: one open store, thin over its parts (docs/design.md, "The store").

    backend      the journal, blobs, checkpoints, cursors, projections (local files by default)
    replica      this process's state, kept current by following the journal (reads)
    committer    the write path: group commit under the store lock (mutations)
    projector    projection files and watermarks, after the unlock

Thread-safe; many processes may open the same store at once.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from . import clock, limits
from .backend import (
    Backend,
    LocalBackend,
    LocalConfig,
    adopt_face,
    missing_store,
    new_store_info,
)
from .blob import blob_matches
from .commit import Committed, Committer, build_records, fingerprint, meta_record
from .counters import JournalCounters
from .errors import (
    InvalidArgument,
    NotFound,
    ReadOnlyStore,
)
from .fileio import FileIO
from .ids import check_actor, check_family, check_item_id
from .imports import chunk_records, kept, triage
from .journal import FsyncMode, Record, Transaction, TxnGroup
from .layout import Location, location_for_root
from .mutation import Mutation
from .opening import open_replica, plan_restart
from .reads import entity_view, family_views, view
from .record import payload_bytes
from .replay import State
from .store_url import StoreUrl, looks_like_url, parse_store_url
from .unseen import ack, gap_summary, read_unseen
from .vocabulary import FAMILIES

T = TypeVar("T")
STORE_ACTOR = "agentjournal"
logger = logging.getLogger("agentjournal.store")


@dataclass
class StoreConfig:
    fsync: FsyncMode = "always"
    segment_bytes_max: int = limits.segment_bytes_max_default
    lock_wait_s: float = limits.lock_wait_s_default
    projections: str = "sync"  # "sync" (after the unlock, in the caller) | "background" | "off"


class Store:
    """One open store."""

    def __init__(
        self,
        root: str | Location | StoreUrl | None = None,
        config: StoreConfig | None = None,
        *,
        fileio: FileIO | None = None,
        now: Callable[[], datetime] = clock.utc_now,
        create: bool = True,
        backend: Backend | None = None,
    ) -> None:
        """A store in a folder (``root``, the local backend), at a ``postgresql://`` URL
        (``root`` as a string or a ``StoreUrl``), or on any ``backend``."""
        self.config = config or StoreConfig()
        self.now = now
        self.fileio = fileio or FileIO()
        self.location: Location | None
        if backend is None and isinstance(root, str) and looks_like_url(root):
            root = parse_store_url(root)  # refuses a scheme not served: never a folder
        if isinstance(root, StoreUrl):
            from .pg_backend import PgBackend  # psycopg is optional: only for such a store

            backend = PgBackend(root)
        if backend is None:
            if root is None or isinstance(root, StoreUrl):
                raise InvalidArgument("a store needs a folder (root) or a backend")
            self.location = root if isinstance(root, Location) else location_for_root(root)
            backend = LocalBackend(self.location, self.fileio, LocalConfig(
                self.config.fsync, self.config.segment_bytes_max, self.config.projections))
        else:
            self.location = getattr(backend, "location", None)
        self.backend: Backend = backend
        self.root = self.backend.where
        opened = False
        try:
            info = self.backend.store_info()
            if info is None:
                if not create:
                    raise missing_store(self.root)
                info = self._create()
            self.store_id = str(info["store_id"])
            self.info = info
            self._open()
            opened = True
        finally:
            if not opened:  # the error itself propagates
                self.backend.close()

    # -- opening ------------------------------------------------------------------------------
    def _create(self) -> dict[str, Any]:
        """A new store: folders, the lock, then (under it) the first txn, store.json last."""
        self.backend.prepare()
        journal = self.backend.journal
        with journal.transaction(STORE_ACTOR, self.config.lock_wait_s) as txn:
            info = self.backend.store_info()
            if info is not None:
                return info  # another process made it while we waited
            adopted = adopt_face(self.location, self.fileio) if self.location else None
            info = new_store_info(self.location)
            if adopted is not None:
                info["store_id"] = adopted["store_id"]  # a clone of a store tracked in git
                self._copy_face_checkpoints()
            elif journal.is_empty():
                genesis = meta_record(1, (1, 1), STORE_ACTOR, "journal_note", {
                    "kind": "genesis", "store_id": info["store_id"], "created": info["created"],
                }, "store created", self.now())
                txn.start(1, [genesis])
            self.backend.create(info)
            return info

    def _copy_face_checkpoints(self) -> None:
        face = self.location.face if self.location else None
        if face is None:
            return
        folder = os.path.join(face, "checkpoints")
        for name in self.fileio.listdir(folder):
            data = self.fileio.read_file(os.path.join(folder, name))
            head = _checkpoint_head(name)
            if data is not None and head is not None:
                self.backend.checkpoints.write(head, data)

    def _open(self) -> None:
        backend = self.backend
        if backend.journal.is_empty():
            self._restart_journal()
        opened = open_replica(backend.journal, backend.checkpoints, self.store_id,
                              backend.blobs.get_payload, self._projection_payload)
        self.replica = opened.replica
        self.checkpoint_fallbacks = opened.fallbacks
        with self.replica.state_lock:
            self.missing_content = [
                f"{f}/{e.item_id}"
                for f in FAMILIES for e in self.replica.state.families[f].values()
                if e.payload is None and e.payload_ref is not None and not e.deleted]
        self.committer = Committer(backend.journal, self.replica, backend.blobs,
                                   backend.checkpoints, self.store_id, self.now,
                                   self._after_commit)
        if backend.projections is not None:
            backend.projections.local_origin = self.store_id
        projector = backend.projector
        if projector is not None:
            projector.store_id = self.store_id
            projector.attach(self.replica.guarded)
            self.replica.listeners.append(self._queue_projections)
        # Opening writes nothing: projections are caches the next writer brings up to date.

    def _restart_journal(self) -> None:
        """An empty journal in a store that holds checkpoints or projections (a clone):
        everything is computed in memory first; only then is the journal started."""
        backend = self.backend
        if backend.read_only:
            raise ReadOnlyStore(f"{self.root} has no journal and is read-only: it cannot be "
                                "restarted here")
        restart = plan_restart(backend.checkpoints, backend.projections, self.store_id,
                               backend.blobs.get_payload, self._projection_payload)
        first = restart.state.head_seq + 1
        now = self.now()
        notes = list(restart.notes)
        if restart.checkpoint is not None:
            notes.append(("checkpoint_ref", restart.checkpoint.ref_payload(),
                          f"checkpoint {restart.checkpoint.name}"))
        count = len(notes) + len(restart.changes)
        records = [meta_record(first + i, (first, count), STORE_ACTOR, action, payload,
                               summary, now)
                   for i, (action, payload, summary) in enumerate(notes)]
        entity_records, blobs = build_records(STORE_ACTOR, first + len(notes),
                                              restart.changes, now, None)
        for record in entity_records:
            record["txn"] = [first, count]
        for data in blobs:
            backend.blobs.put(data)
        with backend.journal.transaction(STORE_ACTOR, self.config.lock_wait_s) as txn:
            txn.start(first, records + entity_records)  # False: another process did it first

    def _projection_payload(self, family: str, item_id: str,
                            ref: dict[str, Any]) -> dict[str, Any] | None:
        """A payload whose blob is missing, from its projection when that matches the ref's
        sha256 exactly (a clone carries projections but not blobs)."""
        projections = self.backend.projections
        if projections is None:
            return None
        found = projections.read(family, item_id)
        payload = (found.doc or {}).get("payload")
        if not isinstance(payload, dict):
            return None
        try:
            data = payload_bytes(payload)
        except InvalidArgument:
            return None
        import hashlib

        return payload if hashlib.sha256(data).hexdigest() == ref.get("sha256") else None

    def heal_blobs(self) -> list[str]:
        """Blobs recovered from projections are written back (content-addressed, verified:
        ``doctor --repair``); the hashes written."""
        healed: list[str] = []
        if self.backend.read_only:
            return healed
        with self.replica.state_lock:
            entities = [e for f in FAMILIES for e in self.replica.state.families[f].values()
                        if e.payload_ref is not None and e.payload is not None]
        for entity in entities:
            ref, payload = entity.payload_ref, entity.payload
            if ref is None or payload is None or self.backend.blobs.exists(ref):
                continue
            data = payload_bytes(payload)
            if blob_matches(ref, data):
                self.backend.blobs.put(data)
                healed.append(str(ref["sha256"]))
        return healed

    def close(self) -> None:
        try:
            self.backend.close()
        finally:
            replica = getattr(self, "replica", None)
            if replica is not None:
                replica.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- parts, for the rest of journal_core and for tests ----------------------------------------
    @property
    def journal(self) -> Any:
        return self.backend.journal

    @property
    def state(self) -> State:
        return self.replica.state

    @property
    def counters(self) -> JournalCounters:
        return self.replica.state.counters

    @property
    def head_seq(self) -> int:
        return self.replica.head_seq

    @property
    def projections(self) -> Any:
        return self.backend.projections

    @property
    def cursors(self) -> Any:
        return self.backend.cursors

    @property
    def blobs(self) -> Any:
        return self.backend.blobs

    @property
    def checkpoints(self) -> Any:
        return self.backend.checkpoints

    @property
    def events_dir(self) -> str:
        return str(getattr(self.backend, "events_dir", ""))

    @property
    def checkpoints_dir(self) -> str:
        return str(getattr(self.backend, "checkpoints_dir", ""))

    @property
    def meta_path(self) -> str:
        return str(getattr(self.backend, "meta_path", ""))

    @property
    def read_only(self) -> bool:
        return self.backend.read_only

    # -- mutations ------------------------------------------------------------------------------
    def mutate(self, actor: str, verb: Callable[[Mutation], T], *,
               lock_wait_s: float | None = None, request_id: str | None = None,
               fingerprint_of: object = None) -> tuple[T, Committed]:
        """Run ``verb`` as one mutation under the store lock (joining a batch with other
        threads' mutations); its result once durable. ``request_id`` makes a retry safe:
        a repeat of (actor, request_id) within the window answers the first call and writes
        nothing (``Committed.replayed``); ``fingerprint_of`` names the arguments (a reused
        request_id with other arguments is refused)."""
        check_actor(actor)
        if self.backend.read_only:
            raise ReadOnlyStore(f"the store at {self.root} is read-only "
                                f"({self.backend.read_only_reason}); it can be "
                                "inspected but nothing can be written")
        self._reload_if_needed()
        wait_s = self.config.lock_wait_s if lock_wait_s is None else lock_wait_s
        result, committed = self.committer.submit(
            actor, verb, request_id=request_id,
            fingerprint=fingerprint(fingerprint_of if fingerprint_of is not None else verb),
            wait_s=wait_s)
        return result, committed

    def _after_commit(self) -> None:
        projector = self.backend.projector
        if projector is not None:
            projector.after_commit()

    def _queue_projections(self, groups: list[TxnGroup], own: bool) -> None:
        projector = self.backend.projector
        if projector is None:
            return
        keys: list[tuple[str, str, bool]] = []
        for group in groups:
            for record in group.records:
                if record["item_type"] != "journal":
                    keys.append((record["item_type"], record["item_id"],
                                 record["action"] == "renew"))
                elif record["payload"].get("kind") == "redaction":
                    keys += self._redacted_keys(set(record["payload"].get("seqs") or []))
        projector.changed(keys)

    def _redacted_keys(self, seqs: set[int]) -> list[tuple[str, str, bool]]:
        state = self.replica.state
        return [(f, e.item_id, True) for f in FAMILIES for e in state.families[f].values()
                if e.seq in seqs]

    def flush(self, timeout_s: float = limits.projector_flush_s) -> bool:
        """Wait for the projection files to catch up (tests, CLI commands)."""
        projector = self.backend.projector
        return projector.flush(timeout_s) if projector is not None else True

    def journal_txn(self, actor: str, build: Callable[[Transaction, int], list[list[Record]]],
                    *, checkpoint: bool = False) -> list[list[Record]]:
        if self.backend.read_only:
            raise ReadOnlyStore(f"the store at {self.root} is read-only")
        return self.committer.journal_txn(actor, self.config.lock_wait_s, build,
                                          checkpoint=checkpoint)

    def append_notes(self, actor: str, notes: list[tuple[str, dict[str, Any], str]], *,
                     roll: bool = False) -> Committed:
        """Append journal-meta records as one txn; ``roll`` closes the active segment first,
        with a checkpoint."""
        check_actor(actor)

        def build(txn: Transaction, first: int) -> list[list[Record]]:
            now = self.now()
            return [[meta_record(first + i, (first, len(notes)), actor, action, payload,
                                 summary, now)
                     for i, (action, payload, summary) in enumerate(notes)]]

        groups = self.journal_txn(actor, build, checkpoint=roll)
        mine = groups[-1] if groups and notes else []
        first = int(mine[0]["seq"]) if mine else self.head_seq + 1
        return Committed(first, len(mine), [])

    def compact(self, actor: str = STORE_ACTOR) -> dict[str, Any]:
        """Write a checkpoint now (``doctor --compact``) and return its ref."""
        groups = self.journal_txn(actor, lambda txn, first: [], checkpoint=True)
        return dict(groups[0][0]["payload"])

    def import_chunk(self, chunk: list[Record]) -> tuple[int, int, list[dict[str, Any]]]:
        """Apply one chunk of imported records under one lock hold, as one txn. Returns
        (applied, skipped as already here, conflicts)."""
        outcome: dict[str, Any] = {}

        def build(txn: Transaction, first: int) -> list[list[Record]]:
            with self.replica.state_lock:
                fresh, conflicts = triage(self.replica.state, self.store_id, chunk)
            outcome.update(fresh=fresh, conflicts=conflicts)
            if not fresh and not conflicts:
                return []
            return [chunk_records(fresh, conflicts, first, self.now())]

        self.journal_txn(STORE_ACTOR, build)
        with self.replica.state_lock:
            kept(self.replica.state, outcome["conflicts"], self.store_id)
        return len(outcome["fresh"]), len(chunk) - len(outcome["fresh"]), outcome["conflicts"]

    # -- reads ----------------------------------------------------------------------------------
    def refresh(self) -> bool:
        """Catch up with the journal (no lock); True when stale (could not reach its end)."""
        self._reload_if_needed()
        return self.replica.refresh()

    def entity_view(self, family: str, item_id: str) -> dict[str, Any]:
        """One entity: ``item_type, item_id, entity_rev, seq, entity, stale``."""
        check_family(family)
        check_item_id(family, item_id)
        self._reload_if_needed()
        found = entity_view(self.replica, family, item_id)
        if found is None:
            raise NotFound(f"no {family} with id {item_id!r}")
        return found

    def entities(self, family: str) -> tuple[list[dict[str, Any]], bool]:
        """Every live entity of a family (views), and whether they are stale."""
        check_family(family)
        self._reload_if_needed()
        return family_views(self.replica, family)

    def replayed_view(self, committed: Committed, key: tuple[str, str]) -> dict[str, Any]:
        """The answer of the first call of a repeated request: the entity as that txn left
        it (from the journal), else as it is now."""
        for group in self.journal.scan(committed.first_seq - 1):
            for record in group.records:
                if (record["item_type"], record.get("item_id")) == key and \
                        record["seq"] < committed.first_seq + committed.count and \
                        record.get("entity_rev") is not None and "payload" in record:
                    found = self.state.entity(*key)
                    if found is not None and found.rev == record["entity_rev"]:
                        return view(found, stale=False)
                    return {"item_type": key[0], "item_id": key[1],
                            "entity_rev": record["entity_rev"], "seq": record["seq"],
                            "entity": record["payload"], "stale": False}
            break
        return self.entity_view(*key)

    def records_after(self, after_seq: int, limit: int = limits.records_page_max) -> list[Record]:
        """Complete records with ``seq > after_seq`` up to the head, oldest first (all
        actors, journal notes included: what ``tail`` prints)."""
        if isinstance(after_seq, bool) or not isinstance(after_seq, int) or after_seq < 0:
            raise InvalidArgument("after_seq must be a non-negative integer")
        limit = max(1, min(limit, limits.records_page_max))
        self.refresh()
        head = self.head_seq
        out: list[Record] = []
        for group in self.journal.scan(after_seq):
            for record in group.records:
                if record["seq"] > head or len(out) >= limit:
                    return out
                out.append(record)
        return out

    def active_claim_ids(self) -> list[str]:
        self.refresh()
        with self.replica.state_lock:
            return sorted(self.replica.state.claims.active_ids())

    def origins(self) -> dict[str, int]:
        """Stores this one has imported from, and the newest origin seq imported from each."""
        self.refresh()
        with self.replica.state_lock:
            return {
                store: max((max(seqs) for seqs in writers.values() if seqs), default=0)
                for store, writers in sorted(self.replica.state.imported.items())
            }

    # -- cursors ----------------------------------------------------------------------------------
    def read_unseen(self, actor: str, limit: int = 100, item_types: list[str] | None = None,
                    advance: bool = False, *, payloads: bool = False) -> dict[str, Any]:
        answer = read_unseen(self.replica, self.backend.cursors, self.backend.checkpoints,
                             self.store_id, actor, limit, item_types, payloads=payloads)
        if advance and answer["last_seq"] > self.backend.cursors.get(actor):
            self.ack(actor, answer["last_seq"])
        return answer

    def ack(self, actor: str, up_to_seq: int) -> int:
        if self.backend.read_only:
            raise ReadOnlyStore(f"the store at {self.root} is read-only: cursors cannot move")
        return ack(self.replica, self.backend.cursors, actor, up_to_seq)

    def cursor(self, actor: str) -> int:
        return int(self.backend.cursors.get(actor))

    def gap_summary(self, last: int, oldest: int) -> dict[str, Any]:
        return gap_summary(self.backend.checkpoints, self.store_id, last, oldest)

    # -- maintenance --------------------------------------------------------------------------
    @contextmanager
    def locked_maintenance(self, actor: str) -> Iterator[None]:
        """The store lock for doctor's offline work (gc, repair, redact), re-entrant."""
        if self.backend.read_only:
            raise ReadOnlyStore(f"the store at {self.root} is read-only")
        with self.journal.transaction(actor, self.config.lock_wait_s):
            yield

    def rebuild_state(self) -> State:
        """The state as checkpoint + journal give it, in a scratch replica (no file)."""
        opened = open_replica(self.journal, self.backend.checkpoints, self.store_id,
                              self.backend.blobs.get_payload, self._projection_payload)
        opened.replica.close()
        return opened.replica.state

    def reload(self) -> None:
        """Forget the in-memory state and rebuild it from checkpoint + journal."""
        opened = open_replica(self.journal, self.backend.checkpoints, self.store_id,
                              self.backend.blobs.get_payload, self._projection_payload)
        self.replica.swap(opened.replica.state, opened.replica.follower)
        self.checkpoint_fallbacks = opened.fallbacks

    def _reload_if_needed(self) -> None:
        reason = self.replica.needs_reload
        if reason is not None:
            logger.warning("rebuilding the in-memory state: %s", reason)
            self.reload()

    def rebuild_projections(self, progress: Callable[[str, int, int], None] | None = None,
                            ) -> int:
        """Rewrite every projection from the journal (doctor --repair); returns how many
        files were written. ``progress("rebuild", done, total)`` as it goes."""
        projector = self.backend.projector
        projections = self.backend.projections
        if projector is None or projections is None:
            return 0
        if self.meta_path:
            self.fileio.unlink(self.meta_path)
        before = projections.written
        projections.ensure_dirs()
        projector.request_full_check()
        projector.run_once(block=True, progress=progress)
        return int(projections.written - before)

    def rewrite_redacted_projections(self, seqs: set[int]) -> list[str]:
        keys = self._redacted_keys(seqs)
        projector = self.backend.projector
        if projector is not None:
            projector.changed(keys)
            projector.flush()
        return [f"{family}/{item_id}" for family, item_id, _ in keys]

    def last_checkpoint(self) -> Any:
        return self.committer.last_checkpoint


def _checkpoint_head(name: str) -> int | None:
    from .checkpoint import parse_checkpoint_name

    return parse_checkpoint_name(name)


@contextmanager
def open_store(root: str, **kwargs: Any) -> Iterator[Store]:
    store = Store(root, **kwargs)
    try:
        yield store
    finally:
        store.close()


__all__ = ["Committed", "Store", "StoreConfig", "open_store"]
