"""Projections (docs/design.md, "Projections"): ``state/<family>/<item_id>.json``, the
files people read and diff, written from the journal -- caches, never the truth.

A projection is pretty JSON with sorted keys: the entity's payload, its rev and the store
that wrote that rev (no local seq, so stores that converged hold byte-identical
projections). Nothing reads them to answer a call: reads come from the in-memory state.

The ``Projector`` writes them *after* the journal's fsync and the unlock, off the caller's
path: every group a process applies (its own or another writer's) queues the entities it
changed; the projector writes them under its own flock (``events/projections.lock``, never
the store lock), then moves the watermarks in ``events/meta.json``. A write that fails (a
full disk, a planted link) is a cache miss: logged, the watermark left behind, healed by the
next projector. The never-regress guard: a projection holding a higher ``(entity_rev,
origin)`` is never overwritten, nor an equal one unless the change asks for it (a renewal,
a redaction).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
import portalocker

from . import clock, limits
from .errors import StoreError, SymlinkRefused
from .fileio import FileIO
from .meta import Meta, load_meta
from .replay import EntityState, State
from .vocabulary import FAMILIES

PROJECTION_OPTIONS = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS
logger = logging.getLogger("agentjournal.projections")


@dataclass
class ProjectionRead:
    status: str  # "ok" | "missing" | "unreadable" | "link"
    doc: dict[str, Any] | None = None

    @property
    def rev(self) -> int | None:
        return self.doc["entity_rev"] if self.doc is not None else None


class Projections:
    """The projection files of one folder."""

    def __init__(self, state_dir: str, fileio: FileIO) -> None:
        self.state_dir = state_dir
        self.fileio = fileio
        self.divergent = 0  # projections found ahead of the journal (doctor error)
        self.unreadable = 0
        self.refused = 0  # writes refused (a link, a full disk): cache misses
        self.written = 0
        self.local_origin = ""  # this store's id: the origin of its own records

    def ensure_dirs(self) -> None:
        for family in FAMILIES:
            self.fileio.mkdir(os.path.join(self.state_dir, family))

    def path(self, family: str, item_id: str) -> str:
        return os.path.join(self.state_dir, family, f"{item_id}.json")

    def ids(self, family: str) -> list[str]:
        names = self.fileio.listdir(os.path.join(self.state_dir, family))
        return sorted(name[:-5] for name in names if name.endswith(".json"))

    def read(self, family: str, item_id: str) -> ProjectionRead:
        path = self.path(family, item_id)
        if self.fileio.is_link(path):
            return ProjectionRead("link")
        try:
            data = self.fileio.read_file(path)
        except SymlinkRefused:
            return ProjectionRead("link")
        if data is None:
            return ProjectionRead("missing")
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError:
            return ProjectionRead("unreadable")
        if not isinstance(doc, dict) or not isinstance(doc.get("entity_rev"), int):
            return ProjectionRead("unreadable")
        return ProjectionRead("ok", doc)

    def document(self, entity: EntityState, payload: dict[str, Any]) -> bytes:
        doc = {
            "entity_rev": entity.rev,
            "item_id": entity.item_id,
            "item_type": entity.family,
            "origin": entity.origin or self.local_origin,
            "payload": payload,
        }
        return orjson.dumps(doc, option=PROJECTION_OPTIONS) + b"\n"

    def write(self, entity: EntityState, payload: dict[str, Any], *, equal_ok: bool) -> bool:
        """Write ``payload`` at ``entity.rev`` unless that would regress the file."""
        found = self.read(entity.family, entity.item_id)
        origin = entity.origin or self.local_origin
        if found.status == "link":
            self.refused += 1
            return False  # never written through; doctor reports the link
        if found.status == "unreadable":
            # Nothing to defend: it has no rev. Overwritten (not unlinked) from the journal.
            self.unreadable += 1
        elif found.doc is not None:
            theirs = (found.doc["entity_rev"], str(found.doc.get("origin", "")))
            if theirs > (entity.rev, origin):
                self.divergent += 1
                return False
            if theirs == (entity.rev, origin) and (
                    not equal_ok or found.doc.get("payload") == payload):
                return False
        self.fileio.write_in_place(self.path(entity.family, entity.item_id),
                                   self.document(entity, payload))
        self.written += 1
        return True

    def remove(self, tombstone: EntityState) -> bool:
        """Apply a delete: unlink the projection unless it holds a newer rev."""
        found = self.read(tombstone.family, tombstone.item_id)
        if found.status in ("missing", "link"):
            return False
        if found.status == "unreadable":
            self.unreadable += 1
            return False
        if found.rev is not None and found.rev > tombstone.rev:
            self.divergent += 1
            return False
        self.fileio.unlink(self.path(tombstone.family, tombstone.item_id))
        return True


Key = tuple[str, str]
StateView = Callable[[], tuple[State, Any]]  # the state (caught up) and the lock guarding it
Progress = Callable[[str, int, int], None]  # (what, done, total)


class Projector:
    """Writes projections and watermarks after the journal, off the caller's path."""

    def __init__(self, projections: Projections, meta_path: str, lock_path: str,
                 fileio: FileIO, store_id: str, mode: str = "sync",
                 git_index: str | None = None) -> None:
        self.projections = projections
        self.meta_path = meta_path
        self.lock_path = lock_path
        self.fileio = fileio
        self.store_id = store_id
        self.mode = mode  # "sync" (the caller's thread, after the unlock) | "background" | "off"
        self.git_index = git_index
        self.boot_id = clock.boot_id()
        self._queue: dict[Key, bool] = {}  # key -> write at an equal rev too
        self._queue_lock = threading.Lock()
        self._wake = threading.Condition(self._queue_lock)
        self._idle = threading.Event()
        self._idle.set()
        self._state: StateView | None = None
        self._thread: threading.Thread | None = None
        self._closing = False
        self._full_check = True  # once per process: entities past the watermark
        self._missing = False  # state/ or a family folder was missing at the last run
        self.failures = 0

    def attach(self, state: StateView) -> None:
        self._state = state
        if self.mode == "background" and self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="agentjournal-projector",
                                            daemon=True)
            self._thread.start()

    # -- queueing -------------------------------------------------------------------------
    def changed(self, keys: list[tuple[str, str, bool]]) -> None:
        """Entities a group changed (family, id, rewrite at an equal rev)."""
        if self.mode == "off" or not keys:
            return
        with self._queue_lock:
            for family, item_id, force in keys:
                self._queue[(family, item_id)] = self._queue.get((family, item_id), False) or force
            self._idle.clear()
            self._wake.notify()

    def after_commit(self) -> None:
        """Called after the unlock: in sync mode, write now."""
        if self.mode == "sync":
            self.run_once(block=True)

    def flush(self, timeout_s: float = limits.projector_flush_s) -> bool:
        """Wait until every queued projection is written (or ``timeout_s`` passes)."""
        if self.mode == "sync":
            self.run_once(block=True)
            return True
        if self.mode == "off":
            return True
        with self._queue_lock:
            self._wake.notify()
        return self._idle.wait(timeout_s)

    def close(self) -> None:
        if self._thread is not None:
            self.flush()
            with self._queue_lock:
                self._closing = True
                self._wake.notify()
            self._thread.join(limits.projector_flush_s)

    def _loop(self) -> None:
        while True:
            with self._queue_lock:
                while not self._queue and not self._full_check and not self._closing:
                    self._idle.set()
                    self._wake.wait()
                if self._closing and not self._queue:
                    self._idle.set()
                    return
            if not self.run_once(block=False):
                self._sleep(limits.projector_retry_s)

    def _sleep(self, seconds: float) -> None:
        with self._queue_lock:
            if not self._closing:
                self._wake.wait(seconds)

    # -- writing ------------------------------------------------------------------------------
    def run_once(self, *, block: bool, progress: Progress | None = None) -> bool:
        """Write what is queued under the projection lock; False when it was busy.
        ``progress("rebuild", done, total)`` as the entities are written."""
        if self._state is None or self.mode == "off":
            return True
        handle = self._lock(block)
        if handle is None:
            return False
        try:
            self._write_queued(progress)
        except (StoreError, OSError) as exc:
            # A cache miss: the watermarks stay behind, and the next run looks again at every
            # entity past them (what this run had taken from the queue included).
            self.failures += 1
            self._full_check = True
            logger.warning("projections not written (a cache miss, healed later): %s", exc)
        finally:
            portalocker.unlock(handle)
            handle.close()
        return True

    def _lock(self, block: bool) -> Any:
        try:
            fd = self.fileio.open_lock(self.lock_path, create=True)
        except StoreError as exc:
            logger.warning("projections: %s", exc)
            return None
        handle = os.fdopen(fd, "r+b", buffering=0)
        try:
            flags = portalocker.LOCK_EX | (0 if block else portalocker.LOCK_NB)
            portalocker.lock(handle, flags)
        except portalocker.exceptions.LockException:
            handle.close()
            return None
        return handle

    def _write_queued(self, progress: Progress | None = None) -> None:
        assert self._state is not None
        state, guard = self._state()
        meta = load_meta(self.fileio, self.meta_path) or Meta(self.store_id)
        with self._queue_lock:
            queued, self._queue = self._queue, {}
        with guard:
            head = state.head_seq
            work = self._plan_work(state, meta, queued)
        if not work and all(meta.applied.get(f, 0) >= head for f in FAMILIES):
            return
        if work and self._missing:
            self.projections.ensure_dirs()
        for done, (entity, payload, force) in enumerate(work, 1):
            self._project(entity, payload, force)
            if progress is not None and (done % limits.progress_every_records == 0
                                         or done == len(work)):
                progress("rebuild", done, len(work))
        meta.applied = {family: max(meta.applied.get(family, 0), head) for family in FAMILIES}
        meta.boot_id = self.boot_id
        meta.git_index = self._git_index_stamp()
        self.fileio.write_in_place(self.meta_path, meta.to_bytes())

    def _plan_work(self, state: State, meta: Meta, queued: dict[Key, bool],
                   ) -> list[tuple[EntityState, dict[str, Any] | None, bool]]:
        """What to write: the queued entities not yet covered by a watermark; when this
        process starts, every entity past the watermarks; after a reboot or after git
        touched the index, every entity (each file is read, and rewritten only when it is
        missing, torn, behind or different)."""
        self._missing = self._folders_missing()
        everything = meta.boot_id != self.boot_id or self._missing or (
            self.git_index is not None and meta.git_index != self._git_index_stamp())
        started, self._full_check = self._full_check, False
        work = []
        for family in FAMILIES:
            applied = meta.applied.get(family, 0)
            if everything or started:
                for entity in state.families[family].values():
                    if everything or entity.changed_seq > applied:
                        work.append((entity, entity.payload, False))
                continue
            for (queued_family, item_id), force in queued.items():
                if queued_family != family:
                    continue
                queued_entity = state.entity(family, item_id)
                if queued_entity is not None and (force or queued_entity.changed_seq > applied):
                    work.append((queued_entity, queued_entity.payload, force))
        return work

    def _project(self, entity: EntityState, payload: dict[str, Any] | None, force: bool) -> None:
        if entity.deleted:
            self.projections.remove(entity)
            return
        if payload is None:
            return  # content missing (a blob we cannot read): nothing true to write
        try:
            self.projections.write(entity, payload, equal_ok=True)
        except SymlinkRefused as exc:
            self.projections.refused += 1
            logger.warning("projection not written: %s", exc)

    def _folders_missing(self) -> bool:
        """state/ or a family's folder deleted (by hand, by git): rewrite everything."""
        present = set(self.fileio.listdir(self.projections.state_dir))
        return any(family not in present for family in FAMILIES)

    def _git_index_stamp(self) -> list[int] | None:
        if self.git_index is None:
            return None
        try:
            found = os.stat(self.git_index)
        except OSError:
            return None
        return [found.st_mtime_ns, found.st_size, found.st_ino]

    def request_full_check(self) -> None:
        with self._queue_lock:
            self._full_check = True
            self._idle.clear()
            self._wake.notify()
