"""``wait``: the bounded long-poll of unseen events (docs/design.md, "Staying in touch").

``wait_unseen`` answers as ``read_unseen`` does (from the actor's cursor, never moving it)
as soon as there is at least one event for the actor -- written by someone else, matching
``item_types`` -- or history it missed was archived (``gap``), and otherwise at the
timeout, with ``timed_out: true``. Between looks it sleeps on the store's change watcher
(watch.py), never on a timer: a commit by any process wakes it, and a cancelled wait ends
at once (the caller's cancel scope). ``timeout_s`` is capped at ``limits.wait_timeout_s_max``,
under the tool-call timeouts of common clients.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread

from . import limits
from .errors import InvalidArgument
from .watch import watcher_for

if TYPE_CHECKING:
    from .store import Store

Progress = Callable[[float, float], Awaitable[None]]  # (seconds waited, timeout_s)


def wait_timeout(timeout_s: float | None) -> float:
    """The timeout a wait uses: the default when not given, never above the cap."""
    if timeout_s is None:
        return limits.wait_timeout_s_default
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, int | float) or timeout_s < 0:
        raise InvalidArgument("timeout_s is a number of seconds, 0 or more")
    return float(min(timeout_s, limits.wait_timeout_s_max))


async def wait_unseen(store: Store, actor: str, timeout_s: float | None = None,
                      item_types: list[str] | None = None, *,
                      limit: int = limits.unseen_page_default,
                      progress: Progress | None = None) -> dict[str, Any]:
    """read_unseen's answer plus ``timed_out``, once there is something to see or the
    timeout passed. ``progress`` is awaited when the wait starts and every
    ``limits.wait_progress_s`` after."""
    timeout = wait_timeout(timeout_s)
    watcher = watcher_for(store.backend)
    started = anyio.current_time()
    deadline = started + timeout
    next_progress = started
    while True:
        token = watcher.changes()  # before looking: a change while we look wakes us at once
        found: dict[str, Any] = await anyio.to_thread.run_sync(
            lambda: store.read_unseen(actor, limit, item_types))
        now = anyio.current_time()
        if found["events"] or found["gap"] or now >= deadline:
            found["timed_out"] = not found["events"] and not found["gap"]
            return found
        if progress is not None and now >= next_progress:
            await progress(round(now - started, 3), timeout)
            next_progress = now + limits.wait_progress_s
        wake_at = min(deadline, next_progress) if progress is not None else deadline
        await watcher.wait_async(token, wake_at - now)


__all__ = ["wait_timeout", "wait_unseen"]
