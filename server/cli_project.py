"""``agentjournal project DIR [--follow]``: the git-diffable face of a PostgreSQL store.

A PostgreSQL store keeps no files; people who read and diff the projections -- one pretty
JSON file per entity, ``DIR/state/<family>/<id>.json`` -- get them with this command: once,
or kept up to date with ``--follow`` (woken by the store's LISTEN/NOTIFY watcher, like
``tail -f``). The folder can live in a git working tree. A local store writes its own
projections already (``state/`` of the store).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any

from journal_core import Store, StoreConfig, limits
from journal_core.store_url import StoreUrl
from journal_core.watch import watcher_for

FOLLOW_POLL_S = 1.0  # --follow looks at least this often (a commit wakes it at once)


def add_parsers(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "project", parents=[common], help="write a PostgreSQL store's projection files",
        description="Write the projections of a PostgreSQL store (--store postgresql://...) "
        "to DIR/state/<family>/<id>.json, the files people read and diff; with --follow, "
        "keep them up to date as records land (Ctrl-C stops). A local store writes its own.",
    )
    parser.add_argument("folder", metavar="DIR", help="where the projection files go")
    parser.add_argument("-f", "--follow", action="store_true", help="keep them up to date")


def cmd_project(args: argparse.Namespace) -> int:
    from journal_core.pg_backend import PgBackend

    from .cli import UsageError, locate

    target = locate(args)
    if not isinstance(target, StoreUrl):
        raise UsageError(f"{target.root} is a local store: its projections are in its own "
                         "state/ folder already; `project` is for a postgresql:// store")
    folder = os.path.abspath(args.folder)
    backend = PgBackend(target, projection_dir=folder)
    store = Store(backend=backend, config=StoreConfig(projections="sync"), create=False)
    try:
        written = store.rebuild_projections()
        sys.stderr.write(f"wrote {written} projection file(s) of {store.root} to "
                         f"{os.path.join(folder, 'state')} (head seq {store.head_seq})\n")
        if not args.follow:
            return 0
        watcher = watcher_for(store.backend)
        while True:
            token = watcher.changes()  # before looking: a commit meanwhile wakes the wait
            store.refresh()
            store.flush(limits.projector_flush_s)
            watcher.wait(token, FOLLOW_POLL_S)
    finally:
        store.close()


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {"project": cmd_project}
