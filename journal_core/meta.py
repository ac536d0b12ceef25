"""meta.json (SPEC §4): a checksummed cache of next_seq, watermarks and the active segment.

It is never the truth. Writers overwrite it in place after every mutation (cheap; a torn
copy fails its checksum), and atomically (temp, fsync, rename, fsync folder) when it is
rebuilt or when a segment rolls. Anything unreadable is rebuilt from the journal.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any

import orjson

from .fileio import FileIO


@dataclass
class Meta:
    store_id: str
    next_seq: int
    active_segment: str
    applied: dict[str, int] = field(default_factory=dict)
    boot_id: str | None = None  # the boot of the machine that last wrote it (see Store)
    rebuilt: bool = False  # made from the journal, not read: write it atomically
    rolled: bool = False  # the active segment changed: write it atomically
    rebooted: bool = False  # read, but written in an earlier boot: write it atomically

    def to_bytes(self) -> bytes:
        body = {
            "active_segment": self.active_segment,
            "applied": dict(sorted(self.applied.items())),
            "next_seq": self.next_seq,
            "store_id": self.store_id,
        }
        if self.boot_id is not None:
            body["boot_id"] = self.boot_id
        checksum = zlib.crc32(orjson.dumps(body, option=orjson.OPT_SORT_KEYS))
        body["crc32"] = checksum
        return orjson.dumps(body, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2) + b"\n"


def parse_meta(data: bytes | None) -> Meta | None:
    """A Meta, or None when missing, unparseable, or failing its checksum."""
    if not data:
        return None
    try:
        body: dict[str, Any] = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(body, dict):
        return None
    checksum = body.pop("crc32", None)
    if checksum != zlib.crc32(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)):
        return None
    try:
        applied = {str(k): int(v) for k, v in body["applied"].items()}
        return Meta(
            store_id=str(body["store_id"]),
            next_seq=int(body["next_seq"]),
            active_segment=str(body["active_segment"]),
            applied=applied,
            boot_id=str(body["boot_id"]) if body.get("boot_id") is not None else None,
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def load_meta(fileio: FileIO, path: str, retries: int = 3) -> Meta | None:
    """Read meta; retry a few times since a concurrent in-place write may be mid-flight."""
    for _ in range(retries):
        meta = parse_meta(fileio.read_file(path))
        if meta is not None:
            return meta
    return None
