"""Streamable HTTP transport: the MCP endpoint at ``/mcp``, guarded by a bearer
token. A server that listens beyond loopback refuses to start without a token; with a token
set, every request must carry it (``Authorization: Bearer <token>``) or is refused with 403
and a JSON-RPC error saying the token is missing or wrong (docs/design.md, D31: a 401 makes
OAuth-capable MCP clients start an OAuth flow this server cannot finish). Every other path
goes to the dashboard when one is given (``agentjournal.web``; it asks for the same token
through a login form, kept in a cookie).
"""

from __future__ import annotations

import hmac
import ipaddress
import socket

import orjson
import uvicorn
from mcp.server.mcpserver import MCPServer
from starlette.types import ASGIApp, Receive, Scope, Send

from journal_core import limits

from .tokens import GRANT_KEY, TokenFile

MCP_PATH = "/mcp"
TOKEN_ENV = "AGENTJOURNAL_TOKEN"
HTTP_BACKLOG = limits.http_backlog
SHUTDOWN_GRACE_S = limits.http_shutdown_grace_s
AUTH_REFUSED_STATUS = 403  # not 401: see BearerAuth
AUTH_ERROR_CODE = -32001  # a server-defined JSON-RPC error code: "not authorized"


class ExposureRefused(Exception):
    """A non-loopback listener without a token."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve anywhere


def check_exposure(host: str, token: str | None, tokens: TokenFile | None = None) -> None:
    if not token and tokens is None and not is_loopback(host):
        raise ExposureRefused(
            f"refusing to listen on {host} without a token: set {TOKEN_ENV} (clients then send "
            f"'Authorization: Bearer <token>'), or give --token-file, or listen on 127.0.0.1"
        )


class LoopbackGuard:
    """ASGI middleware for a server on a loopback address (any of 127.0.0.0/8, ::1,
    localhost): a request whose Host is not this server (421) or whose Origin is another
    site (403) is refused. A web page on another site, even one that rebinds its DNS name
    to 127.0.0.x, cannot drive the store from a browser (the MCP transport requires local
    servers to check Origin)."""

    def __init__(self, app: ASGIApp, host: str, port: int) -> None:
        self.app = app
        self.port = port
        names = {host.strip("[]"), "localhost", "127.0.0.1", "::1"}
        self.hosts = {h for name in names for h in (_host_header(name, port),
                                                    _host_header(name, None))}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {name.lower(): value for name, value in scope.get("headers") or []}
        host = headers.get(b"host", b"").decode("latin-1").lower()
        if host not in self.hosts:
            await _refuse(send, 421, "misdirected_request",
                          f"this server answers to Host {sorted(self.hosts)[0]}, not {host!r}")
            return
        origin = headers.get(b"origin")
        if origin is not None and not self._same_site(origin.decode("latin-1").lower()):
            await _refuse(send, 403, "forbidden_origin",
                          "requests from another site's pages are refused")
            return
        await self.app(scope, receive, send)

    def _same_site(self, origin: str) -> bool:
        scheme, _, rest = origin.partition("://")
        return scheme in ("http", "https") and rest.rstrip("/") in self.hosts


def _host_header(name: str, port: int | None) -> str:
    shown = f"[{name}]" if ":" in name else name
    return shown if port is None else f"{shown}:{port}"


async def _refuse(send: Send, status: int, code: str, description: str) -> None:
    body = orjson.dumps({"error": code, "error_description": description})
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class BearerAuth:
    """ASGI middleware: HTTP requests must carry ``Authorization: Bearer <token>``: the
    single token, or one of a token file's (its grant then goes with the request, for the
    tools to check the actor and the access: server/tokens.py).

    A request without it, or with another token, gets **403** with a JSON-RPC error body
    (``id: null``) that says which, and how to send the token. Not 401: under the MCP
    authorization spec a 401 means "authorize with my OAuth server", and the TypeScript SDK
    (the Inspector, and clients built on it) answers any 401 by starting OAuth discovery --
    there is no OAuth server here, so the user would see an OAuth failure instead of "the
    token is missing". A 403 without ``error="insufficient_scope"`` starts no flow in the
    TypeScript or Python SDK: the former reports the body's text, the latter the JSON-RPC
    error's message."""

    def __init__(self, app: ASGIApp, token: str | None, tokens: TokenFile | None = None) -> None:
        self.app = app
        self.token = token.encode() if token else None
        self.tokens = tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.authorized(scope):
            await self.app(scope, receive, send)  # lifespan events pass through
            return
        body = orjson.dumps({"jsonrpc": "2.0", "id": None, "error": {
            "code": AUTH_ERROR_CODE, "message": refusal_message(self.presented(scope))}})
        await send({
            "type": "http.response.start", "status": AUTH_REFUSED_STATUS,
            "headers": [(b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode())],
        })
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    def presented(scope: Scope) -> bool:
        return any(name == b"authorization" for name, _ in scope.get("headers") or [])

    def authorized(self, scope: Scope) -> bool:
        for name, value in scope.get("headers") or []:
            if name == b"authorization":
                scheme, _, credentials = value.partition(b" ")
                if scheme.lower() != b"bearer":
                    return False
                credentials = credentials.strip()
                if self.token is not None and hmac.compare_digest(credentials, self.token):
                    return True
                grant = self.tokens.grant_for(credentials) if self.tokens else None
                if grant is not None:
                    scope.setdefault("state", {})[GRANT_KEY] = grant
                    return True
                return False
        return False


