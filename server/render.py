"""Human output of the CLI: the status table and one line per journal record (``tail``)."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from journal_core import limits

ACTION_STYLES = {
    "create": "green", "claim": "yellow", "complete": "bold green", "release_claim": "yellow",
    "update": "cyan", "delete": "red", "journal_note": "dim", "checkpoint_ref": "dim",
    "seq_repair": "red",
}
SUMMARY_CHARS_MAX = limits.render_summary_chars_max


def record_line(record: dict[str, Any]) -> Text:
    """``    42 18:46:13 alice        claim         claim   clm_… alice claimed file:x``"""
    ts = str(record.get("ts", ""))
    clock = ts[11:19] if len(ts) >= 19 else ts
    summary = " ".join(str(record.get("summary") or "").split())
    if len(summary) > SUMMARY_CHARS_MAX:
        summary = summary[: SUMMARY_CHARS_MAX - 1] + "…"
    action = str(record.get("action", ""))
    line = Text(no_wrap=True)
    line.append(f"{record.get('seq', 0):>7} ", style="bold")
    line.append(f"{clock} ", style="dim")
    line.append(f"{record.get('actor', '')!s:<18} ", style="magenta")
    line.append(f"{action:<14}", style=ACTION_STYLES.get(action, ""))
    line.append(f"{record.get('item_type', '')!s:<8}")
    line.append(f"{record.get('item_id') or '-'!s:<22} ", style="blue")
    line.append(summary)
    return line


def status_view(status: dict[str, Any]) -> Group:
    """The ``journal_status`` answer as two tables: the journal, then the doctor counters."""
    journal = Table(title="agentjournal store", show_header=False, title_justify="left")
    journal.add_column("what", style="bold")
    journal.add_column("value")
    segments = status["segments"]
    checkpoint = status.get("checkpoint")
    journal.add_row("store", str(status["store"]))
    if status.get("location"):
        journal.add_row("layout", str(status["location"]))
    journal.add_row("store id", str(status["store_id"]))
    if status.get("read_only"):
        journal.add_row("read-only", "yes: it can be inspected, nothing can be written")
    journal.add_row("head seq", str(status["head_seq"]))
    if status.get("backend", "local") == "local":
        journal.add_row("segments", f"{segments['count']} ({human_bytes(segments['bytes'])}), "
                                    f"active {segments.get('active') or '-'}")
    else:  # a database keeps the journal as rows of a table, not as segment files
        journal.add_row("journal", f"{status['backend']}: {human_bytes(segments['bytes'])} "
                                   "of records")
    journal.add_row("checkpoint", f"{checkpoint['file']} (seq {checkpoint['head_seq']}, "
                                  f"{human_bytes(checkpoint['bytes'])})" if checkpoint else "none")
    origins = status.get("origins") or {}
    journal.add_row("origins", ", ".join(f"{o} (seq {n})" for o, n in origins.items()) or "none")
    journal.add_row("live", ", ".join(f"{n} {family}" for family, n in status["live"].items()))
    counters = Table(title="doctor counters", title_justify="left")
    counters.add_column("counter")
    counters.add_column("count", justify="right")
    for name, value in status["counters"].items():
        style = "red bold" if value else "dim"
        counters.add_row(counter_label(name), Text(str(value), style=style))
    return Group(journal, counters)


def counter_label(name: str) -> str:
    """How a doctor counter is spelled in every table (``status`` and ``doctor``); JSON keeps
    the field name (``rev_gaps``)."""
    return name.replace("_", " ")


def human_bytes(count: int) -> str:
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{count} B"
