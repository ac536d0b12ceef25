"""Operations commands: ``doctor``, ``export``, ``import``.

The work lives in journal_core (``doctor``, ``federation``); these functions parse the
command line, show progress on stderr, and print the report.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import orjson

from journal_core import doctor, federation, limits

DOCTOR_ACTOR = "agentjournal-doctor"
LEVEL_STYLES = {"ERROR": "bold red", "WARNING": "yellow", "INFO": "dim"}


# -- parsers ----------------------------------------------------------------------------
def add_parsers(commands: Any, common: argparse.ArgumentParser) -> None:
    _doctor_parser(commands, common)
    _export_parser(commands, common)
    _import_parser(commands, common)


def _doctor_parser(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "doctor", parents=[common], help="check the journal; verify, compact, gc, repair, redact",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Read the whole journal and report its health: skipped lines, torn tails, "
        "incomplete txns, duplicate seqs, rev gaps, checkpoints, blobs, projections, and a "
        "network file system under the store. The options below also act on the store; "
        "they hold the store lock while they do.",
        epilog="exit status: 0 healthy, 1 problems found (or an action failed), 2 usage\n\n"
        "examples:\n"
        "  agentjournal doctor --verify-journal\n"
        "  agentjournal doctor --compact --gc\n"
        "  agentjournal doctor --redact 1042 1043 --reason 'API key pasted into a memory'\n",
    )
    parser.add_argument("--verify-journal", action="store_true",
                        help="rebuild state from checkpoint + journal in a temp folder and diff "
                        "it with the projections (ephemeral fields masked)")
    parser.add_argument("--compact", action="store_true", help="write a checkpoint now")
    parser.add_argument("--gc", action="store_true",
                        help="park segments and blobs superseded by verified checkpoints in "
                        "events/archive/ (never deletes; keeps two verified checkpoints)")
    parser.add_argument("--repair", action="store_true",
                        help="offline repair: park unexplained corrupt bytes and bad "
                        "projections in events/quarantine/, rebuild meta and projections")
    parser.add_argument("--redact", nargs="+", type=int, metavar="SEQ",
                        help="replace the payloads of these records with a redaction marker "
                        "(the only rewrite of a sealed segment); needs --reason")
    parser.add_argument("--reason", help="why the records are redacted (kept in the journal)")
    parser.add_argument("--actor", default=DOCTOR_ACTOR,
                        help=f"who runs the repair or redaction (default {DOCTOR_ACTOR})")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def _export_parser(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "export", parents=[common], help="write a journal slice for another machine's store",
        description="Write a slice: a header (format, origin store id, seq range, counts, "
        "sha256 of the body) and every entity record after --since, with the blobs they "
        "reference. Give it to `agentjournal import` on another machine.",
    )
    parser.add_argument("--since", type=int, default=0, metavar="SEQ",
                        help="only records with a seq above SEQ (default 0: everything)")
    parser.add_argument("--out", metavar="FILE", help="write to FILE (default: stdout)")


def _import_parser(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "import", parents=[common], help="apply a slice exported by another store",
        description="Verify a slice whole (a damaged, truncated or foreign-format slice is "
        "refused and nothing is applied), then apply it in chunks, taking the store lock "
        "once per chunk. Idempotent and resumable: records already here are skipped. "
        "Conflicts (a rev that another store also wrote) are reported and resolved by "
        "last-writer-wins on (entity_rev, origin).",
    )
    parser.add_argument("file", help="the slice file ('-' reads stdin)")
    parser.add_argument("--chunk", type=int, default=limits.import_chunk_records, metavar="N",
                        help=f"records per lock hold (default {limits.import_chunk_records})")
    parser.add_argument("--init", action="store_true",
                        help="create the store first if there is none (as `init` would)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


# -- commands ---------------------------------------------------------------------------
@contextmanager
def progress_bar() -> Iterator[Callable[[str, int, int], None]]:
    """A rich progress bar on stderr, fed by journal_core's (phase, done, total) callbacks
    (records, entities, or bytes for a scan: the bar shows the share done). rich draws it
    only when stderr is a terminal; it goes away when the work is done."""
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

    tasks: dict[str, Any] = {}
    with Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                  transient=True, console=_console(stderr=True)) as bar:

        def report(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=max(total, 1))
            bar.update(tasks[phase], completed=done, total=max(total, 1))

        yield report


def cmd_doctor(args: argparse.Namespace) -> int:
    from .cli import open_existing

    if args.redact and not (args.reason or "").strip():
        sys.stderr.write("agentjournal doctor: --redact needs --reason TEXT\n")
        return 2
    if args.reason and not args.redact:
        sys.stderr.write("agentjournal doctor: --reason goes with --redact\n")
        return 2
    acts = bool(args.repair or args.redact or args.compact or args.gc)
    store = open_existing(args, writes=acts)
    try:
        actions: list[str] = []
        with progress_bar() as progress:
            if args.repair:
                actions += doctor.repair(store, args.actor, progress)
            if args.redact:
                actions += doctor.redact(store, args.redact, args.reason, args.actor)
            if args.compact:
                actions += doctor.compact(store, args.actor)
            if args.gc:
                actions += doctor.gc(store, args.actor, progress)
            report = doctor.diagnose(store, verify_journal=args.verify_journal,
                                     progress=progress)
        report.actions = actions
    finally:
        store.close()
    if args.json:
        sys.stdout.write(orjson.dumps(report.as_dict(), option=orjson.OPT_INDENT_2).decode())
        sys.stdout.write("\n")
    else:
        print_report(report)
    return report.exit_code


def print_report(report: doctor.Report) -> None:
    from rich.table import Table

    from .render import counter_label

    console = _console()
    for action in report.actions:
        console.print(f"[green]done[/green] {action}")
    table = Table(title=f"{report.store}: head seq {report.head_seq}, "
                  f"{report.segments} segment(s)", show_header=True)
    table.add_column("counter")
    table.add_column("count", justify="right")
    for name, value in report.counters.items():
        table.add_row(counter_label(name), str(value), style=None if value else "dim")
    console.print(table)
    if report.verified is not None:
        verified = report.verified
        base = verified["checkpoint"] or "the whole journal"
        console.print(f"[green]verified[/green] {verified['entities']} live entities at head "
                      f"seq {verified['head_seq']}: rebuilt from {base} (and "
                      f"{', '.join(verified['against'])}), compared with every projection")
    for checkpoint in report.checkpoints:
        mark = "[green]verified[/green]" if checkpoint["verified"] else \
            f"[yellow]{checkpoint['reason']}[/yellow]"
        console.print(f"checkpoint {checkpoint['file']} (seq {checkpoint['head_seq']}): {mark}")
    for finding in report.findings:
        style = LEVEL_STYLES.get(finding.level, "")
        console.print(f"[{style}]{finding.level:7}[/{style}] {finding.message}")
    verdict = "[green]healthy[/green]" if not report.problems else \
        f"[bold red]{len(report.problems)} problem(s)[/bold red]"
    console.print(verdict)


def cmd_export(args: argparse.Namespace) -> int:
    from .cli import UsageError, open_existing

    if args.since < 0:
        raise UsageError(f"--since {args.since} is negative; give a seq (0 exports everything)")
    out_path = args.out
    if out_path is not None:
        folder = os.path.dirname(os.path.abspath(out_path))
        if os.path.isdir(out_path):
            raise UsageError(f"--out {out_path} is a folder; give a file name, e.g. "
                             f"{os.path.join(out_path, 'slice.jsonl')}")
        if not os.path.isdir(folder):
            raise UsageError(f"--out {out_path}: the folder {folder} does not exist")
    store = open_existing(args)
    try:
        with progress_bar() as progress:
            if out_path is None:
                header = federation.write_slice(store, sys.stdout.buffer, args.since, progress)
                sys.stdout.flush()
            else:
                tmp = f"{out_path}.tmp.{os.getpid()}"
                try:
                    with open(tmp, "wb") as handle:
                        header = federation.write_slice(store, handle, args.since, progress)
                    os.replace(tmp, out_path)
                finally:
                    if os.path.exists(tmp):
                        os.unlink(tmp)
    finally:
        store.close()
    sys.stderr.write(f"exported {header['records']} record(s) and {header['blobs']} blob(s) "
                     f"from store {header['origin']} (seq {args.since + 1}.."
                     f"{header['head_seq']}){' to ' + out_path if out_path else ''}\n")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from .cli import create_store, init_location, open_existing

    if args.chunk < 1:
        sys.stderr.write("agentjournal import: --chunk must be at least 1\n")
        return 2
    if args.file == "-":
        slice_file = federation.spool_stdin(sys.stdin.buffer)
    else:
        try:
            slice_file = open(args.file, "rb")  # noqa: SIM115  (closed below)
        except OSError as exc:
            sys.stderr.write(f"agentjournal import: cannot read {args.file}: {exc.strerror}\n")
            return 2
    try:
        if args.init:
            made, _ = create_store(init_location(args))
            made.close()
        store = open_existing(args, writes=True)
        try:
            with progress_bar() as progress:
                result = federation.import_file(store, slice_file, chunk_records=args.chunk,
                                                progress=progress)
        finally:
            store.close()
    finally:
        slice_file.close()
    if args.json:
        sys.stdout.write(orjson.dumps(result.as_dict(), option=orjson.OPT_INDENT_2).decode())
        sys.stdout.write("\n")
        return 0
    console = _console()
    console.print(f"imported from store {result.origin}: {result.applied} applied, "
                  f"{result.skipped} already here, {result.chunks} chunk(s), "
                  f"{len(result.conflicts)} conflict(s)")
    for conflict in result.conflicts:
        console.print(f"[yellow]conflict[/yellow] {conflict['item_type']} {conflict['item_id']} "
                      f"rev {conflict['entity_rev']}: written by {conflict['incoming_origin']} "
                      f"and {', '.join(conflict['local_origins'])}; kept rev "
                      f"{conflict.get('kept_rev')} of {conflict.get('kept_origin')}")
    return 0


def _console(*, stderr: bool = False) -> Any:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "doctor": cmd_doctor, "export": cmd_export, "import": cmd_import,
}
