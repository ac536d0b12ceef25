"""File reservations: claim targets ``file:<path-or-glob>`` and when two of them overlap.

A path is repository-relative and ``/``-separated. In a pattern, ``*`` matches any run of
characters within one path component, ``?`` one character, ``[abc]``/``[a-z]``/``[!x]`` one
character of (or not of) a set, and a component that is exactly ``**`` matches any number
of components (none included) -- as in gitignore patterns, anchored at the repository
root. A pattern that ends in ``/`` (``src/``) means that folder and everything under it.

A claim covers exactly the paths its pattern matches: ``file:src/app.py`` that file,
``file:src/`` (or ``file:src/**``) the folder and everything under it, ``file:src/*.py``
the .py files directly in src/. Two claims conflict when some path is covered by both: the
same path, a glob that matches in either direction, or an ancestor folder. ``overlap``
decides that exactly (over every possible path, not just the files that exist now) and
returns a witness path.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from . import limits
from .errors import InvalidArgument
from .vocabulary import FILE_TARGET_PREFIX

DOUBLE_STAR = "**"
_STAR = ("*",)
_ANY = ("?",)
Token = tuple[str, ...]  # ("*",) | ("?",) | ("c", char) | ("set", negated, chars...)


@dataclass(frozen=True, slots=True)
class PathPattern:
    """A normalized pattern: its text (as stored in the claim) and its components."""

    text: str
    components: tuple[str, ...]

    @property
    def is_glob(self) -> bool:
        return any(_has_magic(c) for c in self.components)


@lru_cache(maxsize=limits.path_patterns_cached)
def literal_prefix(pattern: PathPattern) -> tuple[str, ...]:
    """The components before the first one with a wildcard (all of a plain path's): every
    path the pattern covers starts with them."""
    for at, component in enumerate(pattern.components):
        if component == DOUBLE_STAR or _has_magic(component):
            return pattern.components[:at]
    return pattern.components


def is_file_target(target: str) -> bool:
    return target.startswith(FILE_TARGET_PREFIX)


def parse_file_target(target: str) -> PathPattern:
    """``file:<path-or-glob>`` normalized, or InvalidArgument saying what is wrong."""
    if not isinstance(target, str):
        return normalize(target)  # refused there, with the reason
    return _parse_file_target(target)


@lru_cache(maxsize=limits.path_patterns_cached)
def _parse_file_target(target: str) -> PathPattern:
    """A claim parses its target several times, and every claim near a hot file is checked
    against the same ones: a pattern is a frozen value, so each is parsed once."""
    raw = target[len(FILE_TARGET_PREFIX):] if is_file_target(target) else target
    return normalize(raw)


def normalize(raw: str) -> PathPattern:
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidArgument("a file target needs a path: 'file:<path>', e.g. file:src/app.py "
                              "or file:src/ (a folder) or file:src/**/*.py")
    text = raw.strip()
    if "\x00" in text:
        raise InvalidArgument("a file path may not hold a NUL character")
    if "\\" in text:
        raise InvalidArgument(f"file path {text[:80]!r}: use '/' between folders (paths are "
                              "repository-relative, as git shows them)")
    if text.startswith("/") or re.match(r"^[A-Za-z]:", text):
        raise InvalidArgument(f"file path {text[:80]!r} is absolute; give it relative to the "
                              "repository root (e.g. src/app.py)")
    folder = text.endswith("/")
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise InvalidArgument(f"file path {text[:80]!r} holds '..'; give it relative to the "
                              "repository root, without leaving it")
    if not parts:
        raise InvalidArgument(f"file path {text[:80]!r} names no file; use file:** for the "
                              "whole repository")
    if len(parts) > limits.file_path_components_max:
        raise InvalidArgument(f"file path has {len(parts)} components; at most "
                              f"{limits.file_path_components_max}")
    for part in parts:
        if part != DOUBLE_STAR and DOUBLE_STAR in part:
            raise InvalidArgument(f"file path {text[:80]!r}: '**' must be a whole component "
                                  "(src/**/x.py), not part of one")
        _tokens(part)  # a broken [set] is refused here
    merged: list[str] = []
    for part in parts:
        if not (part == DOUBLE_STAR and merged and merged[-1] == DOUBLE_STAR):
            merged.append(part)
    if folder and merged[-1] != DOUBLE_STAR:
        merged.append(DOUBLE_STAR)
    stored = "/".join(merged[:-1]) + "/" if folder else "/".join(merged)
    return PathPattern(stored, tuple(merged))


def file_target(pattern: PathPattern) -> str:
    return FILE_TARGET_PREFIX + pattern.text


# -- matching -----------------------------------------------------------------------------
def covers(pattern: PathPattern, path: str) -> bool:
    """Does a claim on ``pattern`` cover ``path``?"""
    components = tuple(p for p in path.split("/") if p not in ("", "."))
    return _covers(pattern.components, components)


@lru_cache(maxsize=4096)
def _covers(pattern: tuple[str, ...], path: tuple[str, ...]) -> bool:
    return _match_components(pattern, 0, path, 0, {})


def _match_components(pattern: tuple[str, ...], i: int, path: tuple[str, ...], j: int,
                      memo: dict[tuple[int, int], bool]) -> bool:
    key = (i, j)
    if key in memo:
        return memo[key]
    if i == len(pattern):
        result = j == len(path)
    elif pattern[i] == DOUBLE_STAR:
        result = _match_components(pattern, i + 1, path, j, memo) or (
            j < len(path) and _match_components(pattern, i, path, j + 1, memo))
    else:
        result = j < len(path) and _component_matches(pattern[i], path[j]) and \
            _match_components(pattern, i + 1, path, j + 1, memo)
    memo[key] = result
    return result


@lru_cache(maxsize=8192)
def _component_matches(glob: str, name: str) -> bool:
    return _regex(glob).fullmatch(name) is not None


@lru_cache(maxsize=4096)
def _regex(glob: str) -> re.Pattern[str]:
    out = []
    for token in _tokens(glob):
        if token == _STAR:
            out.append("[^/]*")
        elif token == _ANY:
            out.append("[^/]")
        elif token[0] == "c":
            out.append(re.escape(token[1]))
        else:
            chars = "".join(re.escape(c) for c in token[2:])
            out.append(f"[{'^' if token[1] == '!' else ''}{chars}]")
    return re.compile("".join(out))


# -- overlap ------------------------------------------------------------------------------
def overlap(a: PathPattern, b: PathPattern) -> str | None:
    """A path covered by claims on both patterns, or None when there is none."""
    return _overlap(a.components, b.components)


def overlaps(a: PathPattern, b: PathPattern) -> bool:
    return overlap(a, b) is not None


# Both meets below search the product of the two (or three) patterns breadth first: a state
# is one position in each; a step consumes one component (one character) on every side at
# once -- a ``**`` (``*``) stays where it is, anything else moves on -- and a ``**`` (``*``)
# may also be skipped without consuming. Which name (character) a step takes never changes
# the next state, so each state is visited once and the search is exact.
@lru_cache(maxsize=8192)
def _overlap(a: tuple[str, ...], b: tuple[str, ...]) -> str | None:
    start = (0, 0)
    came: dict[tuple[int, int], tuple[tuple[int, int], str | None] | None] = {start: None}
    queue = deque([start])
    while queue:
        state = queue.popleft()
        i, j = state
        if i == len(a) and j == len(b):
            return "/".join(_walk_back(came, state)) or "."
        moves: list[tuple[tuple[int, int], str | None]] = []
        if i < len(a) and a[i] == DOUBLE_STAR:
            moves.append(((i + 1, j), None))
        if j < len(b) and b[j] == DOUBLE_STAR:
            moves.append(((i, j + 1), None))
        if i < len(a) and j < len(b):
            name = _component_meet(a[i], b[j])
            if name is not None:
                moves.append(((i if a[i] == DOUBLE_STAR else i + 1,
                               j if b[j] == DOUBLE_STAR else j + 1), name))
        for nxt, name in moves:
            if nxt not in came:
                came[nxt] = (state, name)
                queue.append(nxt)
    return None


def _walk_back(came: dict[Any, Any], state: Any) -> list[str]:
    out: list[str] = []
    while came[state] is not None:
        state, taken = came[state]
        if taken is not None:
            out.append(taken)
    return out[::-1]


def _component_meet(a: str, b: str) -> str | None:
    if a == DOUBLE_STAR and b == DOUBLE_STAR:
        return "x"
    if a == DOUBLE_STAR:
        return glob_meet(b, "*")
    if b == DOUBLE_STAR:
        return glob_meet(a, "*")
    return glob_meet(a, b)


# A component name is anything but "", "." and "..": exactly what one of these matches.
_NAME_GLOBS = ("[!.]*", ".[!.]*", "..?*")


@lru_cache(maxsize=8192)
def glob_meet(a: str, b: str) -> str | None:
    """A component name matched by both single-component globs, or None."""
    for name_glob in _NAME_GLOBS:
        found = _tokens_meet((_tokens(a), _tokens(b), _tokens(name_glob)))
        if found is not None:
            return found
    return None


def _tokens_meet(sides: tuple[tuple[Token, ...], ...]) -> str | None:
    start = tuple(0 for _ in sides)
    came: dict[tuple[int, ...], tuple[tuple[int, ...], str | None] | None] = {start: None}
    queue = deque([start])
    while queue:
        state = queue.popleft()
        if all(at == len(side) for at, side in zip(state, sides, strict=True)):
            return "".join(_walk_back(came, state))
        moves: list[tuple[tuple[int, ...], str | None]] = []
        for k, (at, side) in enumerate(zip(state, sides, strict=True)):
            if at < len(side) and side[at] == _STAR:
                moves.append(((*state[:k], at + 1, *state[k + 1:]), None))
        if all(at < len(side) for at, side in zip(state, sides, strict=True)):
            tokens = [side[at] for at, side in zip(state, sides, strict=True)]
            char = _common_char(tokens)
            if char is not None:
                moves.append((tuple(at if side[at] == _STAR else at + 1
                                    for at, side in zip(state, sides, strict=True)), char))
        for nxt, char in moves:
            if nxt not in came:
                came[nxt] = (state, char)
                queue.append(nxt)
    return None


CANDIDATE_CHARS = "x_-0aZ9.~"


def _common_char(tokens: list[Token]) -> str | None:
    """A character every single-character token accepts (never '/')."""
    candidates = [c for token in tokens for c in _candidates(token)] + list(CANDIDATE_CHARS)
    for char in candidates:
        if char != "/" and all(_accepts(token, char) for token in tokens):
            return char
    excluded = {c for token in tokens if token[0] == "set" for c in token[2:]}
    for code in range(0x100, 0x200):  # characters beyond the ones the tokens name
        char = chr(code)
        if char not in excluded and all(_accepts(token, char) for token in tokens):
            return char
    return None


def _candidates(token: Token) -> list[str]:
    if token[0] == "c":
        return [token[1]]
    if token[0] == "set" and token[1] != "!":
        return list(token[2:])
    return []


def _accepts(token: Token, char: str) -> bool:
    if token in (_ANY, _STAR):
        return True
    if token[0] == "c":
        return token[1] == char
    inside = char in token[2:]
    return not inside if token[1] == "!" else inside


@lru_cache(maxsize=4096)
def _tokens(glob: str) -> tuple[Token, ...]:
    """A component glob as tokens; a ``[`` that never closes is an error."""
    tokens: list[Token] = []
    i = 0
    while i < len(glob):
        char = glob[i]
        if char == "*":
            if not tokens or tokens[-1] != _STAR:
                tokens.append(_STAR)
        elif char == "?":
            tokens.append(_ANY)
        elif char == "[":
            end, token = _char_set(glob, i)
            tokens.append(token)
            i = end
        else:
            tokens.append(("c", char))
        i += 1
    return tuple(tokens)


def _char_set(glob: str, start: int) -> tuple[int, Token]:
    i = start + 1
    negated = i < len(glob) and glob[i] in "!^"
    if negated:
        i += 1
    chars: list[str] = []
    first = True
    while i < len(glob) and (glob[i] != "]" or first):
        if i + 2 < len(glob) and glob[i + 1] == "-" and glob[i + 2] != "]":
            low, high = glob[i], glob[i + 2]
            if ord(high) - ord(low) > limits.glob_range_chars_max or high < low:
                raise InvalidArgument(f"character range {low}-{high} in {glob!r} is too wide "
                                      "or backwards")
            chars.extend(chr(c) for c in range(ord(low), ord(high) + 1))
            i += 3
        else:
            chars.append(glob[i])
            i += 1
        first = False
    if i >= len(glob):
        raise InvalidArgument(f"pattern {glob!r}: '[' without its closing ']'")
    return i, ("set", "!" if negated else "", *sorted(set(chars)))


def _has_magic(component: str) -> bool:
    return "*" in component or "?" in component or "[" in component
