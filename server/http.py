"""Streamable HTTP transport (SPEC §11): the MCP endpoint at ``/mcp``, guarded by a bearer
token. A server that listens beyond loopback refuses to start without a token; with a token
set, every request must carry it (``Authorization: Bearer <token>``) or gets 401.
"""

from __future__ import annotations

import hmac
import ipaddress
import socket

import orjson
import uvicorn
from mcp.server.mcpserver import MCPServer
from starlette.types import ASGIApp, Receive, Scope, Send

MCP_PATH = "/mcp"
TOKEN_ENV = "AGENTJOURNAL_TOKEN"
HTTP_BACKLOG = 128


class ExposureRefused(Exception):
    """A non-loopback listener without a token."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve anywhere


def check_exposure(host: str, token: str | None) -> None:
    if not token and not is_loopback(host):
        raise ExposureRefused(
            f"refusing to listen on {host} without a token: set {TOKEN_ENV} (clients then send "
            f"'Authorization: Bearer <token>'), or listen on 127.0.0.1"
        )


class BearerAuth:
    """ASGI middleware: HTTP requests must carry ``Authorization: Bearer <token>``."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.authorized(scope):
            await self.app(scope, receive, send)  # lifespan events pass through
            return
        body = orjson.dumps({
            "error": "invalid_token",
            "error_description": "send the store's token as 'Authorization: Bearer <token>'",
        })
        await send({
            "type": "http.response.start", "status": 401,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"www-authenticate", b'Bearer realm="agentjournal"'),
            ],
        })
        await send({"type": "http.response.body", "body": body})

    def authorized(self, scope: Scope) -> bool:
        for name, value in scope.get("headers") or []:
            if name == b"authorization":
                scheme, _, credentials = value.partition(b" ")
                return scheme.lower() == b"bearer" and hmac.compare_digest(
                    credentials.strip(), self.token)
        return False


def http_app(server: MCPServer, host: str, token: str | None) -> ASGIApp:
    """The ASGI app: the SDK's streamable HTTP app at /mcp, behind the token when set."""
    app: ASGIApp = server.streamable_http_app(streamable_http_path=MCP_PATH, host=host)
    return BearerAuth(app, token) if token else app


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
                     log_level: str = "warning") -> None:
    """Serve until interrupted (uvicorn handles SIGINT and SIGTERM)."""
    check_exposure(host, token)
    config = uvicorn.Config(
        http_app(server, host, token), log_config=None, log_level=log_level.lower(),
        access_log=False, lifespan="on",
    )
    await uvicorn.Server(config).serve(sockets=[sock])


def endpoint_url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    where = f"[{host}]" if ":" in host else host
    return f"http://{where}:{port}{MCP_PATH}"
