"""One mutation (SPEC §6.3): load, let the verb change, diff, emit.

Verbs never build records. They load entities through the mutation, change them, put them
back, and annotate intent. ``changes()`` diffs every touched entity against what was loaded:
each real change becomes a record (annotated -> its action; unannotated -> ``update`` and a
doctor counter); an ephemeral-only change becomes a projection write without a record.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from . import clock
from .entities import Entity, mask_ephemeral, model_for, validate_payload
from .errors import Conflict, InvalidArgument, NotFound
from .ids import check_item_id, new_item_id
from .record import ENTITY_STATE_ACTIONS
from .replay import UNANNOTATED_SUMMARY, is_redacted

E = TypeVar("E", bound=Entity)
Key = tuple[str, str]
Payload = dict[str, Any]


@dataclass
class Loaded:
    rev: int  # the entity's current rev (tombstones included), 0 when never seen
    payload: Payload | None  # None when absent or deleted
    origin: str | None = None  # the store that owns its current version, if not this one


@dataclass
class Change:
    kind: str  # "record" | "ephemeral"
    family: str
    item_id: str
    action: str
    rev: int
    payload: Payload | None
    summary: str | None


class Mutation:
    """The working set of one mutation. ``loader`` returns the current entity (with any
    newer ephemeral fields from its projection already overlaid)."""

    def __init__(
        self,
        actor: str,
        now: datetime,
        loader: Callable[[str, str], Loaded],
        active_claims: Callable[[str], list[str]],
    ) -> None:
        self.actor = actor
        self.now = now
        self.now_text = clock.to_rfc3339(now)
        self._loader = loader
        self._active_claims = active_claims
        self._loaded: dict[Key, Loaded] = {}
        self._working: dict[Key, Payload | None] = {}
        self._intent: dict[Key, tuple[str, str | None]] = {}

    # -- loading ----------------------------------------------------------------------
    def _load(self, family: str, item_id: str) -> Loaded:
        key = (family, item_id)
        if key not in self._loaded:
            self._loaded[key] = self._loader(family, item_id)
            self._working.setdefault(key, self._loaded[key].payload)
        return self._loaded[key]

    def get(self, model: type[E], item_id: str) -> E | None:
        check_item_id(model.FAMILY, item_id)
        self._load(model.FAMILY, item_id)
        payload = self._working[(model.FAMILY, item_id)]
        if payload is None:
            return None
        if is_redacted(payload):
            raise Conflict(f"{model.FAMILY} {item_id} was redacted; it can no longer change")
        return model.model_validate(payload)

    def require(self, model: type[E], item_id: str) -> E:
        entity = self.get(model, item_id)
        if entity is None:
            raise NotFound(f"no {model.FAMILY} with id {item_id!r}")
        return entity

    def origin_of(self, family: str, item_id: str) -> str | None:
        """The other store whose version this is (imported), or None for this store's."""
        return self._load(family, item_id).origin

    def claims_on(self, target: str) -> list[str]:
        return self._active_claims(target)

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
        if before.payload == after:
            return None
        if (
            before.payload is not None
            and after is not None
            and mask_ephemeral(family, before.payload) == mask_ephemeral(family, after)
        ):
            return Change("ephemeral", family, item_id, "", before.rev, after, None)
        action, summary = self._intent.get(key, ("update", UNANNOTATED_SUMMARY))
        if after is None:
            action = "delete"
        elif action == "delete":
            raise InvalidArgument(f"{family} {item_id} annotated delete but still present")
        return Change("record", family, item_id, action, before.rev + 1, after, summary)
