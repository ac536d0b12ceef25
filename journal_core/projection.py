"""Projections (SPEC §2, §7.2): ``state/<family>/<item_id>.json``, healed from the journal.

A projection is pretty JSON with sorted keys: the entity's payload, its rev and the store
that wrote that rev (no local seq, so stores that converged hold byte-identical projections).
The never-regress guard: a reconcile never overwrites a projection holding a higher
``(entity_rev, origin)``, nor an equal one (its ephemeral fields may be newer than the
journal's). Only a mutation's own ephemeral change writes at an equal rev. An unparseable
projection is never unlinked.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import orjson

from .fileio import FileIO
from .ids import FAMILIES
from .replay import EntityState

PROJECTION_OPTIONS = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS


@dataclass
class ProjectionRead:
    status: str  # "ok" | "missing" | "unreadable"
    doc: dict[str, Any] | None = None

    @property
    def rev(self) -> int | None:
        return self.doc["entity_rev"] if self.doc is not None else None


class Projections:
    def __init__(self, state_dir: str, fileio: FileIO) -> None:
        self.state_dir = state_dir
        self.fileio = fileio
        self.divergent = 0  # projections found ahead of the journal (doctor error)
        self.unreadable = 0
        self.written = 0
        self.local_origin = ""  # this store's id: the origin of its own records

    def ensure_dirs(self) -> None:
        for family in FAMILIES:
            self.fileio.mkdir(os.path.join(self.state_dir, family))

    def path(self, family: str, item_id: str) -> str:
        return os.path.join(self.state_dir, family, f"{item_id}.json")

    def ids(self, family: str) -> list[str]:
        names = self.fileio.listdir(os.path.join(self.state_dir, family))
        return sorted(name[:-5] for name in names if name.endswith(".json"))

    def read(self, family: str, item_id: str) -> ProjectionRead:
        data = self.fileio.read_file(self.path(family, item_id))
        if data is None:
            return ProjectionRead("missing")
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError:
            return ProjectionRead("unreadable")
        if not isinstance(doc, dict) or not isinstance(doc.get("entity_rev"), int):
            return ProjectionRead("unreadable")
        return ProjectionRead("ok", doc)

    def write(self, entity: EntityState, payload: dict[str, Any], *, equal_ok: bool) -> bool:
        """Write ``payload`` at ``entity.rev`` unless that would regress the file."""
        found = self.read(entity.family, entity.item_id)
        origin = entity.origin or self.local_origin
        if found.status == "unreadable":
            # Nothing to defend: it has no rev. Overwritten (not unlinked) from the journal.
            self.unreadable += 1
        elif found.doc is not None:
            theirs = (found.doc["entity_rev"], str(found.doc.get("origin", "")))
            if theirs > (entity.rev, origin):
                self.divergent += 1
                return False
            if theirs == (entity.rev, origin) and not equal_ok:
                return False
        doc = {
            "entity_rev": entity.rev,
            "item_id": entity.item_id,
            "item_type": entity.family,
            "origin": origin,
            "payload": payload,
        }
        data = orjson.dumps(doc, option=PROJECTION_OPTIONS) + b"\n"
        self.fileio.write_in_place(self.path(entity.family, entity.item_id), data)
        self.written += 1
        return True

    def remove(self, tombstone: EntityState) -> bool:
        """Apply a delete: unlink the projection unless it holds a newer rev."""
        found = self.read(tombstone.family, tombstone.item_id)
        if found.status == "missing":
            return False
        if found.status == "unreadable":
            self.unreadable += 1
            return False
        if found.rev is not None and found.rev > tombstone.rev:
            self.divergent += 1
            return False
        self.fileio.unlink(self.path(tombstone.family, tombstone.item_id))
        return True
