"""Identifiers: entity ids, the writer id of this process, actor names."""

from __future__ import annotations

import os
import re
import secrets

from . import limits
from .errors import InvalidArgument
from .vocabulary import FAMILIES, FAMILY_PREFIXES

ITEM_ID_PATTERN = re.compile(rf"^[a-z0-9_]{{1,{limits.item_id_chars_max}}}$")
WRITER_PATTERN = re.compile(r"^w_[0-9]+-[0-9a-f]{12}$")
ACTOR_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f]")

__all__ = ["FAMILIES", "FAMILY_PREFIXES", "check_actor", "check_family", "check_item_id",
           "new_item_id", "writer_id"]


def new_item_id(family: str) -> str:
    return FAMILY_PREFIXES[family] + secrets.token_hex(8)


def check_item_id(family: str, item_id: object) -> str:
    """An id becomes a file name: only ``[a-z0-9_]``, bounded, with the family's prefix."""
    if not isinstance(item_id, str) or not ITEM_ID_PATTERN.fullmatch(item_id):
        raise InvalidArgument(
            f"invalid {family} id {item_id!r}: ids are 1-{limits.item_id_chars_max} "
            "characters of [a-z0-9_]"
        )
    prefix = FAMILY_PREFIXES[family]
    if not item_id.startswith(prefix):
        raise InvalidArgument(f"invalid {family} id {item_id!r}: {family} ids start with {prefix}")
    return item_id


def check_family(family: object) -> str:
    if family not in FAMILY_PREFIXES:
        raise InvalidArgument(
            f"unknown item type {family!r}: expected one of {', '.join(FAMILIES)}"
        )
    return str(family)


def check_actor(actor: object) -> str:
    if not isinstance(actor, str) or not actor.strip():
        raise InvalidArgument("actor must be a non-empty string (for example 'claude-code#3')")
    if len(actor) > limits.actor_chars_max or ACTOR_FORBIDDEN.search(actor):
        raise InvalidArgument(
            f"invalid actor {actor[:40]!r}: at most {limits.actor_chars_max} printable characters"
        )
    try:
        actor.encode("utf-8")  # it is written into records, lock notes and cursor names
    except UnicodeEncodeError:
        raise InvalidArgument(
            f"invalid actor {actor[:40]!r}: not valid unicode (a lone surrogate)"
        ) from None
    return actor


class _WriterId:
    """``w_<pid>-<12 hex>``: chosen at process start, chosen anew in a forked child."""

    def __init__(self) -> None:
        self.value = ""
        self.reset()

    def reset(self) -> None:
        self.value = f"w_{os.getpid()}-{secrets.token_hex(6)}"


WRITER = _WriterId()
os.register_at_fork(after_in_child=WRITER.reset)


def writer_id() -> str:
    return WRITER.value
