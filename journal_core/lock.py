"""The store lock: exclusive flock on ``lock`` with a bounded wait (docs/design.md, "Lock
and seq").

The lock file is never unlinked by the store, and never followed if it is a link. It is
checked for identity every time it is taken: if the file at ``lock`` is not the one whose
flock we hold (``git clean`` deleted it, someone replaced it), the lock is retaken on the
file that is there now -- otherwise two processes could each hold "the" lock on different
inodes. The owner writes a holder note into it after acquiring so a waiter that times out
can name the holder.

A waiter sleeps in the kernel (a blocking flock on its own open file description, in a
helper thread, so the wait stays bounded): it takes no CPU from the holder, and it is woken
the moment the lock is free instead of at its next poll.
"""

from __future__ import annotations

import errno
import os
import threading
import time
from typing import IO, Any

import orjson
import portalocker

from . import clock, limits
from .errors import LockTimeout, ReadOnlyStore, StoreIOError
from .fileio import FileIO

READ_ONLY_ERRNOS = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})
HOLDER_NOTE_BYTES = 256  # the note is padded to this width: one pwrite, no truncate


class StoreLock:
    """One per open store. Re-entrant within a thread; threads of a process queue up."""

    def __init__(self, path: str, fileio: FileIO | None = None, *, create: bool = True) -> None:
        self.path = path
        self.fileio = fileio or FileIO()
        self._thread_lock = threading.RLock()
        self._depth = 0
        self.read_only_reason: str | None = None
        self._handle: IO[bytes] | None = None
        self._probe_read_only()  # the file itself is made by the first acquire: reads make none
        self._held_handle: IO[bytes] | None = self._handle  # the description holding it
        self._pending: _KernelWait | None = None  # a wait given up on, still in the kernel
        self.waited_s = 0.0
        self.retaken = 0  # times the lock file was found replaced and retaken

    def _probe_read_only(self) -> None:
        """A store whose folder (or lock file) cannot be written is read-only; said up front,
        without creating anything."""
        folder = os.path.dirname(self.path) or "."
        if not os.path.isdir(folder):
            return  # a store still to be made: its folder comes first
        target = self.path if os.path.lexists(self.path) else folder
        if not os.access(target, os.W_OK):
            reason = os.strerror(errno.EROFS) if _read_only_mount(folder) else \
                os.strerror(errno.EACCES)
            self.read_only_reason = f"open lock {self.path}: {reason}"

    def _ensure_open(self) -> None:
        if self._handle is not None or self.read_only_reason is not None:
            return
        try:
            self._handle = self._open(create=True)
        except StoreIOError as exc:
            if not self._read_only_error(exc):
                raise
            self.read_only_reason = str(exc)
        self._held_handle = self._handle

    def _open(self, *, create: bool) -> IO[bytes]:
        fd = self.fileio.open_lock(self.path, create=create)
        return os.fdopen(fd, "r+b", buffering=0)

    @staticmethod
    def _read_only_error(exc: StoreIOError) -> bool:
        cause = exc.__cause__
        return isinstance(cause, OSError) and cause.errno in READ_ONLY_ERRNOS

    @property
    def read_only(self) -> bool:
        return self.read_only_reason is not None

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()

    @property
    def held(self) -> bool:
        return self._depth > 0

    def acquire(self, actor: str, wait_s: float | None = None, *, block: bool = True) -> bool:
        """Take the lock; False only when ``block`` is false and it is busy."""
        self._ensure_open()
        if self._handle is None:
            raise ReadOnlyStore(f"the store is read-only ({self.read_only_reason}); it can be "
                                "inspected but nothing can be written")
        wait_s = limits.lock_wait_s_default if wait_s is None else wait_s
        started = time.monotonic()
        if not self._thread_lock.acquire(timeout=wait_s if block else 0):
            if not block:
                return False
            raise LockTimeout(wait_s, self.read_holder())
        if self._depth > 0:
            self._depth += 1
            return True
        got = False
        try:
            got = self._flock_current(started, wait_s if block else 0.0)
        finally:
            if not got:  # busy, timed out, or failed: the thread lock goes too
                self._thread_lock.release()
        if not got:
            if not block:
                return False
            raise LockTimeout(wait_s, self.read_holder())
        self._depth = 1
        self.waited_s = time.monotonic() - started
        self._write_holder(actor)
        return True

    def release(self) -> None:
        self._depth -= 1
        if self._depth == 0:
            held, self._held_handle = self._held_handle, self._handle
            try:
                if held is not None:
                    portalocker.unlock(held)
            finally:
                if held is not None and held is not self._handle:
                    held.close()
        self._thread_lock.release()

    def _flock_current(self, started: float, wait_s: float) -> bool:
        """flock, then make sure the file we hold is the one at ``path`` now; if it is not,
        let it go and take the one that is (bounded: a path replaced again and again is an
        error, not a loop)."""
        for _ in range(limits.lock_retake_max):
            if not self._flock(started, wait_s):
                return False
            held = self._held_handle
            assert held is not None
            now = self.fileio.identity(self.path)
            if now is not None and now == self.fileio.fd_identity(held.fileno()):
                return True
            self._drop_stale(held)
        raise StoreIOError(f"the lock file {self.path} keeps being replaced; nothing was "
                           "written (is something deleting the store's files?)")

    def _drop_stale(self, held: IO[bytes]) -> None:
        portalocker.unlock(held)
        if held is not self._handle:
            held.close()
        if self._handle is not None:
            self._handle.close()
        self._pending = None  # it waits on the old file
        self._handle = self._open(create=True)
        self._held_handle = self._handle
        self.retaken += 1

    def _flock(self, started: float, wait_s: float) -> bool:
        assert self._handle is not None
        try:
            portalocker.lock(self._handle, portalocker.LOCK_EX | portalocker.LOCK_NB)
            self._held_handle = self._handle
            return True
        except portalocker.exceptions.LockException:
            pass
        remaining_s = wait_s - (time.monotonic() - started)
        if remaining_s <= 0:
            return False
        # A wait given up earlier and still blocked is taken over, not doubled: a holder
        # that never lets go costs one thread and one descriptor, not one per retry.
        wait = self._pending
        if wait is None or not wait.adopt():
            wait = _KernelWait(self.path, self.fileio)
        self._pending = wait
        handle = wait.wait(remaining_s)
        if handle is None:
            return False
        self._pending = None
        self._held_handle = handle
        return True

    def _write_holder(self, actor: str) -> None:
        """Never raises: the lock is held by now, and an exception here would leak it."""
        try:
            note = orjson.dumps(
                {"pid": os.getpid(), "actor": actor[:64],
                 "since": clock.to_rfc3339(clock.utc_now())}
            )
            if self._handle is not None:
                os.pwrite(self._handle.fileno(), note.ljust(HOLDER_NOTE_BYTES), 0)
        except (OSError, orjson.JSONEncodeError):
            return  # the note only helps a waiter name us; the lock itself is held

    def read_holder(self) -> dict[str, Any] | None:
        try:
            data = self.fileio.read_file(self.path) or b"null"
            note = orjson.loads(data[:HOLDER_NOTE_BYTES] or b"null")
        except (StoreIOError, orjson.JSONDecodeError):
            return None
        return note if isinstance(note, dict) else None


