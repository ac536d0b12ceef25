"""The one payload migration registry: old payloads are upgraded step by step.

A step takes a payload at version N and returns it at version N+1. Replay runs every step
from the payload's version to the family's current one, then validates the result.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .entities import MODELS, validate_payload
from .errors import InvalidArgument

Payload = dict[str, Any]
Step = Callable[[Payload], Payload]

_STEPS: dict[tuple[str, int], Step] = {}


def migration(family: str, from_version: int) -> Callable[[Step], Step]:
    """Register ``fn`` as the step from ``from_version`` to ``from_version + 1``."""

    def register(fn: Step) -> Step:
        key = (family, from_version)
        if key in _STEPS:
            raise ValueError(f"two migrations registered for {family} v{from_version}")
        _STEPS[key] = fn
        return fn

    return register


def upgrade(family: str, payload: Payload) -> Payload:
    """Migrate to the current schema and validate. Raises InvalidArgument when it cannot."""
    current = MODELS[family].SCHEMA_VERSION
    version = payload.get("schema_version")
    if not isinstance(version, int) or version < 1 or version > current:
        raise InvalidArgument(f"{family} payload has unknown schema_version {version!r}")
    while version < current:
        step = _STEPS.get((family, version))
        if step is None:
            raise InvalidArgument(f"no migration for {family} from schema_version {version}")
        payload = step(dict(payload))
        version += 1
        payload["schema_version"] = version
    return validate_payload(family, payload)


@migration("plan", 1)
def _plan_steps_become_objects(payload: Payload) -> Payload:
    """v1 plans kept steps as a list of titles; v2 steps are objects with id and status."""
    steps = payload.get("steps", [])
    if not isinstance(steps, list) or not all(isinstance(step, str) for step in steps):
        raise InvalidArgument("plan v1 steps must be a list of titles")
    payload["steps"] = [
        {"id": f"s{index}", "title": title, "status": "todo", "claim_id": None, "result": None}
        for index, title in enumerate(steps, start=1)
    ]
    return payload
