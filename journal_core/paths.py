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
from dataclasses import dataclass
from functools import lru_cache

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


def is_file_target(target: str) -> bool:
    return target.startswith(FILE_TARGET_PREFIX)


def parse_file_target(target: str) -> PathPattern:
    """``file:<path-or-glob>`` normalized, or InvalidArgument saying what is wrong."""
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


@lru_cache(maxsize=8192)
def _overlap(a: tuple[str, ...], b: tuple[str, ...]) -> str | None:
    found = _components_meet(a, 0, b, 0, {})
    return None if found is None else "/".join(found) or "."


def _components_meet(a: tuple[str, ...], i: int, b: tuple[str, ...], j: int,
                     memo: dict[tuple[int, int], list[str] | None]) -> list[str] | None:
    """A sequence of components matched by both a[i:] and b[j:], or None."""
    key = (i, j)
    if key in memo:
        return memo[key]
    memo[key] = None  # cycles through ** are cut here
    result: list[str] | None = None
    if i == len(a) and j == len(b):
        result = []
    elif i < len(a) and a[i] == DOUBLE_STAR:
        result = _components_meet(a, i + 1, b, j, memo)
        if result is None and j < len(b):
            result = _step_under_star(b[j], a, i, b, j + 1, memo)
    elif j < len(b) and b[j] == DOUBLE_STAR:
        result = _components_meet(a, i, b, j + 1, memo)
        if result is None and i < len(a):
            result = _step_under_star(a[i], a, i + 1, b, j, memo)
    elif i < len(a) and j < len(b):
        name = glob_meet(a[i], b[j])
        if name is not None:
            rest = _components_meet(a, i + 1, b, j + 1, memo)
            result = None if rest is None else [name, *rest]
    memo[key] = result
    return result


def _step_under_star(glob: str, a: tuple[str, ...], i: int, b: tuple[str, ...], j: int,
                     memo: dict[tuple[int, int], list[str] | None]) -> list[str] | None:
    """One component consumed by a ``**`` on one side and by ``glob`` on the other."""
    name = _witness(glob) if glob != DOUBLE_STAR else "x"
    if name is None:
        return None
    rest = _components_meet(a, i, b, j, memo)
    return None if rest is None else [name, *rest]


@lru_cache(maxsize=8192)
def glob_meet(a: str, b: str) -> str | None:
    """A component name matched by both single-component globs, or None."""
    return _tokens_meet(_tokens(a), 0, _tokens(b), 0, {})


def _witness(glob: str) -> str | None:
    return glob_meet(glob, "*")


def _tokens_meet(a: tuple[Token, ...], i: int, b: tuple[Token, ...], j: int,
                 memo: dict[tuple[int, int], str | None]) -> str | None:
    key = (i, j)
    if key in memo:
        return memo[key]
    memo[key] = None
    result: str | None = None
    if i == len(a) and j == len(b):
        result = ""
    elif i < len(a) and a[i] == _STAR:
        result = _tokens_meet(a, i + 1, b, j, memo)
        if result is None and j < len(b):
            result = _star_eats(b[j], a, i, b, j + 1, memo)
    elif j < len(b) and b[j] == _STAR:
        result = _tokens_meet(a, i, b, j + 1, memo)
        if result is None and i < len(a):
            result = _star_eats(a[i], a, i + 1, b, j, memo)
    elif i < len(a) and j < len(b):
        char = _char_meet(a[i], b[j])
        if char is not None:
            rest = _tokens_meet(a, i + 1, b, j + 1, memo)
            result = None if rest is None else char + rest
    if result is not None and i == 0 and j == 0 and result in ("", ".", ".."):
        result = None  # not a component name
    memo[key] = result
    return result


def _star_eats(token: Token, a: tuple[Token, ...], i: int, b: tuple[Token, ...], j: int,
               memo: dict[tuple[int, int], str | None]) -> str | None:
    char = _char_meet(token, _ANY) if token != _STAR else "x"
    if char is None:
        return None
    rest = _tokens_meet(a, i, b, j, memo)
    return None if rest is None else char + rest


CANDIDATE_CHARS = "x_-0aZ9.~"


def _char_meet(a: Token, b: Token) -> str | None:
    """A character both single-character tokens accept (never '/')."""
    for char in _candidates(a) + _candidates(b) + list(CANDIDATE_CHARS):
        if char != "/" and _accepts(a, char) and _accepts(b, char):
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
    return any(c in component for c in "*?[")
