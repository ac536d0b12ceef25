"""The ``agentjournal`` command: init, serve, status, tail, doctor, export, import, and the
helpers agents and people use around them.

The store is ``--store PATH``, else ``$AGENTJOURNAL_STORE``, else the one found from the
working directory upwards (``.agentjournal/``, or the git common dir of the repository;
docs/design.md, "Layout"). Only ``init`` -- or ``--init`` on ``serve`` and ``import`` --
creates one: a store is never made by accident where a command happened to start.
``serve`` speaks MCP on stdout (stdio) or HTTP; everything else it says goes to stderr.
Every error is one line with a next step, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

import anyio
import orjson

from journal_core import (
    InvalidArgument,
    Store,
    StoreConfig,
    StoreError,
    StoreNotFound,
    limits,
    queries,
)
from journal_core.layout import (
    GITIGNORE_SELF_CONTAINED,
    Location,
    describe,
    find_store,
    location_for_init,
    location_for_root,
    not_found_message,
)
from journal_core.store_url import SCHEMES_SERVED, StoreUrl, looks_like_url, parse_store_url
from journal_core.watch import watcher_for

from . import cli_client, cli_guard, cli_hook, cli_project, cli_token, cli_ui, ops

STORE_ENV = "AGENTJOURNAL_STORE"
ACTOR_ENV = "AGENTJOURNAL_ACTOR"
DEBUG_ENV = "AGENTJOURNAL_DEBUG"
TAIL_POLL_S = limits.tail_poll_s
TAIL_LINES_DEFAULT = limits.tail_lines_default
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
URL_SCHEMES_SERVED: tuple[str, ...] = SCHEMES_SERVED
Target = Location | StoreUrl  # where a store is: a folder, or a database

EPILOG = f"""\
The store is --store PATH (or a postgresql://user@host:5432/db?store=NAME URL), else
${STORE_ENV}, else the one found from the working directory upwards (.agentjournal/, or
<git common dir>/agentjournal in a git repository).
Quick start:  agentjournal init --client claude-code   (or cursor, or generic)
"""


class UsageError(Exception):
    """A command line the CLI refuses, with the next step in its message."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    command = {"init": cmd_init, "serve": cmd_serve, "status": cmd_status, "tail": cmd_tail,
               **ops.COMMANDS, **cli_hook.COMMANDS, **cli_guard.COMMANDS, **cli_ui.COMMANDS,
               **cli_token.COMMANDS, **cli_project.COMMANDS}
    try:
        return command[args.command](args)
    except UsageError as exc:
        sys.stderr.write(f"agentjournal {args.command}: {exc}\n")
        return 2
    except StoreError as exc:
        sys.stderr.write(f"agentjournal {args.command}: {exc}\n")
        return 1
    except OSError as exc:
        sys.stderr.write(f"agentjournal {args.command}: {exc.strerror or exc}"
                         f"{': ' + str(exc.filename) if exc.filename else ''}\n")
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # the outermost handler: one line, the traceback on request
        if os.environ.get(DEBUG_ENV):
            raise
        sys.stderr.write(f"agentjournal {args.command}: internal error: {type(exc).__name__}: "
                         f"{exc} (set {DEBUG_ENV}=1 for the traceback, and please report it)\n")
        return 1


# -- finding the store --------------------------------------------------------------------
def store_argument(args: argparse.Namespace) -> str | None:
    return getattr(args, "store", None) or os.environ.get(STORE_ENV) or None


def check_store_argument(value: str) -> StoreUrl | None:
    """The database a URL names (postgresql://); a URL of any other scheme is refused,
    never taken for a folder name (``mysql://x`` would make a folder ``mysql:``)."""
    if not looks_like_url(value):
        return None
    try:
        return parse_store_url(value)
    except InvalidArgument as exc:
        raise UsageError(f"--store: {exc}") from None


