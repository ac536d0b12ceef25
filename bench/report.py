"""Rows of the benchmark table: a measured value, its baseline, their ratio, the target and
whether it is met; percentiles; the table as text."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

TargetKind = Literal["ratio_max", "ratio_min", "value_max", "value_min"]


@dataclass(frozen=True)
class Target:
    """``ratio_max 2``: measured/baseline <= 2; ``value_max 1``: measured <= 1 in the row's
    unit; ``*_min`` likewise from below. ``text`` is what the table shows."""

    kind: TargetKind
    limit: float
    text: str
    ratio_min: float | None = None  # also at least this ratio to the baseline

    def met(self, value: float, ratio: float) -> bool:
        if self.ratio_min is not None and ratio < self.ratio_min:
            return False
        if self.kind == "ratio_max":
            return ratio <= self.limit
        if self.kind == "ratio_min":
            return ratio >= self.limit
        if self.kind == "value_max":
            return value <= self.limit
        return value >= self.limit


@dataclass
class Row:
    id: str
    name: str
    unit: str
    measured: float
    baseline: float
    baseline_name: str
    target: Target | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        return self.measured / self.baseline if self.baseline else math.inf

    @property
    def result(self) -> str:
        if self.target is None:
            return "info"
        return "pass" if self.target.met(self.measured, self.ratio) else "MISS"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["ratio"] = round(self.ratio, 3) if math.isfinite(self.ratio) else None
        data["target"] = self.target.text if self.target else None
        data["result"] = self.result
        data["measured"] = round(self.measured, 6)
        data["baseline"] = round(self.baseline, 6)
        return data


def percentile(values: list[float], point: float) -> float:
    """Nearest-rank percentile (``point`` in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, math.ceil(point / 100 * len(ordered)))
    return ordered[rank - 1]


def median(values: list[float]) -> float:
    return percentile(values, 50)


def fmt(value: float, unit: str) -> str:
    if unit == "events/s" or unit == "mutations/s":
        return f"{value:,.0f} {unit}"
    if value >= 100:
        return f"{value:,.0f} {unit}"
    if value >= 10:
        return f"{value:.1f} {unit}"
    return f"{value:.3g} {unit}"


COLUMNS = ("row", "measured", "baseline", "ratio", "target", "result")


def table_lines(rows: list[Row], *, markdown: bool = False) -> list[str]:
    """The rows as an aligned text table, or as a Markdown table."""
    cells = [
        (f"{row.id} {row.name}", fmt(row.measured, row.unit),
         f"{fmt(row.baseline, row.unit)} ({row.baseline_name})",
         f"{row.ratio:.2f}x" if math.isfinite(row.ratio) else "-",
         row.target.text if row.target else "-", row.result)
        for row in rows
    ]
    if markdown:
        lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
        return lines + ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |"
                        for r in cells]
    widths = [max(len(c[i]) for c in [COLUMNS, *cells]) for i in range(len(COLUMNS))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(COLUMNS, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    return lines
