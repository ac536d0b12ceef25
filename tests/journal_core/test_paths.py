"""File reservations: path normalization, overlap, and the claim index that finds overlaps.

- ``overlap(a, b)`` is symmetric, and whenever some concrete path is covered by both
  patterns it finds one (a witness both cover) -- so a path claimed under a glob is refused
  to everyone else whenever some file path matches both.
- The claim index (a trie of literal prefixes) answers exactly what a scan of every file
  claim with ``overlap`` answers.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from journal_core import InvalidArgument
from journal_core.claim_index import ClaimIndex
from journal_core.paths import covers, literal_prefix, normalize, overlap

QUICK = settings(max_examples=400, deadline=None, database=None,
                 suppress_health_check=[HealthCheck.too_slow])

NAMES = st.sampled_from(["a", "b", "src", "app.py", "x.md", "test_a.py", "ab"])
GLOBS = st.sampled_from(["*", "*.py", "a*", "?", "[ab]", "[!a]*", "**", "test_*.py", "*b"])
COMPONENT = st.one_of(NAMES, NAMES, GLOBS)


@st.composite
def patterns(draw: st.DrawFn) -> str:
    parts = draw(st.lists(COMPONENT, min_size=1, max_size=4))
    text = "/".join(parts)
    return text + "/" if draw(st.booleans()) and parts[-1] != "**" else text


PATHS = st.lists(NAMES, min_size=1, max_size=5).map("/".join)


@QUICK
@given(patterns(), patterns())
def test_overlap_is_symmetric(a: str, b: str) -> None:
    first, second = normalize(a), normalize(b)
    assert (overlap(first, second) is None) == (overlap(second, first) is None)


@QUICK
@given(patterns(), patterns())
def test_a_witness_is_a_path_both_patterns_cover(a: str, b: str) -> None:
    first, second = normalize(a), normalize(b)
    witness = overlap(first, second)
    if witness is not None:
        assert covers(first, witness) and covers(second, witness), witness


@QUICK
@given(patterns(), patterns(), PATHS)
def test_a_path_covered_by_both_means_they_overlap(a: str, b: str, path: str) -> None:
    first, second = normalize(a), normalize(b)
    if covers(first, path) and covers(second, path):
        assert overlap(first, second) is not None


@QUICK
@given(patterns(), PATHS)
def test_every_covered_path_starts_with_the_literal_prefix(a: str, path: str) -> None:
    pattern = normalize(a)
    if covers(pattern, path):
        prefix = literal_prefix(pattern)
        assert tuple(path.split("/"))[:len(prefix)] == prefix


def claim(item_id: str, targets: list[str]) -> Any:
    class Entity:
        pass

    entity = Entity()
    entity.item_id = item_id  # type: ignore[attr-defined]
    entity.payload = {"status": "active", "holder": "h", "target": targets[0],  # type: ignore[attr-defined]
                      "targets": targets}
    return entity


@settings(QUICK, max_examples=1500)
@given(st.lists(st.lists(patterns(), min_size=1, max_size=3), max_size=8), patterns(),
       st.data())
def test_the_claim_index_finds_exactly_what_a_scan_finds(
    held: list[list[str]], wanted: str, data: st.DataObject,
) -> None:
    index = ClaimIndex()
    live: dict[str, list[str]] = {}
    for number, targets in enumerate(held):
        item_id = f"clm_{number:016d}"
        payload_targets = [f"file:{normalize(t).text}" for t in targets]
        index.update(None, claim(item_id, payload_targets))
        live[item_id] = payload_targets
    for item_id in data.draw(st.lists(st.sampled_from(sorted(live)), unique=True)) \
            if live else []:
        entity = claim(item_id, live.pop(item_id))
        before = entity.payload
        entity.payload = None
        index.update(before, entity)  # released: out of the index
    mine = normalize(wanted)
    expected = sorted(
        item_id for item_id, targets in live.items()
        if any(overlap(mine, normalize(t[len("file:"):])) is not None for t in targets))
    assert [item_id for item_id, _ in index.colliding(f"file:{mine.text}")] == expected
    assert [item_id for item_id, _, _ in index.overlapping_paths(mine)] == expected


@pytest.mark.parametrize(("raw", "stored"), [
    ("./src//app.py", "src/app.py"), ("src/", "src/"), ("src/**", "src/**"),
    ("src/**/**/a.py", "src/**/a.py"), ("a/./b", "a/b"),
])
def test_paths_are_normalized(raw: str, stored: str) -> None:
    assert normalize(raw).text == stored


@pytest.mark.parametrize("raw", ["../x", "a/../b", "/abs", "a\\b", "a\x00b", "", "  ",
                                 "src/**x", "src/[ab"])
def test_a_bad_path_is_refused(raw: str) -> None:
    with pytest.raises(InvalidArgument):
        normalize(raw)