def _read_only_mount(folder: str) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return False


class _KernelWait:
    """One bounded wait for the flock: a daemon thread blocks in flock on a fresh open file
    description. If the waiter gives up first, the thread lets the lock go as soon as it
    gets it (closing the description releases it), so an abandoned wait never holds it."""

    def __init__(self, path: str, fileio: FileIO) -> None:
        fd = fileio.open_lock(path, create=False)
        self._handle: IO[bytes] = os.fdopen(fd, "r+b", buffering=0)
        self._mutex = threading.Lock()
        self._done = threading.Event()
        self._abandoned = False
        self._closed = False
        self._error: Exception | None = None
        threading.Thread(target=self._run, name="agentjournal-lock-wait", daemon=True).start()

    def _run(self) -> None:
        try:
            portalocker.lock(self._handle, portalocker.LOCK_EX)
        except Exception as exc:  # handed to the waiter, which raises it
            self._error = exc
        with self._mutex:
            if self._abandoned:
                self._handle.close()
                self._closed = True
                return
            self._done.set()

    def adopt(self) -> bool:
        """Wait on again after giving up; False once the thread has let the lock go."""
        with self._mutex:
            if self._closed:
                return False
            self._abandoned = False
            return True

    def wait(self, timeout_s: float) -> IO[bytes] | None:
        """The handle holding the lock, or None when ``timeout_s`` passed first."""
        self._done.wait(timeout_s)
        with self._mutex:
            if not self._done.is_set():
                self._abandoned = True
                return None
        if self._error is not None:
            self._handle.close()
            raise StoreIOError(f"lock: {self._error}") from self._error
        return self._handle
