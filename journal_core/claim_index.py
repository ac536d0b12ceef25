"""The index of active claims by target (docs/design.md, "Claims").

A claim holds one or more targets. Non-file targets (``step:<plan>/<step>``, free text)
conflict only when they are equal; file targets (``file:<path-or-glob>``) conflict when their
paths overlap (``paths.overlap``). The index answers "which active claims collide with this
target" for the claim verb, under the lock, from the in-memory state.
"""

from __future__ import annotations

from typing import Any, Protocol

from .errors import InvalidArgument
from .paths import PathPattern, is_file_target, overlap, parse_file_target


class _Claimish(Protocol):
    item_id: str
    payload: dict[str, Any] | None


def claim_targets(payload: dict[str, Any] | None) -> list[str]:
    """Every target of a claim payload (``targets``, else the single ``target``)."""
    if not payload:
        return []
    targets = payload.get("targets")
    if isinstance(targets, list) and targets:
        return [str(t) for t in targets]
    target = payload.get("target")
    return [str(target)] if isinstance(target, str) else []


def targets_collide(a: str, b: str) -> bool:
    """Two targets collide: equal, or file targets whose paths overlap."""
    if a == b:
        return True
    if is_file_target(a) and is_file_target(b):
        try:
            return overlap(parse_file_target(a), parse_file_target(b)) is not None
        except InvalidArgument:
            return False
    return False


class ClaimIndex:
    def __init__(self) -> None:
        self.exact: dict[str, set[str]] = {}  # non-file target -> active claim ids
        self.files: dict[str, list[tuple[str, PathPattern]]] = {}  # claim id -> file targets

    def update(self, before: dict[str, Any] | None, after: _Claimish) -> None:
        """Re-index one claim whose payload went from ``before`` to ``after.payload``."""
        self._remove(after.item_id, before)
        payload = after.payload
        if payload is None or payload.get("status") != "active":
            return
        for target in claim_targets(payload):
            if is_file_target(target):
                try:
                    pattern = parse_file_target(target)
                except InvalidArgument:
                    self.exact.setdefault(target, set()).add(after.item_id)
                    continue
                self.files.setdefault(after.item_id, []).append((target, pattern))
            else:
                self.exact.setdefault(target, set()).add(after.item_id)

    def _remove(self, claim_id: str, before: dict[str, Any] | None) -> None:
        self.files.pop(claim_id, None)
        for target in claim_targets(before):
            holders = self.exact.get(target)
            if holders is not None:
                holders.discard(claim_id)
                if not holders:
                    del self.exact[target]

    def colliding(self, target: str) -> list[tuple[str, str]]:
        """Active claims that collide with ``target``: (claim id, the target of theirs it
        hits), ordered by claim id."""
        hits: dict[str, str] = {claim_id: target for claim_id in self.exact.get(target, ())}
        if is_file_target(target):
            mine = parse_file_target(target)
            for claim_id, patterns in self.files.items():
                for theirs, pattern in patterns:
                    if claim_id not in hits and overlap(mine, pattern) is not None:
                        hits[claim_id] = theirs
        return sorted(hits.items())

    def overlapping_paths(self, pattern: PathPattern) -> list[tuple[str, str, str]]:
        """Active file claims overlapping ``pattern``: (claim id, their target, a path both
        cover)."""
        out = []
        for claim_id, patterns in sorted(self.files.items()):
            for theirs, other in patterns:
                witness = overlap(pattern, other)
                if witness is not None:
                    out.append((claim_id, theirs, witness))
                    break
        return out

    def active_ids(self) -> set[str]:
        ids = {claim_id for ids in self.exact.values() for claim_id in ids}
        return ids | set(self.files)
