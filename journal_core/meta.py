"""``events/meta.json``: the projections' watermarks (docs/design.md, "Projections").

``applied[family] = N`` says every change of that family up to seq N is in its projection
files. It is a cache of a cache: checksummed, overwritten in place, rebuilt (as zeros, which
makes the projector re-check every projection once) when missing or unreadable. It also
records the boot of the machine that wrote it (a power loss may keep meta and lose the
projection writes it covers, so the first projector of a new boot re-checks everything)
and, when projections are tracked in git, the stamp of the git index it last checked
against (a checkout or stash rewrites tracked projections behind the store's back).

Stores written before the journal kept its own position also kept ``next_seq`` and
``active_segment`` here; they are read and ignored.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any

import orjson

from .errors import SymlinkRefused
from .fileio import FileIO


@dataclass
class Meta:
    store_id: str
    applied: dict[str, int] = field(default_factory=dict)
    boot_id: str | None = None
    git_index: list[int] | None = None  # (mtime_ns, size, inode) of the checked git index

    def to_bytes(self) -> bytes:
        body: dict[str, Any] = {
            "applied": dict(sorted(self.applied.items())),
            "store_id": self.store_id,
        }
        if self.boot_id is not None:
            body["boot_id"] = self.boot_id
        if self.git_index is not None:
            body["git_index"] = self.git_index
        body["crc32"] = zlib.crc32(orjson.dumps(body, option=orjson.OPT_SORT_KEYS))
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
        index = body.get("git_index")
        return Meta(
            store_id=str(body["store_id"]), applied=applied,
            boot_id=str(body["boot_id"]) if body.get("boot_id") is not None else None,
            git_index=[int(x) for x in index] if isinstance(index, list) else None,
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def load_meta(fileio: FileIO, path: str, retries: int = 3) -> Meta | None:
    """Read meta; retry a few times since a concurrent in-place write may be mid-flight. A
    meta.json that is a link is never read (nor written): as good as missing."""
    for _ in range(retries):
        try:
            meta = parse_meta(fileio.read_file(path))
        except SymlinkRefused:
            return None
        if meta is not None:
            return meta
    return None
