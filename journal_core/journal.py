"""The journal behind one narrow interface (SPEC §1): lock, append a batch, read, tail.

``LocalJournal`` is the embedded default: segment files in ``events/``. Everything above it
(reader, replay, projections, cursors, verbs, MCP) talks only to the ``Journal`` protocol, so
another backend can replace it without touching them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Literal, Protocol

from . import limits
from .errors import StoreCorrupt
from .fileio import FileIO
from .lock import StoreLock
from .segment import list_segments, segment_name

FsyncMode = Literal["always", "never"]


class Journal(Protocol):
    """What the store needs from a journal backend."""

    def locked(
        self, actor: str, wait_s: float | None = None,
    ) -> AbstractContextManager[None]: ...
    def try_lock(self, actor: str) -> bool: ...
    def unlock(self) -> None: ...
    def lock_held(self) -> bool: ...
    def segments(self) -> list[int]: ...
    def read(self, segment: int, offset: int) -> bytes: ...
    def size(self, segment: int) -> int: ...
    def append(self, segment: int, data: bytes) -> None: ...
    def create_segment(self, first_seq: int) -> None: ...


class LocalJournal:
    """Segment files on the local file system, guarded by one flock."""

    def __init__(
        self,
        events_dir: str,
        lock_path: str,
        fileio: FileIO,
        fsync: FsyncMode = "always",
    ) -> None:
        self.events_dir = events_dir
        self.fileio = fileio
        self.fsync_mode = fsync
        self.lock = StoreLock(lock_path)
        self._append_fd: int | None = None
        self._append_segment: int | None = None

    def close(self) -> None:
        self._close_append()
        self.lock.close()

    # -- lock -------------------------------------------------------------------------
    @contextmanager
    def locked(self, actor: str, wait_s: float | None = None) -> Iterator[None]:
        self.lock.acquire(actor, wait_s)
        try:
            yield
        finally:
            self.lock.release()

    def try_lock(self, actor: str) -> bool:
        return self.lock.acquire(actor, block=False)

    def unlock(self) -> None:
        self.lock.release()

    def lock_held(self) -> bool:
        return self.lock.held

    # -- reading ----------------------------------------------------------------------
    def path(self, segment: int) -> str:
        return os.path.join(self.events_dir, segment_name(segment))

    def segments(self) -> list[int]:
        return list_segments(self.fileio.listdir(self.events_dir))

    def read(self, segment: int, offset: int) -> bytes:
        data = self.fileio.read_range(self.path(segment), offset)
        if not data and self.fileio.size(self.path(segment)) < 0:
            # archived by gc after we started reading it: finish it from archive/
            data = self.fileio.read_range(self.archive_path(segment), offset)
        return data

    def archive_path(self, segment: int) -> str:
        return os.path.join(self.events_dir, "archive", segment_name(segment))

    def size(self, segment: int) -> int:
        return self.fileio.size(self.path(segment))

    # -- writing (lock held) ------------------------------------------------------------
    def append(self, segment: int, data: bytes) -> None:
        """ONE os.write of the whole batch to the O_APPEND fd, then fsync (SPEC §6.1)."""
        if not self.lock.held:
            raise StoreCorrupt("append without the store lock")  # a bug, never a user error
        fd = self._fd_for(segment)
        path = self.path(segment)
        done = False
        try:
            self.fileio.write(fd, data, path)
            if self.fsync_mode == "always":
                self.fileio.fsync(fd, path)
            done = True
        finally:
            if not done:
                # The fd may be in an unknown state after a failed write: reopen next time.
                self._close_append()

    def create_segment(self, first_seq: int) -> None:
        self.fileio.create_exclusive(self.path(first_seq))
        self.fileio.fsync_dir(self.events_dir)

    def _fd_for(self, segment: int) -> int:
        if self._append_segment != segment or self._append_fd is None:
            self._close_append()
            self._append_fd = self.fileio.open_append(self.path(segment))
            self._append_segment = segment
        return self._append_fd

    def _close_append(self) -> None:
        if self._append_fd is not None:
            self.fileio.close(self._append_fd)
        self._append_fd = None
        self._append_segment = None


def default_segment_bytes_max() -> int:
    return limits.segment_bytes_max_default
