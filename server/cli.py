"""The ``agentjournal`` command (SPEC §12): init, serve, status, tail, doctor, export, import.

The store is ``--store PATH``, else ``$AGENTJOURNAL_STORE``, else ``./.agentjournal``.
``serve`` speaks MCP on stdout (stdio) or HTTP; everything else it says goes to stderr.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

import anyio
import orjson

from journal_core import Store, StoreError, queries

from . import ops

STORE_ENV = "AGENTJOURNAL_STORE"
ACTOR_ENV = "AGENTJOURNAL_ACTOR"
STORE_DEFAULT = ".agentjournal"
TAIL_POLL_S = 0.25
TAIL_LINES_DEFAULT = 20
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")

# SPEC §2: segments, meta, blobs, lock, cursors, quarantine and archive are machine files;
# projections (state/) and checkpoints are the git-diffable face of the store.
GITIGNORE = """\
# agentjournal: machine files stay out of git (SPEC §2). The journal segments, meta, blobs,
# the lock, cursors, quarantine and archive are local to one machine; the projections in
# state/ and the checkpoints are the git-diffable face of the store.
/lock
/lock.*
/cursors/
/events/*
!/events/checkpoints/
"""

EPILOG = f"""\
The store is --store PATH, else ${STORE_ENV}, else ./{STORE_DEFAULT}.
Quick start:  agentjournal init && claude mcp add agentjournal -- agentjournal serve
"""


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command is None:
        build_parser().print_help(sys.stderr)
        return 2
    root = args.store or os.environ.get(STORE_ENV) or STORE_DEFAULT
    command = {"init": cmd_init, "serve": cmd_serve, "status": cmd_status, "tail": cmd_tail,
               **ops.COMMANDS}
    try:
        return command[args.command](root, args)
    except StoreError as exc:
        sys.stderr.write(f"agentjournal {args.command}: {exc}\n")
        return 1
    except KeyboardInterrupt:
        return 130


# -- the parser -------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="agentjournal", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="A journal-first coordination store for AI coding agents, served over MCP.",
    )
    parser.add_argument("--store", metavar="PATH", help=f"store folder (default: ${STORE_ENV} "
                        f"or ./{STORE_DEFAULT})")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--store", metavar="PATH", default=argparse.SUPPRESS,
                        help=f"store folder (default: ${STORE_ENV} or ./{STORE_DEFAULT})")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    _init_parser(commands, common)
    _serve_parser(commands, common)
    _status_parser(commands, common)
    _tail_parser(commands, common)
    ops.add_parsers(commands, common)
    return parser


def _init_parser(commands: Any, common: argparse.ArgumentParser) -> None:
    commands.add_parser(
        "init", parents=[common], help="create the store and its .gitignore",
        description="Create the store (if it does not exist) and write its .gitignore, which "
        "keeps the machine files (journal segments, meta, blobs, lock, cursors) out of git and "
        "tracks the projections in state/ and the checkpoints. Safe to run again.",
    )


def _serve_parser(commands: Any, common: argparse.ArgumentParser) -> None:
    serve = commands.add_parser(
        "serve", parents=[common], help="serve the store over MCP (stdio or HTTP)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Serve the store's tools over MCP. stdio (the default) is what MCP "
        "clients launch, one process per agent; many processes may serve one store.",
        epilog="examples:\n"
        "  agentjournal serve --actor claude-code#1\n"
        "  agentjournal serve --transport http --host 127.0.0.1 --port 8765\n"
        "  AGENTJOURNAL_TOKEN=secret agentjournal serve --transport http --host 0.0.0.0\n\n"
        "Listening beyond loopback requires AGENTJOURNAL_TOKEN; with a token set, clients\n"
        "send 'Authorization: Bearer <token>' or get 401.",
    )
    serve.add_argument("--transport", choices=("stdio", "http"), default="stdio",
                       help="stdio (default) or streamable HTTP at /mcp")
    serve.add_argument("--host", default="127.0.0.1", help="HTTP host (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8765, help="HTTP port (default 8765)")
    serve.add_argument("--actor", default=None,
                       help=f"default actor of tool calls (else ${ACTOR_ENV}, else the MCP "
                       "client's name)")
    serve.add_argument("--log-level", choices=LOG_LEVELS, default="WARNING",
                       help="stderr log level (default WARNING)")


def _status_parser(commands: Any, common: argparse.ArgumentParser) -> None:
    status = commands.add_parser(
        "status", parents=[common], help="head seq, segments, checkpoint, doctor counters",
        description="Show the journal's head seq, segments, newest checkpoint, live entities "
        "and the doctor counters.",
    )
    status.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _tail_parser(commands: Any, common: argparse.ArgumentParser) -> None:
    tail = commands.add_parser(
        "tail", parents=[common], help="print journal records, one line each",
        description="Print the newest journal records, one readable line each; with "
        "--follow, keep printing records as they land (Ctrl-C stops).",
    )
    tail.add_argument("-f", "--follow", action="store_true", help="keep printing new records")
    tail.add_argument("--actor", default=None, help="only records written by this actor")
    tail.add_argument("-n", "--lines", type=int, default=TAIL_LINES_DEFAULT, metavar="N",
                      help=f"start with the last N records (default {TAIL_LINES_DEFAULT})")
    tail.add_argument("--json", action="store_true", help="print raw records as JSON lines")


# -- commands ---------------------------------------------------------------------------
def open_store(root: str, *, create: bool) -> Store:
    """Open the store with a spinner on stderr: replaying a long journal takes a moment."""
    from rich.console import Console

    with Console(stderr=True).status(f"opening {root}…", spinner="dots"):
        return Store(root, create=create)


def cmd_init(root: str, args: argparse.Namespace) -> int:
    from rich.console import Console

    existed = os.path.exists(os.path.join(root, "store.json"))
    store = open_store(root, create=True)
    try:
        gitignore = os.path.join(store.root, ".gitignore")
        wrote = not os.path.exists(gitignore)
        if wrote:
            with open(gitignore, "w", encoding="utf-8") as handle:
                handle.write(GITIGNORE)
        verb = "already initialized" if existed else "initialized"
        Console(stderr=True, highlight=False).print(
            f"{verb} {store.root} (store {store.store_id}, head seq {store.head_seq})"
            + ("; wrote .gitignore" if wrote else ""))
    finally:
        store.close()
    return 0


def cmd_serve(root: str, args: argparse.Namespace) -> int:
    from .app import build_server
    from .http import TOKEN_ENV, ExposureRefused, bind, check_exposure, endpoint_url, serve_http

    logging.basicConfig(stream=sys.stderr, level=args.log_level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    actor = args.actor or os.environ.get(ACTOR_ENV) or None
    token = os.environ.get(TOKEN_ENV) or None
    sock = None
    if args.transport == "http":
        try:
            check_exposure(args.host, token)
            sock = bind(args.host, args.port)
        except (ExposureRefused, OSError) as exc:
            sys.stderr.write(f"agentjournal serve: {exc}\n")
            return 2
    store = Store(root)
    try:
        server = build_server(store, actor, log_level=args.log_level)
        if sock is None:
            anyio.run(server.run_stdio_async)
        else:
            sys.stderr.write(f"agentjournal: serving {store.root} at {endpoint_url(sock)}"
                             f"{' (bearer token required)' if token else ''}\n")
            sys.stderr.flush()
            anyio.run(serve_http, server, sock, args.host, token, args.log_level)
    finally:
        store.close()
        if sock is not None:
            sock.close()
    return 0


def cmd_status(root: str, args: argparse.Namespace) -> int:
    from rich.console import Console

    from .render import status_view

    store = open_store(root, create=False)
    try:
        status = queries.journal_status(store)
    finally:
        store.close()
    if args.json:
        sys.stdout.write(orjson.dumps(status, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        Console().print(status_view(status))
    return 0


def cmd_tail(root: str, args: argparse.Namespace) -> int:
    from rich.console import Console

    from .render import record_line

    console = Console(highlight=False, soft_wrap=True)
    store = open_store(root, create=False)
    try:
        store.refresh()
        last = max(0, store.head_seq - max(0, args.lines))
        while True:
            records = queries.records_after(store, last)
            for record in records:
                last = record["seq"]
                if args.actor is None or record["actor"] == args.actor:
                    if args.json:
                        sys.stdout.write(orjson.dumps(record).decode() + "\n")
                    else:
                        console.print(record_line(record))
            sys.stdout.flush()
            if records and len(records) >= queries.records_page_max:
                continue  # more pages are waiting: no pause
            if not args.follow:
                return 0
            time.sleep(TAIL_POLL_S)  # polling the journal: it has no change notification
    finally:
        store.close()
