"""A backend: everything a store keeps, behind its interfaces (docs/design.md, "Backends").

``Backend`` bundles the journal, blobs, checkpoints, cursors and (for a local store) the
projection files. ``LocalBackend`` is the embedded default: one folder (the store root)
holding

    store.json        store_id, format, created, layout (track, the tracked face)
    lock              the store lock (never unlinked, never followed if a link)
    events/           journal segments, meta.json, projections.lock,
                      checkpoints/, blobs/, archive/, quarantine/
    state/            projections (unless they are tracked in a working tree)
    cursors/          per-actor cursors

Every file operation goes through one ``FileIO``, confined to the store's folders: no
link inside them is ever followed.
"""

from __future__ import annotations

import os
import secrets
import threading
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from . import clock, limits
from .blob import BlobStore
from .checkpoint import CheckpointStore, LocalCheckpoints
from .cursor import CursorStore, LocalCursors
from .errors import ReadOnlyStore, StoreCorrupt, StoreNotFound
from .fileio import FileIO
from .journal import FsyncMode, Journal
from .layout import GITIGNORE_FACE, STORE_INFO, Location
from .local_journal import LocalJournal
from .projection import Projections, Projector
from .segment import list_segments, parse_segment_name
from .watch import ChangeWatcher, JournalWatcher

INFO_OPTIONS = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS


class Blobs(Protocol):
    """Content-addressed oversized payloads (local: ``events/blobs/``)."""

    def put(self, data: bytes) -> dict[str, Any]: ...
    def get(self, ref: dict[str, Any]) -> bytes: ...
    def get_payload(self, ref: dict[str, Any]) -> dict[str, Any]: ...
    def exists(self, ref: dict[str, Any]) -> bool: ...
    def archive(self, sha256: str) -> None: ...
    def remove(self, sha256: str) -> None: ...
    def all_hashes(self) -> list[str]: ...


class Backend(Protocol):
    """Everything a store keeps. The ``Store`` names nothing but these."""

    name: str  # "local", "postgresql"
    where: str  # a path, or a URL without its secrets, for people
    read_only: bool
    read_only_reason: str | None

    # Read-only members, so that a backend may hold its own concrete types.
    @property
    def journal(self) -> Journal: ...
    @property
    def blobs(self) -> Blobs: ...
    @property
    def checkpoints(self) -> CheckpointStore: ...
    @property
    def cursors(self) -> CursorStore: ...
    @property
    def projections(self) -> Projections | None:
        """The files people read; None when there are none."""
        ...
    @property
    def projector(self) -> Projector | None: ...

    def store_info(self) -> dict[str, Any] | None:
        """store_id, format, created (None: no store here yet)."""
        ...

    def prepare(self) -> None:
        """What must exist before a new store's lock can be taken."""
        ...

    def create(self, info: dict[str, Any]) -> None:
        """Record the store's info, last: from then on, the store exists."""
        ...

    def close(self) -> None: ...


@dataclass
class LocalConfig:
    fsync: FsyncMode = "always"
    segment_bytes_max: int = limits.segment_bytes_max_default
    projections: str = "sync"  # "sync" | "background" | "off"


