"""Per-actor cursors (docs/design.md, "Cursors"): ``cursors/<name>.json`` holding the actor
and its ``last_seq``.

Cursors are a cache, not journaled: a lost cursor only means events are shown again. The
file name encodes the actor so any actor string is safe as a file name
(``claude-code#3`` -> ``claude-code%233.json``); a name that would not fit a file name
(255 bytes) is cut and made unique by the sha256 of the whole actor. The file holds the
actor, and a file that holds another actor is never taken for this one's.

A cursor only moves forward. ``advance`` takes a flock on the cursor's own file for its
read-compare-write, so two servers of one actor acking at once never move it back and
never wait for the store lock.
"""

from __future__ import annotations

import hashlib
import os
from typing import Protocol
from urllib.parse import quote

import orjson
import portalocker

from . import limits
from .errors import SymlinkRefused
from .fileio import FileIO

SAFE_CHARS = "-_.@+="


class CursorStore(Protocol):
    def get(self, actor: str) -> int: ...
    def advance(self, actor: str, last_seq: int) -> int: ...


def cursor_file_name(actor: str) -> str:
    encoded = quote(actor, safe=SAFE_CHARS)
    if encoded.startswith("."):
        encoded = "%2E" + encoded[1:]
    if len(encoded) + len(".json") > limits.cursor_file_name_bytes_max:
        digest = hashlib.sha256(actor.encode("utf-8")).hexdigest()
        keep = limits.cursor_file_name_bytes_max - len(".json") - len(digest) - 1
        cut = encoded[:keep]
        escape = cut.rfind("%", max(0, len(cut) - 2))  # never end inside a %XX escape
        encoded = (cut[:escape] if escape >= 0 else cut) + "~" + digest
    return f"{encoded}.json"


class LocalCursors:
    def __init__(self, cursors_dir: str, fileio: FileIO) -> None:
        self.cursors_dir = cursors_dir
        self.fileio = fileio

    def path(self, actor: str) -> str:
        return os.path.join(self.cursors_dir, cursor_file_name(actor))

    def get(self, actor: str) -> int:
        try:
            data = self.fileio.read_file(self.path(actor))
        except SymlinkRefused:
            return 0  # never read through a link (advance refuses to write through it)
        return _parse(data, actor)

    def advance(self, actor: str, last_seq: int) -> int:
        """Move the cursor to ``last_seq`` unless it is already there or past; the result."""
        self.fileio.mkdir(self.cursors_dir)
        path = self.path(actor)
        fd = self.fileio.open_lock(path, create=True)
        try:
            with os.fdopen(os.dup(fd), "r+b", buffering=0) as handle:
                portalocker.lock(handle, portalocker.LOCK_EX)
                try:
                    current = _parse(self.fileio.pread(fd, limits.cursor_file_bytes_max, 0, path),
                                     actor)
                    if last_seq <= current:
                        return current
                    doc = {"actor": actor, "last_seq": last_seq}
                    data = orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
                    self.fileio.write_in_place(path, data + b"\n")
                    return last_seq
                finally:
                    portalocker.unlock(handle)
        finally:
            self.fileio.close(fd)


def _parse(data: bytes | None, actor: str) -> int:
    if not data:
        return 0
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError:
        return 0  # a damaged cursor only means events are shown again
    if not isinstance(doc, dict) or doc.get("actor", actor) != actor:
        return 0  # another actor's file (a cut name): never ours
    value = doc.get("last_seq")
    return value if isinstance(value, int) and value >= 0 else 0
