"""Streamable HTTP transport (SPEC §11): the MCP endpoint at ``/mcp``, guarded by a bearer
token. A server that listens beyond loopback refuses to start without a token; with a token
set, every request must carry it (``Authorization: Bearer <token>``) or gets 401.
"""

from __future__ import annotations

import hmac
import ipaddress

import orjson
import uvicorn
from mcp.server.mcpserver import MCPServer
from starlette.types import ASGIApp, Receive, Scope, Send

MCP_PATH = "/mcp"
TOKEN_ENV = "AGENTJOURNAL_TOKEN"


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


async def serve_http(server: MCPServer, host: str, port: int, token: str | None,
                     log_level: str = "warning") -> None:
    check_exposure(host, token)
    config = uvicorn.Config(
        http_app(server, host, token), host=host, port=port, log_config=None,
        log_level=log_level.lower(), access_log=False, lifespan="on",
    )
    await uvicorn.Server(config).serve()


def endpoint_url(host: str, port: int) -> str:
    where = f"[{host}]" if ":" in host else host
    return f"http://{where}:{port}{MCP_PATH}"
