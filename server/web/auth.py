"""Who is looking, and whether a form really comes from the dashboard.

A session lives in one signed cookie (HttpOnly, SameSite=Strict, never in a URL): a random
session id, the person's name once asked, and whether the store's token was entered. With
a token (a server that listens beyond loopback), every page but the login form needs a
session that entered it; the cookie's signing key is derived from the token, so changing
the token logs everybody out. Without one (loopback, where the Host/Origin guard stands in
front), the key is random per process.

Every form carries a token derived from the session id (``csrf``), and every POST must come
from this server's own origin: a page on another site can neither read the token nor send
the cookie (SameSite=Strict), and its Origin gives it away.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, replace
from http.cookies import CookieError, SimpleCookie
from urllib.parse import quote

import orjson
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from journal_core import verbs

from .limits import PERSON_NAME_CHARS_MAX, SESSION_MAX_AGE_S

COOKIE_NAME = "agentjournal_session"
SESSION_KEY_LABEL = b"agentjournal dashboard session v1"
CSRF_FIELD = "csrf"
PUBLIC_PATHS = ("/login", "/static/")  # reachable before the token is entered
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._@+-]*")


class FormRefused(Exception):
    """A POST without this session's form token or from another site's page."""


@dataclass(frozen=True)
class Session:
    sid: str
    name: str | None = None
    authed: bool = False

    @property
    def actor(self) -> str | None:
        return f"{verbs.HUMAN_PREFIX}{self.name}" if self.name else None


def new_session() -> Session:
    return Session(secrets.token_urlsafe(18))


class Sessions:
    """Signs and reads session cookies, derives form tokens, checks the store's token."""

    def __init__(self, token: str | None) -> None:
        self.token = token.encode() if token else None
        secret = self.token or secrets.token_bytes(32)
        self.key = hmac.new(secret, SESSION_KEY_LABEL, hashlib.sha256).digest()

    @property
    def login_required(self) -> bool:
        return self.token is not None

    def encode(self, session: Session) -> str:
        body = base64.urlsafe_b64encode(orjson.dumps(
            {"s": session.sid, "n": session.name, "a": session.authed})).decode().rstrip("=")
        return f"{body}.{self._mac(body)}"

    def decode(self, text: str | None) -> Session | None:
        """The session a cookie holds, or None when it is missing, forged or malformed."""
        if not text or "." not in text:
            return None
        body, _, mac = text.rpartition(".")
        if not hmac.compare_digest(mac, self._mac(body)):
            return None
        try:
            data = orjson.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        except (ValueError, orjson.JSONDecodeError):
            return None
        if not isinstance(data, dict) or not isinstance(data.get("s"), str):
            return None
        name = data.get("n") if isinstance(data.get("n"), str) else None
        return Session(data["s"], name, bool(data.get("a")) and self.login_required)

    def _mac(self, body: str) -> str:
        digest = hmac.new(self.key, body.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def csrf(self, session: Session) -> str:
        return hmac.new(self.key, b"csrf:" + session.sid.encode(), hashlib.sha256).hexdigest()

    def token_matches(self, given: str) -> bool:
        return self.token is not None and hmac.compare_digest(given.encode(), self.token)


def check_person_name(text: str) -> str:
    """A person's name as the actor ``human:<name>`` carries it; ValueError says why not."""
    name = " ".join(text.split())
    if not name:
        raise ValueError("give your name: your messages and releases are signed human:<name>")
    if len(name) > PERSON_NAME_CHARS_MAX:
        raise ValueError(f"a name is at most {PERSON_NAME_CHARS_MAX} characters")
    if not NAME_PATTERN.fullmatch(name):
        raise ValueError("a name starts with a letter or digit and holds letters, digits, "
                         "spaces and . _ @ + -")
    return name


def session_of(request: Request) -> Session:
    session: Session = request.state.session
    return session


def set_session(request: Request, session: Session) -> None:
    """Replace the request's session; the gate sends the new cookie with the response."""
    request.state.session = session


def rotate(session: Session, *, name: str | None, authed: bool) -> Session:
    """A new session id for a change of who is logged in (a planted id is worth nothing)."""
    return replace(session, sid=secrets.token_urlsafe(18), name=name, authed=authed)


def check_form(request: Request, sessions: Sessions, form_token: object) -> None:
    """Refuse a POST from another site's page or without this session's form token."""
    if not same_origin(request):
        raise FormRefused("this form was posted from another site's page: refused")
    expected = sessions.csrf(session_of(request))
    if not isinstance(form_token, str) or not hmac.compare_digest(form_token, expected):
        raise FormRefused("this form has no valid form token (a stale page, or another "
                          "site's): reload the page and send it again")


def same_origin(request: Request) -> bool:
    """The Origin header (or Sec-Fetch-Site, when there is no Origin) says this server."""
    host = request.headers.get("host", "")
    origin = request.headers.get("origin")
    if origin is not None:
        return origin.rstrip("/").lower() in {f"http://{host}".lower(),
                                              f"https://{host}".lower()}
    site = request.headers.get("sec-fetch-site")
    return site is None or site in ("same-origin", "none")


def safe_next(target: object) -> str:
    """A local path to go back to after a form (never another site)."""
    text = target if isinstance(target, str) else ""
    if not text.startswith("/") or text.startswith("//") or "\\" in text:
        return "/"
    return text


class SessionGate:
    """ASGI middleware: reads the session cookie into ``request.state.session`` (a new
    session when there is none), sends the cookie back when the session changed, and keeps
    everything but the login form behind the token when one is set."""

    def __init__(self, app: ASGIApp, sessions: Sessions) -> None:
        self.app = app
        self.sessions = sessions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        found = self.sessions.decode(_cookie(scope, COOKIE_NAME))
        session = found or new_session()
        state = scope.setdefault("state", {})
        state["session"] = session
        path = str(scope.get("path", "/"))
        sending = self._with_cookie(send, state, found, scope.get("scheme") == "https")
        if (self.sessions.login_required and not session.authed
                and not path.startswith(PUBLIC_PATHS)):
            await self._login_first(scope, path)(scope, receive, sending)
            return
        await self.app(scope, receive, sending)

    def _login_first(self, scope: Scope, path: str) -> Response:
        if scope.get("method") == "GET" and not path.startswith("/feed/stream"):
            query = scope.get("query_string", b"").decode("latin-1")
            back = path + (f"?{query}" if query else "")
            return RedirectResponse(f"/login?next={quote(back, safe='')}", status_code=303)
        return PlainTextResponse("log in first: open /login and enter the store's token",
                                 status_code=401)

    def _with_cookie(self, send: Send, state: dict[str, Session], found: Session | None,
                     secure: bool) -> Send:
        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start" and state["session"] != found:
                headers = MutableHeaders(scope=message)
                headers.append("set-cookie", self.cookie_header(state["session"], secure))
            await send(message)

        return sending

    def cookie_header(self, session: Session, secure: bool) -> str:
        return (f"{COOKIE_NAME}={self.sessions.encode(session)}; Path=/; HttpOnly; "
                f"SameSite=Strict; Max-Age={SESSION_MAX_AGE_S}{'; Secure' if secure else ''}")


def _cookie(scope: Scope, name: str) -> str | None:
    """One cookie of the request (a malformed Cookie header counts as none)."""
    for key, value in scope.get("headers") or []:
        if key == b"cookie":
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(value.decode("latin-1"))
            except CookieError:
                return None
            if name in jar:
                return jar[name].value
    return None


__all__ = ["COOKIE_NAME", "CSRF_FIELD", "FormRefused", "Session", "SessionGate", "Sessions",
           "check_form", "check_person_name", "new_session", "rotate", "safe_next",
           "same_origin", "session_of", "set_session"]
