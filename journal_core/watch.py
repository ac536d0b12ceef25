"""Waiting for the journal to change, without polling it (docs/design.md, "Staying in
touch").

A ``ChangeWatcher`` tells waiters that the journal *may* have changed; they look for
themselves. Its whole interface is a change counter and two ways to wait on it:

    token = watcher.changes()                        # take it before looking
    ... look (read_unseen): nothing for me ...
    token = await watcher.wait_async(token, 5.0)     # back once changes() > token, or at 5 s

Taking the token before looking means no change is ever missed: one committed while the
waiter looked has already moved the counter past it. A wake-up that brings nothing (a
journal note, the waiter's own write) costs one more look.

One watcher per open store (``Backend.watcher()``), shared by every waiter of the process:
the waits of many clients of one HTTP server cost one thread and one inotify watch. Each
backend picks how it learns of changes; ``watcher_for(backend)`` takes the backend's own
(``backend.watcher()``) and falls back to polling ``journal.head_seq()``:

- the local backend: one Linux inotify watch on ``events/`` (a segment appended to:
  ``IN_MODIFY``; a roll's new segment: ``IN_CREATE``), read by one thread that sleeps in
  ``poll(2)`` until the kernel says so. Where inotify is missing (another OS, no watch
  left), or the folder went away, the same thread polls the segments' names and the active
  one's size every ``limits.watch_poll_s``;
- a PostgreSQL backend: LISTEN/NOTIFY, its own ``watcher()`` with this same interface.

Async waiters (the ``wait`` tool) are woken through their event loop
(``call_soon_threadsafe``), so a wait holds no worker thread and a cancelled wait ends at
once; synchronous waiters block on a ``threading.Condition``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import select
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, Protocol

import anyio
import anyio.to_thread

from . import limits
from .errors import StoreError
from .inotify import (
    IN_CREATE,
    IN_MODIFY,
    IN_MOVED_TO,
    IN_Q_OVERFLOW,
    WATCH_GONE,
    Inotify,
    InotifyUnavailable,
)

logger = logging.getLogger("agentjournal.watch")
WATCH_MASK = IN_MODIFY | IN_CREATE | IN_MOVED_TO
Probe = Callable[[], object]


class ChangeWatcher(Protocol):
    """What a waiter needs from a backend: a change counter and ways to wait on it."""

    mechanism: str  # "inotify", "polling", "listen/notify": what README and status show

    def changes(self) -> int:
        """A counter that grows whenever the journal may have changed."""
        ...

    def wait(self, after: int, timeout_s: float) -> int:
        """Block until ``changes() > after`` or ``timeout_s`` passed; ``changes()`` then."""
        ...

    async def wait_async(self, after: int, timeout_s: float) -> int:
        """The same, for a coroutine: holds no thread, ends at once when cancelled."""
        ...

    def waiting(self) -> int:
        """Waits in progress now."""
        ...

    def close(self) -> None: ...


class JournalWatcher:
    """One thread that learns of changes (inotify on ``folder``, else ``probe`` every
    ``poll_s``) and wakes every waiter."""

    def __init__(self, folder: str | None, probe: Probe, *,
                 relevant: Callable[[str], bool] = lambda name: True,
                 poll_s: float = limits.watch_poll_s, use_inotify: bool = True) -> None:
        self.folder = folder
        self.probe = probe
        self.relevant = relevant
        self.poll_s = poll_s
        self._changes = 0
        self._cond = threading.Condition()
        self._sync_waiters = 0
        self._futures: set[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = set()
        self._closed = threading.Event()
        self._inotify = self._open_inotify() if use_inotify and folder is not None else None
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        self.mechanism = "inotify" if self._inotify is not None else "polling"
        self._last_probe = self._probe()
        self._thread = threading.Thread(target=self._run, name="agentjournal-watch",
                                        daemon=True)
        self._thread.start()

    # -- the interface --------------------------------------------------------------------
    def changes(self) -> int:
        with self._cond:
            return self._changes

    def waiting(self) -> int:
        with self._cond:
            return self._sync_waiters + len(self._futures)

    def wait(self, after: int, timeout_s: float) -> int:
        deadline = time.monotonic() + max(0.0, timeout_s)
        with self._cond:
            self._sync_waiters += 1
            try:
                while self._changes <= after and not self._closed.is_set():
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
                return self._changes
            finally:
                self._sync_waiters -= 1

    async def wait_async(self, after: int, timeout_s: float) -> int:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not asyncio (trio): wait in a worker thread instead
            return await anyio.to_thread.run_sync(self.wait, after, timeout_s,
                                                  abandon_on_cancel=True)
        entry = (loop, loop.create_future())
        with self._cond:
            if self._changes > after or self._closed.is_set():
                return self._changes
            self._futures.add(entry)
        try:
            with anyio.move_on_after(max(0.0, timeout_s)):
                await entry[1]
        finally:
            with self._cond:
                self._futures.discard(entry)
        return self.changes()

    def close(self) -> None:
        """Stop the thread and wake every waiter (they see no change and look once more)."""
        if self._closed.is_set():
            return
        self._closed.set()
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")
        self._thread.join(limits.watch_close_s)
        self._notify()
        if self._inotify is not None:
            self._inotify.close()
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    # -- the thread -----------------------------------------------------------------------
    def _open_inotify(self) -> Inotify | None:
        assert self.folder is not None
        try:
            return Inotify(self.folder, WATCH_MASK)
        except InotifyUnavailable as exc:
            logger.info("polling %s every %ss: %s", self.folder, self.poll_s, exc)
            return None

    def _run(self) -> None:
        while not self._closed.is_set():
            if self._inotify is not None:
                self._follow_inotify(self._inotify)
            elif not self._closed.wait(self.poll_s):
                self._poll_once()

    def _follow_inotify(self, source: Inotify) -> None:
        """Sleep in poll(2) until the kernel reports events (or close() wakes us)."""
        poller = select.poll()
        poller.register(source.fileno(), select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        while not self._closed.is_set():
            poller.poll()
            events = source.read()
            if any(e.mask & (WATCH_GONE | IN_Q_OVERFLOW) for e in events):
                logger.warning("the watch on %s was lost; polling it", self.folder)
                source.close()
                self._inotify = None
                self.mechanism = "polling"
                self._notify()  # the folder moved or events were dropped: look again
                return
            if any(self.relevant(e.name) for e in events):
                self._notify()

    def _poll_once(self) -> None:
        seen = self._probe()
        if seen != self._last_probe:
            self._last_probe = seen
            self._notify()
        if self.folder is not None and self._inotify is None and os.path.isdir(self.folder):
            self._inotify = self._open_inotify()  # the folder is back: watch it again
            if self._inotify is not None:
                self.mechanism = "inotify"
                self._notify()

    def _probe(self) -> object:
        try:
            return self.probe()
        except (OSError, StoreError) as exc:  # unreadable now: a change once readable again
            return ("unreadable", str(exc))

    def _notify(self) -> None:
        with self._cond:
            self._changes += 1
            self._cond.notify_all()
            futures = list(self._futures)
        for loop, future in futures:
            with contextlib.suppress(RuntimeError):  # its loop closed: nobody waits there
                loop.call_soon_threadsafe(_resolve, future)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


# -- picking the watcher of a backend --------------------------------------------------------
_fallbacks: weakref.WeakKeyDictionary[Any, ChangeWatcher] = weakref.WeakKeyDictionary()
_fallbacks_lock = threading.Lock()


def watcher_for(backend: Any) -> ChangeWatcher:
    """The backend's own watcher, else one that polls its journal's head seq (one per
    backend, closed when the backend is collected)."""
    own = getattr(backend, "watcher", None)
    if callable(own):
        found: ChangeWatcher = own()
        return found
    with _fallbacks_lock:
        existing = _fallbacks.get(backend)
        if existing is None:
            existing = JournalWatcher(None, backend.journal.head_seq)
            _fallbacks[backend] = existing
            weakref.finalize(backend, existing.close)
        return existing


__all__ = ["ChangeWatcher", "JournalWatcher", "watcher_for"]
