"""bench/ keeps running: every row at tiny sizes, checked for the shape of its results only.
No timing is asserted here (speed lives in bench/, and its figures are ratios)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench import rows  # noqa: E402
from bench.report import table_lines  # noqa: E402
from bench.run import main, results_document, run_bench  # noqa: E402

ROW_KEYS = {"id", "name", "unit", "measured", "baseline", "baseline_name", "ratio", "target",
            "result", "details"}
EXPECTED_IDS = ["1a", "1b", "2a", "2b", "3a", "3b", "4", "5a", "5b", "5c", "6",
                "7a", "7b", "7c", "8a", "8b", "9", "10a", "10b", "11a", "11b", "11c",
                "12", "13", "14a", "14b", "14c"]
POSTGRES_IDS = ["15a", "15b", "15c", "15d"]  # left out where no PostgreSQL is reachable


def test_every_row_runs_at_tiny_sizes_and_reports_a_ratio_to_its_baseline(
    tmp_path: Path,
) -> None:
    found = run_bench(rows.TINY, str(tmp_path), list(rows.ROWS), lambda _: None)
    from bench import postgres

    expected = EXPECTED_IDS + (POSTGRES_IDS if postgres.missing() is None else [])
    assert [row.id for row in found] == expected
    for row in found:
        assert row.measured > 0 and row.baseline > 0, row
        assert math.isfinite(row.ratio) and row.ratio > 0, row
        assert row.result in ("pass", "MISS", "info"), row
        assert (row.target is None) == (row.result == "info"), row
    document = results_document(found, rows.TINY, str(tmp_path), "python bench/run.py", 1.0)
    data = orjson.loads(orjson.dumps(document))
    assert {"cpu_count", "python", "fs_type"} <= set(data["machine"])
    assert {"git_commit", "engine_changed"} <= set(data["engine"])
    assert all(set(row) == ROW_KEYS for row in data["rows"])
    lines = table_lines(found)
    assert len(lines) == 2 + len(found)
    assert len(table_lines(found, markdown=True)) == 2 + len(found)


def test_the_command_line_writes_results_and_prints_the_table(
    tmp_path: Path, capsys: object,
) -> None:
    out = tmp_path / "results.json"
    original = rows.QUICK
    rows.QUICK = rows.TINY  # the command's own plumbing, at tiny sizes
    try:
        code = main(["--quick", "--only", "1,4", "--dir", str(tmp_path), "--out", str(out)])
    finally:
        rows.QUICK = original
    assert code == 0
    data = orjson.loads(out.read_bytes())
    assert [row["id"] for row in data["rows"]] == ["1a", "1b", "4"]
    assert data["command"].startswith("python bench/run.py --quick")
    assert not list(tmp_path.glob("agentjournal-bench-*")), "the temp folder is removed"


def test_help_names_every_row() -> None:
    import contextlib
    import io

    text = io.StringIO()
    with contextlib.redirect_stdout(text), contextlib.suppress(SystemExit):
        main(["--help"])
    for key in rows.ROWS:
        assert f"\n  {key}  " in text.getvalue()
