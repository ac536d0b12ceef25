"""One mutation (docs/design.md, "Emission"): load, let the verb change, diff, emit.

Verbs never build records. They load entities through the mutation, change them, put them
back, and annotate intent. ``changes()`` diffs every touched entity against what was loaded:
each real change becomes a record (annotated -> its action; unannotated -> ``update`` and a
doctor counter); a change of ephemeral fields only becomes a ``renew`` record (no rev bump).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

from . import clock
from .entities import Entity, mask_ephemeral, model_for, validate_payload
from .errors import Conflict, InvalidArgument, NotFound
from .ids import check_item_id, new_item_id
from .replay import UNANNOTATED_SUMMARY, is_redacted
from .vocabulary import ENTITY_STATE_ACTIONS

E = TypeVar("E", bound=Entity)
Key = tuple[str, str]
Payload = dict[str, Any]


@dataclass
class Loaded:
    rev: int  # the entity's current rev (tombstones included), 0 when never seen
    payload: Payload | None  # None when absent or deleted
    origin: str | None = None  # the store that owns its current version, if not this one
    seq: int = 0  # the seq of its current record


@dataclass
class Change:
    kind: str  # "record" | "ephemeral"
    family: str
    item_id: str
    action: str
    rev: int
    payload: Payload | None
    summary: str | None


class World(Protocol):
    """What a mutation reads: the state as it stands for this txn (the in-memory state plus
    the earlier txns of the same group commit)."""

    def load(self, family: str, item_id: str) -> Loaded: ...
    def colliding_claims(self, target: str) -> list[tuple[str, str]]: ...
    def claims_of(self, actor: str) -> list[str]: ...
    def claims_due_for_renewal(self, actor: str, now: datetime) -> list[str]: ...
    def entity_ids(self, family: str) -> list[str]: ...


class Mutation:
    """The working set of one mutation."""

    def __init__(self, actor: str, now: datetime, world: World, first_seq: int = 0) -> None:
        self.actor = actor
        self.now = now
        self.now_text = clock.to_rfc3339(now)
        self.world = world
        self.first_seq = first_seq  # the seq this txn's first record gets
        self._loaded: dict[Key, Loaded] = {}
        self._working: dict[Key, Payload | None] = {}
        self._intent: dict[Key, tuple[str, str | None]] = {}
        self.notes: list[str] = []  # what the answer should tell the caller (e.g. hints)

    # -- loading ----------------------------------------------------------------------
    def _load(self, family: str, item_id: str) -> Loaded:
        key = (family, item_id)
        if key not in self._loaded:
            self._loaded[key] = self.world.load(family, item_id)
            self._working.setdefault(key, self._loaded[key].payload)
        return self._loaded[key]

    def get(self, model: type[E], item_id: str) -> E | None:
        check_item_id(model.FAMILY, item_id)
        self._load(model.FAMILY, item_id)
        payload = self._working[(model.FAMILY, item_id)]
        if payload is None:
            return None
        if is_redacted(payload) and "schema_version" not in payload:
            raise Conflict(f"{model.FAMILY} {item_id} was redacted; it can no longer change")
        try:
            return model.model_validate(payload)
        except ValueError as exc:
            raise Conflict(f"{model.FAMILY} {item_id} holds a payload that breaks its model "
                           f"(`agentjournal doctor` reports it); it cannot change: {exc}"
                           ) from exc

    def require(self, model: type[E], item_id: str) -> E:
        entity = self.get(model, item_id)
        if entity is None:
            raise NotFound(f"no {model.FAMILY} with id {item_id!r}")
        return entity

    def loaded_seq(self, family: str, item_id: str) -> int:
        return self._load(family, item_id).seq

    def origin_of(self, family: str, item_id: str) -> str | None:
        """The other store whose version this is (imported), or None for this store's."""
        return self._load(family, item_id).origin

    def colliding_claims(self, target: str) -> list[tuple[str, str]]:
        """Active claims colliding with ``target``: (claim id, their target)."""
        return self.world.colliding_claims(target)

    def claims_of(self, actor: str) -> list[str]:
        return self.world.claims_of(actor)

    def claims_due_for_renewal(self) -> list[str]:
        """The caller's keepalive claims with half their ttl or less left."""
        return self.world.claims_due_for_renewal(self.actor, self.now)

    def entity_ids(self, family: str) -> list[str]:
        return self.world.entity_ids(family)

    # -- changing ---------------------------------------------------------------------
    def new_id(self, family: str) -> str:
        item_id = new_item_id(family)
        while self._load(family, item_id).rev:  # a collision is absurdly rare; never reuse
            item_id = new_item_id(family)
        return item_id

    def base(self, family: str, item_id: str) -> dict[str, Any]:
        """The fields every new entity carries."""
        model = model_for(family)
        return {
            "schema_version": model.SCHEMA_VERSION,
            "id": item_id,
            "created_at": self.now_text,
            "created_by": self.actor,
        }

    def put(self, entity: Entity) -> None:
        family = entity.FAMILY
        self._load(family, entity.id)
        self._working[(family, entity.id)] = validate_payload(family, entity.dump())

    def delete(self, family: str, item_id: str) -> None:
        if self._load(family, item_id).payload is None:
            raise NotFound(f"no {family} with id {item_id!r}")
        self._working[(family, item_id)] = None

    def annotate(self, action: str, family: str, item_id: str, summary: str | None) -> None:
        if action not in ENTITY_STATE_ACTIONS and action != "delete":
            raise InvalidArgument(f"{action!r} is not an entity action")
        self._intent[(family, item_id)] = (action, summary[:500] if summary else None)

    def touched(self) -> list[Key]:
        return list(self._working)

    # -- the diff ---------------------------------------------------------------------
    def changes(self) -> list[Change]:
        out: list[Change] = []
        for key, after in self._working.items():
            change = self._change(key, self._loaded[key], after)
            if change is not None:
                out.append(change)
        return out

    def _change(self, key: Key, before: Loaded, after: Payload | None) -> Change | None:
        family, item_id = key
        previous = before.payload
        if previous == after:
            return None
        if previous is not None and after is not None and "schema_version" in previous:
            # A payload written before a field existed reads as the same entity once its
            # defaults are filled in: compare canonical forms.
            with suppress(InvalidArgument):
                previous = validate_payload(family, previous)
            if previous == after:
                return None
            if mask_ephemeral(family, previous) == mask_ephemeral(family, after):
                ephemeral = {k: after[k] for k in model_for(family).EPHEMERAL if k in after}
                return Change("ephemeral", family, item_id, "renew", before.rev, ephemeral,
                              None)
        action, summary = self._intent.get(key, ("update", UNANNOTATED_SUMMARY))
        if after is None:
            action = "delete"
        elif action == "delete":
            raise InvalidArgument(f"{family} {item_id} annotated delete but still present")
        return Change("record", family, item_id, action, before.rev + 1, after, summary)


LoaderFn = Callable[[str, str], Loaded]
