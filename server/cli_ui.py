"""``agentjournal ui``: the dashboard alone, on loopback, for a store of this machine.

It serves what ``serve --transport http`` serves at ``/``, without the MCP endpoint, on
127.0.0.1 only (behind the Host/Origin guard: no token, no login), and prints its URL on
stdout. ``--open`` opens it in the default browser.
"""

from __future__ import annotations

import argparse
import logging
import sys
import webbrowser
from collections.abc import Callable
from typing import Any

UI_HOST = "127.0.0.1"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def add_parsers(commands: Any, common: argparse.ArgumentParser) -> None:
    from .web.limits import UI_PORT_DEFAULT

    parser = commands.add_parser(
        "ui", parents=[common], help="serve the dashboard on loopback and print its URL",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Serve the dashboard of the store (board, claims, live feed, history, "
        "memory, messages, search, health) on 127.0.0.1 only, and print its URL. A person "
        "can post messages and handoffs and release stuck claims from it, as human:<name>. "
        "The store must exist (agentjournal init).",
        epilog="examples:\n"
        "  agentjournal ui --open\n"
        "  agentjournal ui --port 0        # any free port\n\n"
        "To reach the dashboard from another machine, serve it with MCP instead:\n"
        "  AGENTJOURNAL_TOKEN=secret agentjournal serve --transport http --host 0.0.0.0",
    )
    parser.add_argument("--port", type=int, default=UI_PORT_DEFAULT,
                        help=f"port on 127.0.0.1 (default {UI_PORT_DEFAULT}; 0 picks a free one)")
    parser.add_argument("--open", action="store_true", help="open the dashboard in a browser")
    parser.add_argument("--log-level", choices=LOG_LEVELS, default="WARNING",
                        help="stderr log level (default WARNING)")


def cmd_ui(args: argparse.Namespace) -> int:
    import anyio
    import uvicorn

    from journal_core import Store, StoreConfig, StoreNotFound

    from .cli import locate
    from .http import SHUTDOWN_GRACE_S, LoopbackGuard, bind, dashboard_url
    from .web import dashboard_app

    logging.basicConfig(stream=sys.stderr, level=args.log_level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    location = locate(args)
    if not location.exists:
        raise StoreNotFound(f"no agentjournal store at {location.root}; run `agentjournal "
                            "init` there (or pass --store with the path of an existing store)")
    try:
        sock = bind(UI_HOST, args.port)
    except OSError as exc:
        sys.stderr.write(f"agentjournal ui: cannot listen on {UI_HOST}:{args.port}: "
                         f"{exc.strerror or exc}; pick another --port (0: any free one)\n")
        return 2
    store = Store(location, StoreConfig(projections="background"), create=False)
    try:
        url = dashboard_url(sock)
        app = LoopbackGuard(dashboard_app(store), UI_HOST, sock.getsockname()[1])
        config = uvicorn.Config(app, log_config=None, log_level=args.log_level.lower(),
                                access_log=False, lifespan="off",
                                timeout_graceful_shutdown=SHUTDOWN_GRACE_S)
        sys.stdout.write(f"agentjournal: dashboard of {store.root} at {url}\n")
        sys.stdout.flush()
        if args.open:
            webbrowser.open(url)
        anyio.run(uvicorn.Server(config).serve, [sock])
    finally:
        store.close()
        sock.close()
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {"ui": cmd_ui}
