"""Segment files: named by the first seq they hold, never renamed."""

from __future__ import annotations

import bisect
import re

from . import limits

SEGMENT_PATTERN = re.compile(rf"^seg-(\d{{{limits.segment_name_digits}}})\.jsonl$")


def segment_name(first_seq: int) -> str:
    return f"seg-{first_seq:0{limits.segment_name_digits}d}.jsonl"


def parse_segment_name(name: str) -> int | None:
    match = SEGMENT_PATTERN.fullmatch(name)
    return int(match.group(1)) if match else None


def list_segments(names: list[str]) -> list[int]:
    """First seqs of the segment files among ``names``, ascending."""
    firsts = [parse_segment_name(name) for name in names]
    return sorted(first for first in firsts if first is not None)


def segment_for_seq(firsts: list[int], seq: int) -> int | None:
    """The segment that would hold ``seq``: the last one whose first seq is <= seq."""
    index = bisect.bisect_right(firsts, seq) - 1
    return firsts[index] if index >= 0 else None
