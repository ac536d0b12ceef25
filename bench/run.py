"""Benchmarks of the performance targets, each a ratio to a baseline measured in the same run.

    python bench/run.py [--quick] [--out bench/results.json] [--dir DIR] [--only 1,3]

Prints the table on stdout, progress on stderr, and writes the results (rows, sizes,
machine) as JSON. See bench/README.md for what each row measures and against what.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import orjson  # noqa: E402

from bench import rows as bench_rows  # noqa: E402
from bench.report import Row, table_lines  # noqa: E402
from bench.workload import fs_type  # noqa: E402

OUT_DEFAULT = REPO / "bench" / "results.json"
DESCRIPTION = """\
Benchmarks of the performance targets (docs/design.md). Every figure is reported with a
baseline measured in the same run on the same disk (all files in one temp folder beside
the repository, or under --dir):

  1  claim latency in process, p50/p99      vs os.write+os.fsync of the same bytes (≤ 2x)
  2  durable mutations/s, 1 and 8 writers   vs SQLite WAL synchronous=FULL (≥ 1x)
  3  get via MCP in memory / over stdio     vs Store.entity_view / a no-op tool (≤ 1 ms)
  4  read_unseen events/s                   vs orjson.loads of the lines (≥ 100k/s)
  5  cold open + first read of 100k events, rebuild from checkpoint + 8 MiB tail, rebuild
     from segments only                     vs reading the bytes (< 1 s)
  6  claim p50 on a 1M- vs a 1k-event store (≤ 1.5x)
  7  lock wait p50/p95/p99, 16 agent processes (p95 < 50 ms)
  8  wait woken by another process's commit, p50/p99
                                            vs a raw inotify wake over a pipe (< 100/500 ms)
  9  CPU of 10 stdio servers each waiting, 20 s
                                            vs the same servers answering one call (< 1 %)
  10  agentjournal hook on a 100k-event store, in process and as a command
                                            vs opening the store / importing journal_core
  11  dashboard: the board of 50 plans + 500 memory items rendered server-side (≤ 50 ms
     p50) vs queries.list_items; its page weight (< 200 KB); commit to live feed (≤ 1 s)
  12  durable mutations/s, 16 clients of one HTTP server
                                            vs the same server with 1 client (≥ 4x)
  13  claim over a stdio server, p50        vs a no-op tool over stdio + write+fsync (≤ 1.3x)
  14  peak memory of export, import, doctor --verify-journal on a 60k-event (68 MB) store
                                            vs a Python importing the CLI (≤ 100 MB each)
  15  PostgreSQL: claim p50 vs a raw INSERT + COMMIT (≤ 2x); 8 writer processes vs 8 of
     raw INSERT + COMMIT (≥ 0.5x); wait woken through NOTIFY, p50/p99 (left out without
     a database: $AGENTJOURNAL_BENCH_POSTGRES, else 127.0.0.1:5432/test)

The full run takes about 13-17 minutes (most of it building the 1M-event store; rows 12-15 add
a few); --quick (about 4 minutes) uses 20k events for rows 4-5 and 10, 100k for row 6 and
15k for row 14."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python bench/run.py", description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="smaller stores and shorter runs (about 3 minutes)")
    parser.add_argument("--out", type=Path, default=OUT_DEFAULT,
                        help=f"results JSON (default: {OUT_DEFAULT.relative_to(REPO)})")
    parser.add_argument("--dir", type=Path, default=None,
                        help="make the temp folder here (default: beside the repository); "
                        "it decides which disk is measured")
    parser.add_argument("--only", default=",".join(bench_rows.ROWS),
                        help="comma-separated rows to run (default: all)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temp folder (stores, baseline files) afterwards")
    return parser.parse_args(argv)


def make_progress() -> Callable[[str], None]:
    started = time.monotonic()

    def progress(message: str) -> None:
        sys.stderr.write(f"[{time.monotonic() - started:7.1f}s] {message}\n")
        sys.stderr.flush()

    return progress


