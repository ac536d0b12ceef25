"""The index of active claims by target (docs/design.md, "Claims").

A claim holds one or more targets. Non-file targets (``step:<plan>/<step>``, free text)
conflict only when they are equal; file targets (``file:<path-or-glob>``) conflict when their
paths overlap (``paths.overlap``). The index answers "which active claims collide with this
target" for the claim verb, under the lock, from the in-memory state.
"""

from __future__ import annotations

from typing import Any, Protocol

from . import clock
from .errors import InvalidArgument
from .paths import PathPattern, is_file_target, literal_prefix, overlap, parse_file_target


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


def renewal_due(payload: dict[str, Any]) -> float | None:
    """When a keepalive claim is next due for renewal (half its ttl left), as a POSIX
    timestamp; None for a claim that is not kept alive."""
    if not payload.get("keepalive"):
        return None
    try:
        expires = clock.parse_rfc3339(str(payload["expires_at"])).timestamp()
        return expires - float(payload["ttl_s"]) / 2
    except (KeyError, TypeError, ValueError):
        return None


class _Node:
    __slots__ = ("ids", "kids")

    def __init__(self) -> None:
        self.ids: set[str] = set()
        self.kids: dict[str, _Node] = {}


class PrefixTrie:
    """File claims by the literal components their pattern starts with. Two patterns can
    share a path only when one's literal prefix is a prefix of the other's (every path a
    pattern covers starts with its prefix), so a query looks at the claims along its own
    prefix and below it, not at every file claim."""

    def __init__(self) -> None:
        self.root = _Node()

    def add(self, prefix: tuple[str, ...], claim_id: str) -> None:
        node = self.root
        for part in prefix:
            node = node.kids.setdefault(part, _Node())
        node.ids.add(claim_id)

    def remove(self, prefix: tuple[str, ...], claim_id: str) -> None:
        path = [self.root]
        for part in prefix:
            found = path[-1].kids.get(part)
            if found is None:
                return
            path.append(found)
        path[-1].ids.discard(claim_id)
        for depth in range(len(prefix), 0, -1):  # prune what is left empty
            node = path[depth]
            if node.ids or node.kids:
                break
            del path[depth - 1].kids[prefix[depth - 1]]

    def candidates(self, prefix: tuple[str, ...]) -> set[str]:
        out: set[str] = set()
        node = self.root
        out |= node.ids
        for part in prefix:
            found = node.kids.get(part)
            if found is None:
                return out
            node = found
            out |= node.ids
        below = list(node.kids.values())
        while below:
            current = below.pop()
            out |= current.ids
            below.extend(current.kids.values())
        return out


class ClaimIndex:
    """Active claims by target, and by holder (with when each keepalive claim is next due
    for renewal, so a mutation by a holder with nothing due costs one comparison)."""

    def __init__(self) -> None:
        self.exact: dict[str, set[str]] = {}  # non-file target -> active claim ids
        self.files: dict[str, list[tuple[str, PathPattern]]] = {}  # claim id -> file targets
        self.trie = PrefixTrie()  # file claims by their patterns' literal prefixes
        self.holders: dict[str, set[str]] = {}  # holder -> active claim ids
        self.due: dict[str, dict[str, float]] = {}  # holder -> keepalive claim id -> due at
        self._due_min: dict[str, float] = {}  # holder -> earliest due (absent: recompute)

    def update(self, before: dict[str, Any] | None, after: _Claimish) -> None:
        """Re-index one claim whose payload went from ``before`` to ``after.payload``."""
        self._remove(after.item_id, before)
        payload = after.payload
        if payload is None or payload.get("status") != "active":
            return
        holder = payload.get("holder")
        if isinstance(holder, str):
            self.holders.setdefault(holder, set()).add(after.item_id)
            due = renewal_due(payload)
            if due is not None:
                self.due.setdefault(holder, {})[after.item_id] = due
                if holder in self._due_min:
                    self._due_min[holder] = min(self._due_min[holder], due)
        for target in claim_targets(payload):
            if is_file_target(target):
                try:
                    pattern = parse_file_target(target)
                except InvalidArgument:
                    self.exact.setdefault(target, set()).add(after.item_id)
                    continue
                self.files.setdefault(after.item_id, []).append((target, pattern))
                self.trie.add(literal_prefix(pattern), after.item_id)
            else:
                self.exact.setdefault(target, set()).add(after.item_id)

    def _remove(self, claim_id: str, before: dict[str, Any] | None) -> None:
        for _, pattern in self.files.pop(claim_id, ()):
            self.trie.remove(literal_prefix(pattern), claim_id)
        holder = before.get("holder") if before else None
        if isinstance(holder, str):
            held = self.holders.get(holder)
            if held is not None:
                held.discard(claim_id)
                if not held:
                    del self.holders[holder]
            due = self.due.get(holder)
            if due is not None and due.pop(claim_id, None) is not None:
                self._due_min.pop(holder, None)  # recomputed when next asked
                if not due:
                    del self.due[holder]
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
            for claim_id in self.trie.candidates(literal_prefix(mine)):
                for theirs, pattern in self.files[claim_id]:
                    if claim_id not in hits and overlap(mine, pattern) is not None:
                        hits[claim_id] = theirs
        return sorted(hits.items())

    def overlapping_paths(self, pattern: PathPattern) -> list[tuple[str, str, str]]:
        """Active file claims overlapping ``pattern``: (claim id, their target, a path both
        cover)."""
        out = []
        for claim_id in sorted(self.trie.candidates(literal_prefix(pattern))):
            for theirs, other in self.files[claim_id]:
                witness = overlap(pattern, other)
                if witness is not None:
                    out.append((claim_id, theirs, witness))
                    break
        return out

    def held_by(self, holder: str) -> set[str]:
        """The holder's active claims (expired ones included until marked)."""
        return set(self.holders.get(holder, ()))

    def due_for_renewal(self, holder: str, now: float) -> list[str]:
        """The holder's keepalive claims with half their ttl or less left at ``now``."""
        due = self.due.get(holder)
        if not due:
            return []
        earliest = self._due_min.get(holder)
        if earliest is None:
            earliest = self._due_min[holder] = min(due.values())
        if earliest > now:
            return []
        return sorted(claim_id for claim_id, at in due.items() if at <= now)

    def active_ids(self) -> set[str]:
        ids = {claim_id for ids in self.exact.values() for claim_id in ids}
        return ids | set(self.files)