def refusal_message(presented: bool) -> str:
    what = ("the bearer token is wrong" if presented
            else "the bearer token is missing")
    return (f"agentjournal: {what}. This server takes fixed tokens, not OAuth: send "
            f"'Authorization: Bearer <token>' with the value of {TOKEN_ENV} the server was "
            "started with, or a token of its --token-file (a client that does not expand "
            "variables in its configuration sends '${AGENTJOURNAL_TOKEN}' as it is written)")


class BesideMcp:
    """ASGI: /mcp (and the lifespan, which runs the SDK's session manager) to the MCP app,
    every other HTTP path to the dashboard."""

    def __init__(self, mcp: ASGIApp, dashboard: ASGIApp) -> None:
        self.mcp = mcp
        self.dashboard = dashboard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        if scope["type"] == "http" and path != MCP_PATH and not path.startswith(MCP_PATH + "/"):
            await self.dashboard(scope, receive, send)
        else:
            await self.mcp(scope, receive, send)


def http_app(server: MCPServer, host: str, token: str | None, port: int = 0,
             dashboard: ASGIApp | None = None, tokens: TokenFile | None = None) -> ASGIApp:
    """The ASGI app: the SDK's streamable HTTP app at /mcp, behind the token when set, the
    dashboard (if given) everywhere else, and all of it behind the Host/Origin guard on a
    loopback address."""
    app: ASGIApp = server.streamable_http_app(streamable_http_path=MCP_PATH, host=host)
    if token or tokens is not None:
        app = BearerAuth(app, token, tokens)
    if dashboard is not None:
        app = BesideMcp(app, dashboard)
    if is_loopback(host):
        app = LoopbackGuard(app, host, port)
    return app


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound before the server starts: once this returns, connections
    queue up, so a caller told the address can connect at once (``--port 0`` picks a port)."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(HTTP_BACKLOG)
    except OSError:
        sock.close()
        raise
    return sock


async def serve_http(server: MCPServer, sock: socket.socket, host: str, token: str | None,
                     log_level: str = "warning", dashboard: ASGIApp | None = None,
                     tokens: TokenFile | None = None) -> None:
    """Serve until interrupted (uvicorn handles SIGINT and SIGTERM)."""
    check_exposure(host, token, tokens)
    config = uvicorn.Config(
        http_app(server, host, token, sock.getsockname()[1], dashboard, tokens),
        log_config=None,
        log_level=log_level.lower(),
        access_log=False, lifespan="on", timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
    )
    await uvicorn.Server(config).serve(sockets=[sock])


def endpoint_url(sock: socket.socket) -> str:
    return dashboard_url(sock).rstrip("/") + MCP_PATH


def dashboard_url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    where = f"[{host}]" if ":" in host else host
    return f"http://{where}:{port}/"