def run_bench(sizes: bench_rows.Sizes, workdir: str, only: list[str],
              progress: Callable[[str], None]) -> list[Row]:
    """Run the chosen rows in ``workdir``; every store and baseline file lives there."""
    workspace = bench_rows.Workspace(workdir, progress)
    results: list[Row] = []
    for key in only:
        measure = bench_rows.ROWS[key]
        progress(f"row {key}: {bench_rows.TITLES[key]}")
        started = time.monotonic()
        bench_rows.settle()
        found = measure(workspace, sizes)
        for row in found:
            row.details["row_s"] = round(time.monotonic() - started, 1)
            progress(f"  {row.id} {row.name}: {row.measured:.4g} {row.unit} vs "
                     f"{row.baseline:.4g} ({row.ratio:.2f}x) -> {row.result}")
        results.extend(found)
    return results


def engine_version() -> dict[str, Any]:
    """The commit, and whether the engine or the server differ from it (uncommitted)."""
    return {"git_commit": _git("rev-parse", "HEAD"),
            "git_dirty": bool(_git("status", "--porcelain", "--", "journal_core", "server"))}


def machine_info(workdir: str) -> dict[str, Any]:
    usage = shutil.disk_usage(workdir)
    return {
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "bench_dir": workdir,
        **fs_type(workdir),
        "disk_free_bytes": usage.free,
    }


def _git(*args: str) -> str:
    try:
        found = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True,
                               check=False, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return found.stdout.strip()


def results_document(rows: list[Row], sizes: bench_rows.Sizes, workdir: str,
                     command: str, duration_s: float,
                     engine_at_start: dict[str, Any] | None = None) -> dict[str, Any]:
    """The results; ``engine_changed`` says the code measured changed during the run (the
    rows before and after the change measured different engines)."""
    engine_at_end = engine_version()
    engine_at_start = engine_at_start or engine_at_end
    return {
        "command": command,
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "duration_s": round(duration_s, 1),
        "sizes": sizes.__dict__,
        "machine": machine_info(workdir),
        "engine": {**engine_at_start,
                   "engine_changed": _engine_diff(engine_at_start, engine_at_end)},
        "rows": [row.to_json() for row in rows],
    }


def _engine_diff(start: dict[str, Any], end: dict[str, Any]) -> bool:
    if start["git_dirty"] or end["git_dirty"]:
        return start != end or bool(end["git_dirty"])
    if start["git_commit"] == end["git_commit"]:
        return False
    return bool(_git("diff", "--name-only", start["git_commit"], end["git_commit"], "--",
                     "journal_core", "server"))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    only = [key.strip() for key in args.only.split(",") if key.strip()]
    unknown = [key for key in only if key not in bench_rows.ROWS]
    if unknown:
        sys.stderr.write(f"unknown rows {unknown}; rows are {', '.join(bench_rows.ROWS)}\n")
        return 2
    sizes = bench_rows.QUICK if args.quick else bench_rows.FULL
    parent = args.dir or REPO.parent
    parent.mkdir(parents=True, exist_ok=True)
    workdir = tempfile.mkdtemp(prefix="agentjournal-bench-", dir=parent)
    progress = make_progress()
    progress(f"{sizes.name} run in {workdir}")
    started = time.monotonic()
    engine_at_start = engine_version()
    try:
        rows = run_bench(sizes, workdir, only, progress)
        command = shlex.join(["python", "bench/run.py", *(argv if argv is not None
                                                          else sys.argv[1:])])
        document = results_document(rows, sizes, workdir, command, time.monotonic() - started,
                                    engine_at_start)
    finally:
        if args.keep:
            progress(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n")
    print("\n".join(table_lines(rows)))
    if document["engine"]["engine_changed"]:
        progress("WARNING: journal_core/ or server/ changed during the run")
    progress(f"wrote {args.out} ({document['duration_s']:.0f}s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