class LocalBackend:
    name = "local"

    def __init__(self, location: Location, fileio: FileIO, config: LocalConfig) -> None:
        self.location = location
        self.root = location.root
        self.where = self.root
        self.fileio = fileio
        fileio.confine(self.root)
        if location.face is not None:
            fileio.confine(location.face)
        self.events_dir = os.path.join(self.root, "events")
        self.info_path = os.path.join(self.root, STORE_INFO)
        self.journal = LocalJournal(self.events_dir, os.path.join(self.root, "lock"), fileio,
                                    config.fsync, config.segment_bytes_max)
        self.read_only = self.journal.read_only
        self.read_only_reason = self.journal.lock.read_only_reason
        self.blobs = BlobStore(os.path.join(self.events_dir, "blobs"), fileio)
        mirror = (os.path.join(location.face, "checkpoints")
                  if location.face is not None and location.track != "none" else None)
        self.checkpoints_dir = os.path.join(self.events_dir, "checkpoints")
        self.checkpoints = LocalCheckpoints(
            self.checkpoints_dir, fileio, os.path.join(self.events_dir, "archive", "checkpoints"),
            mirror)
        self.cursors = LocalCursors(os.path.join(self.root, "cursors"), fileio)
        state_dir = (os.path.join(location.face, "state")
                     if location.face is not None and location.track == "state"
                     else os.path.join(self.root, "state"))
        self.projections: Projections | None = Projections(state_dir, fileio)
        self.meta_path = os.path.join(self.events_dir, "meta.json")
        mode = "off" if self.read_only else config.projections
        self.projector: Projector | None = Projector(
            self.projections, self.meta_path, os.path.join(self.events_dir, "projections.lock"),
            fileio, "", mode,
            git_index=location.git_index if location.track == "state" else None)
        self._watcher: JournalWatcher | None = None
        self._watcher_lock = threading.Lock()

    def watcher(self) -> ChangeWatcher:
        """This store's change watcher (watch.py: inotify on events/), made on first use
        and shared by every waiter of the process."""
        with self._watcher_lock:
            if self._watcher is None:
                self._watcher = JournalWatcher(
                    self.events_dir, self._journal_probe,
                    relevant=lambda name: parse_segment_name(name) is not None)
            return self._watcher

    def _journal_probe(self) -> object:
        """What polling compares when inotify is missing: the segments and the active
        one's size."""
        segments = list_segments(self.fileio.listdir(self.events_dir))
        last = self.journal.path(segments[-1]) if segments else ""
        return segments, self.fileio.size(last) if last else -1

    def store_info(self) -> dict[str, Any] | None:
        data = self.fileio.read_file(self.info_path)
        if data is None:
            return None
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise StoreCorrupt(f"{self.info_path} is unreadable: {exc}") from exc
        if not isinstance(doc, dict) or not isinstance(doc.get("store_id"), str):
            raise StoreCorrupt(f"{self.info_path} does not name a store_id")
        return doc

    def prepare(self) -> None:
        """The folders of a new store (before its lock can be taken)."""
        if self.read_only:
            raise ReadOnlyStore(f"{self.root} is read-only; a store cannot be created there")
        for sub in ("events", "state", "cursors"):
            self.fileio.mkdir(os.path.join(self.root, sub))
        if self.projections is not None:
            self.projections.ensure_dirs()

    def create(self, info: dict[str, Any]) -> None:
        """Write store.json last: its presence says the store is initialized."""
        self.fileio.write_atomic(self.info_path, _dump(info))
        face = self.location.face
        if face is not None and self.location.track != "none":
            self.fileio.mkdir(face)
            pointer = {"store_id": info["store_id"], "format": info["format"],
                       "journal": "git", "track": self.location.track}
            self.fileio.write_atomic(os.path.join(face, STORE_INFO), _dump(pointer))
            ignore = os.path.join(face, ".gitignore")
            if self.fileio.size(ignore) < 0:
                self.fileio.write_atomic(ignore, GITIGNORE_FACE.encode())

    def close(self) -> None:
        if self._watcher is not None:
            self._watcher.close()
        if self.projector is not None:
            self.projector.close()
        self.journal.close()


def new_store_info(location: Location | None) -> dict[str, Any]:
    info: dict[str, Any] = {
        "store_id": "st_" + secrets.token_hex(8), "format": limits.STORE_FORMAT_VERSION,
        "created": clock.to_rfc3339(clock.utc_now()),
    }
    if location is not None and location.kind == "git":
        info["track"] = location.track
        if location.worktree is not None:
            info["worktree"] = location.worktree
    return info


def adopt_face(location: Location, fileio: FileIO) -> dict[str, Any] | None:
    """A clone's tracked face names the store it belongs to: the new root adopts its id."""
    if location.face is None:
        return None
    data = fileio.read_file(os.path.join(location.face, STORE_INFO))
    if data is None:
        return None
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("store_id"), str):
        return None
    return doc


def _dump(doc: dict[str, Any]) -> bytes:
    return orjson.dumps(doc, option=INFO_OPTIONS) + b"\n"


def missing_store(root: str) -> StoreNotFound:
    return StoreNotFound(f"no agentjournal store at {root} (run `agentjournal init`)")
