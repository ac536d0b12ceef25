"""``agentjournal token add|list|revoke``: the token file of an HTTP server (server/tokens.py).

The file is ``--file FILE``, else ``$AGENTJOURNAL_TOKEN_FILE``; ``serve --transport http
--token-file FILE`` enforces it. ``add`` prints the new token once, on stdout: only its
sha256 is kept.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any

from . import tokens


def add_parsers(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "token", help="per-client tokens of an HTTP server: add, list, revoke",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Manage a token file: each client's token (kept as its sha256 only), the "
        "actor names it may act as (exact, or a prefix ending in *) and whether it may "
        "write. Serve it with `agentjournal serve --transport http --token-file FILE`; the "
        "single AGENTJOURNAL_TOKEN keeps working beside it.",
        epilog="examples:\n"
        "  agentjournal token add ci --actor 'ci-runner-*' --file tokens.json\n"
        "  agentjournal token add dashboard-bot --actor watcher --read-only\n"
        "  agentjournal token list\n"
        "  agentjournal token revoke ci\n",
    )
    verbs = parser.add_subparsers(dest="token_command", metavar="ACTION", required=True)
    add = verbs.add_parser("add", help="make a token (printed once) for a client")
    add.add_argument("name", help="who the token is for (1-64 characters)")
    add.add_argument("--actor", action="append", default=[], metavar="NAME",
                     help="an actor it may act as; NAME* allows every actor starting with "
                     "NAME (repeatable)")
    add.add_argument("--read-only", action="store_true", help="reads only, no writes")
    verbs.add_parser("list", help="the tokens of the file (names, actors, access)")
    revoke = verbs.add_parser("revoke", help="remove a token (a running server stops "
                              "accepting it at once)")
    revoke.add_argument("name")
    for sub in (add, verbs.choices["list"], revoke):
        sub.add_argument("--file", default=None, metavar="FILE",
                         help=f"the token file (default ${tokens.TOKEN_FILE_ENV})")


def token_file(args: argparse.Namespace) -> str:
    from .cli import UsageError

    path = args.file or os.environ.get(tokens.TOKEN_FILE_ENV)
    if not path:
        raise UsageError(f"which token file? give --file FILE or set {tokens.TOKEN_FILE_ENV}")
    return str(path)


def cmd_token(args: argparse.Namespace) -> int:
    path = token_file(args)
    if args.token_command == "add":
        token = tokens.add(path, args.name, args.actor,
                           "read-only" if args.read_only else "read-write")
        sys.stdout.write(token + "\n")
        sys.stderr.write(f"added the token {args.name!r} to {path} (shown once; only its "
                         "sha256 is kept)\n")
        return 0
    if args.token_command == "revoke":
        if not tokens.revoke(path, args.name):
            sys.stderr.write(f"agentjournal token: no token named {args.name!r} in {path}\n")
            return 1
        sys.stderr.write(f"revoked the token {args.name!r}\n")
        return 0
    for entry in tokens.read_file(path):
        sys.stdout.write(f"{entry.get('name')}\t{entry.get('access')}\t"
                         f"{','.join(entry.get('actors') or [])}\t{entry.get('created')}\n")
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {"token": cmd_token}
