"""Per-actor cursors (SPEC §7.3): ``cursors/<actor>.json`` holding ``{last_seq}``.

Cursors are a cache, not journaled. The file name encodes the actor so any actor string is
safe as a file name (``claude-code#3`` -> ``claude-code%233.json``).
"""

from __future__ import annotations

import os
from urllib.parse import quote

import orjson

from .fileio import FileIO

SAFE_CHARS = "-_.@+="


def cursor_file_name(actor: str) -> str:
    encoded = quote(actor, safe=SAFE_CHARS)
    if encoded.startswith("."):
        encoded = "%2E" + encoded[1:]
    return f"{encoded}.json"


class Cursors:
    def __init__(self, cursors_dir: str, fileio: FileIO) -> None:
        self.cursors_dir = cursors_dir
        self.fileio = fileio

    def path(self, actor: str) -> str:
        return os.path.join(self.cursors_dir, cursor_file_name(actor))

    def get(self, actor: str) -> int:
        data = self.fileio.read_file(self.path(actor))
        if not data:
            return 0
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError:
            return 0  # a damaged cursor only means events are shown again
        value = doc.get("last_seq") if isinstance(doc, dict) else None
        return value if isinstance(value, int) and value >= 0 else 0

    def set(self, actor: str, last_seq: int) -> None:
        doc = {"actor": actor, "last_seq": last_seq}
        data = orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
        self.fileio.mkdir(self.cursors_dir)
        self.fileio.write_atomic(self.path(actor), data, durable=False)
