"""The replica: this process's copy of the journal -- the replayed ``State`` and the
``Follower`` that keeps it current (docs/design.md, "Reading").

Reads are served from here and never wait for the store lock: ``refresh`` polls the journal
without it. Two small in-process locks keep the copy consistent:

- ``follower_mutex`` serializes use of the follower (a poll, or the write path moving it past
  its own append). While the write path's bytes are on their way to the disk it sets a stop
  mark, so a concurrent poll reads up to the start of that append and no further: a group is
  never applied twice, and reads do not wait for the fsync.
- ``state_lock`` guards the state for the short moments groups are applied and views taken.

Listeners hear of every applied group (the projector, waiters).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from . import limits
from .errors import StoreError
from .journal import Follower, Journal, TxnGroup
from .replay import State

logger = logging.getLogger("agentjournal.replica")
Listener = Callable[[list[TxnGroup], bool], None]  # (groups, written by this process)


class Replica:
    def __init__(self, journal: Journal, state: State, follower: Follower) -> None:
        self.journal = journal
        self.state = state
        self.follower = follower
        self.follower_mutex = threading.Lock()
        self.state_lock = threading.RLock()
        self.listeners: list[Listener] = []
        self.needs_reload: str | None = None  # why the state must be rebuilt, if it must

    # -- following -----------------------------------------------------------------------
    def refresh(self, max_records: int | None = limits.read_refresh_records_max) -> bool:
        """Apply what others committed since the last poll; True when the state could not
        reach the end of the journal (a bounded catch-up left some for later: stale)."""
        with self.follower_mutex:
            groups = self.follower.poll(max_records)
            self.apply(groups, own=False)
            return not self.follower.caught_up()

    def apply(self, groups: list[TxnGroup], *, own: bool) -> None:
        """Apply groups (caller holds ``follower_mutex``)."""
        if not groups:
            return
        with self.state_lock:
            for group in groups:
                self.state.apply_group(group, trusted=own)
        for listener in self.listeners:
            try:
                listener(groups, own)
            except (StoreError, OSError):  # a cache's listener: never fails a commit
                logger.exception("a listener of applied groups failed")

    def swap(self, state: State, follower: Follower) -> None:
        """Replace the state with a rebuilt one (``reload``)."""
        with self.follower_mutex, self.state_lock:
            old = self.follower
            self.state, self.follower = state, follower
            self.needs_reload = None
        close = getattr(old, "close", None)
        if close is not None:
            close()

    def close(self) -> None:
        close = getattr(self.follower, "close", None)
        if close is not None:
            close()

    @property
    def head_seq(self) -> int:
        return self.state.head_seq

    def guarded(self) -> tuple[State, Any]:
        """The state, caught up, and the lock that guards it (for the projector)."""
        try:
            self.refresh(None)
        except StoreError as exc:
            logger.warning("the journal could not be read: %s", exc)
        return self.state, self.state_lock
