"""The store lock (SPEC §5): exclusive flock on ``lock`` with a bounded wait.

The lock file is never unlinked. The owner writes a holder note into it after acquiring so a
waiter that times out can name the holder.
"""

from __future__ import annotations

import os
import threading
import time
from typing import IO, Any

import orjson
import portalocker

from . import clock, limits
from .errors import LockTimeout, StoreIOError


class StoreLock:
    """One per open store. Re-entrant within a thread; threads of a process queue up."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._thread_lock = threading.RLock()
        self._depth = 0
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            self._handle: IO[bytes] = os.fdopen(fd, "r+b", buffering=0)
        except OSError as exc:
            raise StoreIOError(f"open lock {path}: {exc.strerror}") from exc
        self.waited_s = 0.0

    def close(self) -> None:
        self._handle.close()

    @property
    def held(self) -> bool:
        return self._depth > 0

    def acquire(self, actor: str, wait_s: float | None = None, *, block: bool = True) -> bool:
        """Take the lock; False only when ``block`` is false and it is busy."""
        wait_s = limits.lock_wait_s_default if wait_s is None else wait_s
        started = time.monotonic()
        if not self._thread_lock.acquire(timeout=wait_s if block else 0):
            if not block:
                return False
            raise LockTimeout(wait_s, self.read_holder())
        if self._depth > 0:
            self._depth += 1
            return True
        try:
            got = self._flock(started, wait_s if block else 0.0)
        except BaseException:
            self._thread_lock.release()
            raise
        if not got:
            self._thread_lock.release()
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
            portalocker.unlock(self._handle)
        self._thread_lock.release()

    def _flock(self, started: float, wait_s: float) -> bool:
        pause_s = limits.lock_poll_first_s
        while True:
            try:
                portalocker.lock(self._handle, portalocker.LOCK_EX | portalocker.LOCK_NB)
                return True
            except portalocker.exceptions.LockException:
                if time.monotonic() - started >= wait_s:
                    return False
            time.sleep(pause_s)
            pause_s = min(pause_s * 2, limits.lock_poll_max_s)

    def _write_holder(self, actor: str) -> None:
        """Never raises: the lock is held by now, and an exception here would leak it."""
        try:
            note = orjson.dumps(
                {"pid": os.getpid(), "actor": actor, "since": clock.to_rfc3339(clock.utc_now())}
            )
            fd = self._handle.fileno()
            os.pwrite(fd, note, 0)
            os.ftruncate(fd, len(note))
        except (OSError, orjson.JSONEncodeError):
            return  # the note only helps a waiter name us; the lock itself is held

    def read_holder(self) -> dict[str, Any] | None:
        try:
            with open(self.path, "rb") as handle:
                note = orjson.loads(handle.read() or b"null")
        except (OSError, orjson.JSONDecodeError):
            return None
        return note if isinstance(note, dict) else None