def locate(args: argparse.Namespace) -> Target:
    """The store a command works on (it must exist, except for init)."""
    given = store_argument(args)
    if given is not None:
        url = check_store_argument(given)
        return url if url is not None else location_for_root(given)
    found = find_store(os.getcwd())
    if found is None:
        raise StoreNotFound(not_found_message(os.getcwd()))
    return found


def open_existing(args: argparse.Namespace, *, writes: bool = False,
                  projections: str = "sync") -> Store:
    """Open the store a command names or finds; a read-only command writes nothing."""
    from rich.console import Console

    location = locate(args)
    if not location.exists:
        raise StoreNotFound(f"no agentjournal store at {location.root}; run `agentjournal "
                            "init` there (or pass --store with the path of an existing store)")
    config = StoreConfig(projections=projections if writes else "off")
    with Console(stderr=True).status(f"opening {location.root}…", spinner="dots"):
        return Store(location, config, create=False)


# -- the parser -------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="agentjournal", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="A journal-first coordination store for AI coding agents, served over MCP.",
    )
    parser.add_argument("--store", metavar="PATH", help=f"store folder (default: ${STORE_ENV}, "
                        "else found from the working directory upwards)")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--store", metavar="PATH", default=argparse.SUPPRESS,
                        help=f"store folder (default: ${STORE_ENV}, else found upwards)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    _init_parser(commands, common)
    _serve_parser(commands, common)
    _status_parser(commands, common)
    _tail_parser(commands, common)
    ops.add_parsers(commands, common)
    cli_hook.add_parsers(commands, common)
    cli_guard.add_parsers(commands, common)
    cli_ui.add_parsers(commands, common)
    cli_token.add_parsers(commands, common)
    cli_project.add_parsers(commands, common)
    return parser


def _init_parser(commands: Any, common: argparse.ArgumentParser) -> None:
    init = commands.add_parser(
        "init", parents=[common], help="create the store (in a git repository: in .git/)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Create the store, or say where it is if it exists. In a git repository "
        "the journal goes to <git common dir>/agentjournal/: git clean, stash, checkout and "
        "merges never touch it, and every worktree shares it. Outside git, or with --store, "
        "the store is one folder (with a .gitignore for its machine files). Safe to run again. "
        "With --client, also write that MCP client's configuration for this store, with the "
        "absolute paths of the command and the store (clients start servers elsewhere, often "
        "with no environment).",
        epilog="examples:\n"
        "  agentjournal init --client claude-code   .mcp.json, .claude/settings.local.json\n"
        "  agentjournal init --client cursor        .cursor/mcp.json, .cursor/hooks.json\n"
        "  agentjournal init --client generic       print an mcpServers entry\n\n"
        "what git tracks (--track):\n"
        "  none         nothing (default); other clones get the state with export/import\n"
        "  checkpoints  .agentjournal/checkpoints/: a fresh clone's `init` restarts from them\n"
        "  state        also .agentjournal/state/ projections to read and diff (costs: every\n"
        "               branch carries a copy, branch switches rewrite them, merges conflict)",
    )
    init.add_argument("--track", choices=("none", "checkpoints", "state"), default="none",
                      help="what git tracks of the store (default none)")
    cli_client.add_init_arguments(init)
    cli_guard.add_init_arguments(init)


