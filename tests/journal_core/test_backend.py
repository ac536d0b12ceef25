"""A whole store on a backend that is not files: the Store names nothing but the backend's
interfaces (journal, blobs, checkpoints, cursors), so it runs unchanged on the in-memory
backend of tests/support -- claims, unseen events, idempotent retries, checkpoints, a cold
reopen."""

from __future__ import annotations

import pytest
from support.memory_backend import MemoryBackend, SharedLog

from journal_core import ClaimConflict, Store, StoreConfig, verbs


def test_a_store_on_the_memory_backend_claims_reads_and_reopens_from_its_journal() -> None:
    log = SharedLog()
    config = StoreConfig(projections="off")
    with Store(backend=MemoryBackend(log), config=config) as first, \
            Store(backend=MemoryBackend(log), config=config) as second:
        (_, plan_id), _ = first.mutate("ann", lambda m: verbs.plan_create(m, "p", "", ["a"]))
        (_, claim_id), _ = first.mutate("ann", lambda m: verbs.claim(m, "file:src/"))
        with pytest.raises(ClaimConflict, match="ann"):
            second.mutate("bob", lambda m: verbs.claim(m, "file:src/app.py"))
        _, once = second.mutate("bob", lambda m: verbs.remember(m, "note", "n", "b"),
                                request_id="r-1", fingerprint_of="note n")
        _, again = second.mutate("bob", lambda m: verbs.remember(m, "note", "n", "b"),
                                 request_id="r-1", fingerprint_of="note n")
        assert again.replayed and again.first_seq == once.first_seq
        assert [e["actor"] for e in first.read_unseen("ann")["events"]] == ["bob"]
        first.compact("ops")
        assert log.checkpoints
    with Store(backend=MemoryBackend(log), config=config) as cold:
        assert cold.entity_view("claim", claim_id)["entity"]["holder"] == "ann"
        assert cold.entity_view("plan", plan_id)["entity"]["title"] == "p"
        assert len(cold.state.live("memory")) == 1
