"""The store lock (SPEC §5): exclusive flock on ``lock`` with a bounded wait.

The lock file is never unlinked. The owner writes a holder note into it after acquiring so a
waiter that times out can name the holder.

A waiter sleeps in the kernel (a blocking flock on its own open file description, in a
helper thread, so the wait stays bounded): it takes no CPU from the holder, and it is woken
the moment the lock is free instead of at its next poll.
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
        self._held_handle: IO[bytes] = self._handle  # the description holding the flock
        self._pending: _KernelWait | None = None  # a wait given up on, still in the kernel
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
        got = False
        try:
            got = self._flock(started, wait_s if block else 0.0)
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
                portalocker.unlock(held)
            finally:
                if held is not self._handle:
                    held.close()
        self._thread_lock.release()

    def _flock(self, started: float, wait_s: float) -> bool:
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
            wait = _KernelWait(self.path)
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


class _KernelWait:
    """One bounded wait for the flock: a daemon thread blocks in flock on a fresh open file
    description. If the waiter gives up first, the thread lets the lock go as soon as it
    gets it (closing the description releases it), so an abandoned wait never holds it."""

    def __init__(self, path: str) -> None:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except OSError as exc:
            raise StoreIOError(f"open lock {path}: {exc.strerror}") from exc
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