def _serve_parser(commands: Any, common: argparse.ArgumentParser) -> None:
    serve = commands.add_parser(
        "serve", parents=[common], help="serve the store over MCP (stdio or HTTP)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Serve the store's tools over MCP. stdio (the default) is what MCP "
        "clients launch, one process per agent; many processes may serve one store. The "
        "store must exist (agentjournal init), unless --init is given.",
        epilog="examples:\n"
        "  agentjournal serve --actor claude-code#1\n"
        "  agentjournal serve --transport http --host 127.0.0.1 --port 8765\n"
        "  AGENTJOURNAL_TOKEN=secret agentjournal serve --transport http --host 0.0.0.0\n\n"
        "Listening beyond loopback requires AGENTJOURNAL_TOKEN; with a token set, clients\n"
        "send 'Authorization: Bearer <token>' or are refused. Over HTTP the dashboard is\n"
        "served at / beside /mcp (with a token, behind a login form that asks for it).",
    )
    serve.add_argument("--transport", choices=("stdio", "http"), default="stdio",
                       help="stdio (default) or streamable HTTP at /mcp")
    serve.add_argument("--host", default="127.0.0.1", help="HTTP host (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8765, help="HTTP port (default 8765)")
    serve.add_argument("--actor", default=None,
                       help=f"default actor of tool calls (else ${ACTOR_ENV}, else the MCP "
                       "client's name)")
    serve.add_argument("--init", action="store_true",
                       help="create the store first if there is none (as `init` would)")
    serve.add_argument("--token-file", default=None, metavar="FILE",
                       help="per-client tokens (agentjournal token add); default "
                       "$AGENTJOURNAL_TOKEN_FILE")
    serve.add_argument("--log-level", choices=LOG_LEVELS, default="WARNING",
                       help="stderr log level (default WARNING)")


def _status_parser(commands: Any, common: argparse.ArgumentParser) -> None:
    status = commands.add_parser(
        "status", parents=[common], help="where the store is, head seq, checkpoint, counters",
        description="Show the store's path and layout, the journal's head seq and size, the "
        "newest checkpoint, live entities and the doctor counters. Writes nothing.",
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
    tail.add_argument("-n", "--lines", type=_non_negative, default=TAIL_LINES_DEFAULT,
                      metavar="N", help=f"start with the last N records (default "
                      f"{TAIL_LINES_DEFAULT})")
    tail.add_argument("--json", action="store_true", help="print raw records as JSON lines")


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative; give 0 or more")
    return value


# -- commands ---------------------------------------------------------------------------
def init_location(args: argparse.Namespace) -> Target:
    given = store_argument(args)
    if given is not None:
        url = check_store_argument(given)
        return url if url is not None else location_for_root(given)
    existing = find_store(os.getcwd())
    if existing is not None:
        return existing
    return location_for_init(os.getcwd(), args.track if hasattr(args, "track") else "none")


def create_store(location: Target) -> tuple[Store, bool]:
    """Open the store at ``location``, creating it (and its .gitignore) if needed; a
    database store's schema is created or migrated first (idempotent)."""
    if isinstance(location, StoreUrl):
        from journal_core.pg_backend import PgBackend

        backend = PgBackend(location)
        try:
            backend.prepare()
            existed = backend.store_info() is not None
        except BaseException:
            backend.close()
            raise
        return Store(backend=backend, config=StoreConfig(projections="off")), not existed
    existed = location.exists
    store = Store(location, StoreConfig(projections="sync"), create=True)
    wrote = False
    if location.kind == "folder":
        gitignore = os.path.join(store.root, ".gitignore")
        if not os.path.lexists(gitignore):
            with open(gitignore, "w", encoding="utf-8") as handle:
                handle.write(GITIGNORE_SELF_CONTAINED)
            wrote = True
    return store, not existed or wrote


def where_text(store: Store) -> str:
    """What init and status say about where the store is."""
    url = getattr(store.backend, "url", None)
    if isinstance(url, StoreUrl):
        return (f"a PostgreSQL store: schema {url.store} of the database (every server "
                "naming this URL, on any machine, shares it)")
    return describe(store.location)


def cmd_init(args: argparse.Namespace) -> int:
    from rich.console import Console

    if getattr(args, "git_hooks", False) and args.uninstall:
        return cli_guard.cmd_git_hooks(args)
    if args.client is None and (args.actor is not None or args.print_config):
        raise UsageError("--actor and --print go with --client claude-code|cursor|generic")
    location = init_location(args)
    existed = location.exists
    store, _ = create_store(location)
    try:
        verb = "already initialized" if existed else "initialized"
        Console(stderr=True, highlight=False, soft_wrap=True).print(
            f"{verb} {store.root} (store {store.store_id}, head seq {store.head_seq}): "
            f"{where_text(store)}")
    finally:
        store.close()
    if args.client is not None:
        cli_client.configure(args, store.root)
    return cli_guard.cmd_git_hooks(args) if getattr(args, "git_hooks", False) else 0


def cmd_serve(args: argparse.Namespace) -> int:
    from .app import build_server
    from .http import (
        TOKEN_ENV,
        ExposureRefused,
        bind,
        check_exposure,
        dashboard_url,
        endpoint_url,
        serve_http,
    )

    logging.basicConfig(stream=sys.stderr, level=args.log_level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from .tokens import TOKEN_FILE_ENV, TokenFile

    actor = args.actor or os.environ.get(ACTOR_ENV) or None
    token = os.environ.get(TOKEN_ENV) or None
    token_path = args.token_file or os.environ.get(TOKEN_FILE_ENV) or None
    tokens = TokenFile(token_path) if token_path and args.transport == "http" else None
    sock = None
    if args.transport == "http":
        try:
            check_exposure(args.host, token, tokens)
            sock = bind(args.host, args.port)
        except (ExposureRefused, OSError) as exc:
            sys.stderr.write(f"agentjournal serve: {exc}\n")
            return 2
    if args.init:
        store, _ = create_store(init_location(args))
        store.close()
    location = locate(args)
    if not location.exists:
        raise StoreNotFound(f"no agentjournal store at {location.root}; run `agentjournal "
                            "init` (or serve --init)")
    store = Store(location, StoreConfig(projections="background"), create=False)
    try:
        server = build_server(store, actor, log_level=args.log_level)
        where = "on stdio" if sock is None else (
            f"at {endpoint_url(sock)} (dashboard at {dashboard_url(sock)})")
        sys.stderr.write(f"agentjournal: serving the store {store.root}"
                         f"{' (read-only)' if store.read_only else ''} {where}"
                         f"{' (bearer token required)' if token or tokens else ''}\n")
        sys.stderr.flush()
        if sock is None:
            anyio.run(server.run_stdio_async)
        else:
            from .web import dashboard_app

            # The dashboard logs in with the single token; with only a token file it
            # is not served (its pages would be open to anyone who reaches the port).
            dashboard = dashboard_app(store, token) if token or tokens is None else None
            anyio.run(serve_http, server, sock, args.host, token, args.log_level,
                      dashboard, tokens)
    finally:
        store.close()
        if sock is not None:
            sock.close()
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from rich.console import Console

    from .render import status_view

    store = open_existing(args)
    try:
        status = queries.journal_status(store)
        status["location"] = where_text(store)
    finally:
        store.close()
    if args.json:
        sys.stdout.write(orjson.dumps(status, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        Console().print(status_view(status))
    return 0


def cmd_tail(args: argparse.Namespace) -> int:
    from rich.console import Console

    from .render import record_line

    console = Console(highlight=False, soft_wrap=True)
    store = open_existing(args)
    try:
        store.refresh()
        last = max(0, store.head_seq - args.lines)
        watcher = watcher_for(store.backend)
        while True:
            token = watcher.changes()  # before reading: a commit meanwhile wakes the wait
            records = queries.records_after(store, last)
            for record in records:
                last = record["seq"]
                if args.actor is None or record["actor"] == args.actor:
                    if args.json:
                        sys.stdout.write(orjson.dumps(record).decode() + "\n")
                    else:
                        console.print(record_line(record))
            sys.stdout.flush()
            if records and len(records) >= limits.records_page_max:
                continue  # more pages are waiting: no pause
            if not args.follow:
                return 0
            watcher.wait(token, TAIL_POLL_S)  # woken by the next commit (journal_core/watch.py)
    finally:
        store.close()
