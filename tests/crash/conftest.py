"""Crash and fault tests run an operation more than once and compare what it wrote, so
the ids it creates come from a counter (DeterministicIds) instead of randomness."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.reliability import DeterministicIds

import journal_core.mutation


@pytest.fixture(autouse=True)
def deterministic_ids(monkeypatch: pytest.MonkeyPatch) -> Iterator[DeterministicIds]:
    ids = DeterministicIds()
    monkeypatch.setattr(journal_core.mutation, "new_item_id", ids)
    yield ids
