"""The dashboard's routes, the one place where errors become pages, and the app itself.

    /                               board (active plans, steps by column)   ?page=
    /claims                         live, expiring, lapsed, taken-over claims   ?page=
    /feed                           events, newest first   ?actor= &family= &action= &before=
    /feed/stream                    the same, live (server-sent events)   ?after= + filters
    /entity/{family}/{id}           one entity and its history   ?before=
    /memory                         memory items and superseded chains   ?kind= &status= &after=
    /messages, /handoffs            messages; handoffs by status   ?after= (&status=)
    /search                         ?q= &family=
    /health                         head seq, segments, checkpoint, counters, verdict
    /login, /logout, /name          the session (token, name)
    POST /messages, /handoffs, /claims/{id}/release    a person acting
    /static/...                     the stylesheet, the script, the icon (served from the package)
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from journal_core import (
    Conflict,
    InvalidArgument,
    LockTimeout,
    NotFound,
    ReadOnlyStore,
    Store,
    StoreError,
    UserError,
)

from . import actions, feed, views
from .auth import FormRefused, SessionGate, Sessions, safe_next
from .render import STATIC_DIR, Dashboard, dashboard

logger = logging.getLogger("agentjournal.web")
SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'self'; img-src 'self' data:; "
     b"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
]
STATUS_OF: tuple[tuple[type[Exception], int, str], ...] = (
    (NotFound, 404, "Not found"),
    (Conflict, 409, "Refused"),
    (UserError, 400, "Cannot do that"),
    (LockTimeout, 503, "The store is busy"),
    (ReadOnlyStore, 409, "The store is read-only"),
    (FormRefused, 403, "Form refused"),
    (actions.FormTooLarge, 413, "Form too large"),
)
HINTS = {
    404: "Find ids on the board, in the feed or with search.",
    503: "Nothing was written; try again in a moment.",
}

ROUTES = [
    Route("/", views.board_page),
    Route("/claims", views.claims_page),
    Route("/claims/{claim_id}/release", actions.release_claim, methods=["POST"]),
    Route("/feed", views.feed_page),
    Route("/feed/stream", feed.stream_page),
    Route("/entity/{family}/{item_id}", views.entity_page),
    Route("/memory", views.memory_page),
    Route("/messages", views.messages_page),
    Route("/messages", actions.post_message, methods=["POST"]),
    Route("/handoffs", views.handoffs_page),
    Route("/handoffs", actions.post_handoff, methods=["POST"]),
    Route("/search", views.search_page),
    Route("/health", views.health_page),
    Route("/login", actions.login_form),
    Route("/login", actions.login, methods=["POST"]),
    Route("/logout", actions.logout, methods=["POST"]),
    Route("/name", actions.set_name, methods=["POST"]),
    Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
]


def error_page(request: Request, exc: Exception) -> Response:
    """A store error (or a refused form) as a page that says what went wrong and what to do."""
    status, title = next(((status, title) for kind, status, title in STATUS_OF
                          if isinstance(exc, kind)), (500, "The store failed"))
    if status == 500:
        logger.error("dashboard: %s failed", request.url.path, exc_info=exc)
    return dashboard(request).page(request, "error.html", status_code=status, active=None,
                                   title=title, message=str(exc), hint=HINTS.get(status),
                                   back=back_to(request))


def http_error_page(request: Request, exc: Exception) -> Response:
    status = int(getattr(exc, "status_code", 500))
    return dashboard(request).page(
        request, "error.html", status_code=status, active=None,
        title="Not found" if status == 404 else "Cannot do that",
        message=str(getattr(exc, "detail", exc)), hint=HINTS.get(status), back="/")


def back_to(request: Request) -> str:
    """The page the request came from, when it is one of ours (else the board)."""
    referer = urlsplit(request.headers.get("referer", ""))
    if referer.netloc != request.headers.get("host"):
        return "/"
    return safe_next(referer.path + (f"?{referer.query}" if referer.query else ""))


class SecurityHeaders:
    """ASGI middleware: every answer forbids framing, inline scripts and sniffing."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, sending if scope["type"] == "http" else send)


def dashboard_app(store: Store, token: str | None = None) -> ASGIApp:
    """The dashboard of an open store; with ``token``, behind a login form that asks for it."""
    sessions = Sessions(token)
    app = Starlette(routes=ROUTES, exception_handlers={
        StoreError: error_page, InvalidArgument: error_page, FormRefused: error_page,
        actions.FormTooLarge: error_page, HTTPException: http_error_page})
    app.state.dashboard = Dashboard(store, sessions)
    return SessionGate(SecurityHeaders(app), sessions)


__all__ = ["ROUTES", "dashboard_app"]
