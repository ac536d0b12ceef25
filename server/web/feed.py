"""The live feed: server-sent events (``text/event-stream``) of the journal's new records.

Each open stream is one task that follows the journal from the seq it was given
(``after``, or the browser's ``Last-Event-ID`` when it reconnects) and sends every batch of
new events that pass the stream's filter as one ``events`` message: ``id`` is the last seq
read, ``data`` a JSON list of ``{seq, html}`` (the row, rendered by the same template as
the page, so the browser only inserts it). Between batches it waits in ``wait_for_news``,
the one place that knows how the journal is watched: it sleeps on the store's change
watcher (the one `wait` uses) and looks at the head when woken. A stream ends after
``FEED_STREAM_S_MAX``; the browser reconnects at once and resumes from its last id, so
nothing is missed and no task runs forever.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse

from journal_core import InvalidArgument, Store, events
from journal_core.vocabulary import ALL_ACTIONS
from journal_core.watch import watcher_for

from .limits import (
    FEED_BATCH_MAX,
    FEED_KEEPALIVE_S,
    FEED_POLL_S,
    FEED_RETRY_MS,
    FEED_STREAM_S_MAX,
)
from .render import Dashboard, dashboard

STREAM_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


async def wait_for_news(store: Store, seq: int, timeout_s: float) -> bool:
    """Wait until the journal's head passes ``seq`` or ``timeout_s`` elapses; True when
    there is news. It sleeps on the store's change watcher (inotify locally), holding no
    thread, and looks at the head after each wake-up (and at least every FEED_POLL_S, in
    case a wake-up was for a change it cannot see yet)."""
    watcher = watcher_for(store.backend)
    deadline = time.monotonic() + timeout_s
    while True:
        token = watcher.changes()
        if await run_in_threadpool(_head_after, store, seq):
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        await watcher.wait_async(token, min(FEED_POLL_S, left))


def _head_after(store: Store, seq: int) -> bool:
    store.refresh()
    return store.head_seq > seq


def stream_page(request: Request) -> Response:
    """``GET /feed/stream?after=SEQ&actor=&family=&action=``."""
    d = dashboard(request)
    where, after = _stream_arguments(request)
    if d.streams_open >= d.streams_max:
        return PlainTextResponse(f"{d.streams_max} live feeds are open on this server; "
                                 "close one, or reload in a moment", status_code=503,
                                 headers={"Retry-After": "5"})
    return StreamingResponse(_stream(d, where, after), media_type="text/event-stream",
                             headers=STREAM_HEADERS)


def _stream_arguments(request: Request) -> tuple[events.EventFilter, int]:
    params = request.query_params
    text = request.headers.get("last-event-id") or params.get("after", "")
    if not text.isdigit():
        raise InvalidArgument("after is the seq to follow from (a whole number), e.g. "
                              "/feed/stream?after=0")
    family = params.get("family") or None
    if family is not None and family not in events.EVENT_FAMILIES:
        raise InvalidArgument(f"family is one of {', '.join(events.EVENT_FAMILIES)}")
    action = params.get("action") or None
    if action is not None and action not in ALL_ACTIONS:
        raise InvalidArgument(f"unknown action {action[:40]!r}")
    return events.EventFilter(params.get("actor") or None, family, action), int(text)


async def _stream(d: Dashboard, where: events.EventFilter, after: int) -> AsyncIterator[bytes]:
    d.streams_open += 1
    try:
        yield f"retry: {FEED_RETRY_MS}\n\n".encode()
        ends = time.monotonic() + FEED_STREAM_S_MAX
        last = after
        while time.monotonic() < ends:
            found, last_read = await run_in_threadpool(
                events.events_after, d.store, last, where, FEED_BATCH_MAX)
            if last_read > last:
                last = last_read
                if found:
                    yield message(d, found, last)
                continue  # a full batch may have more behind it: read on before waiting
            waited = min(FEED_KEEPALIVE_S, max(0.0, ends - time.monotonic()))
            if not await wait_for_news(d.store, last, waited):
                yield b": keepalive\n\n"
    finally:
        d.streams_open -= 1


def message(d: Dashboard, found: list[dict[str, object]], last: int) -> bytes:
    row = d.env.get_template("_event_row.html")
    data = [{"seq": event["seq"], "html": row.render(event=event)} for event in found]
    return b"id: %d\nevent: events\ndata: %s\n\n" % (last, orjson.dumps(data))


__all__ = ["stream_page", "wait_for_news"]
