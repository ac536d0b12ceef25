"""Doctor counters gathered while the journal is read and replayed."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class JournalCounters:
    lines_skipped: int = 0  # unparseable or invalid lines in the middle of a segment
    torn_tails: int = 0  # unterminated final fragments (active tail or sealed segment end)
    fragments_adjudicated: int = 0  # torn fragments explained by a journal_note
    incomplete_txns: int = 0  # txns dropped because a record was missing
    incomplete_txns_noted: int = 0  # of those, explained by an incomplete_txn note
    dup_identical: int = 0  # same (seq, writer), same bytes: skipped
    dup_conflicts: int = 0  # same (seq, writer), different bytes: ERROR
    dup_seq_writers: int = 0  # same seq, different writers: WARNING
    rev_overwrites: int = 0  # equal entity_rev from different writers
    rev_gaps: int = 0  # an entity_rev skipped: history incomplete
    rev_regressions: int = 0  # a record older than the entity's current rev: not applied
    payloads_invalid: int = 0  # payloads failing migration or validation: skipped
    unannotated_emissions: int = 0  # records a verb changed without annotating intent
    seq_repairs: int = 0  # seq_repair records (meta was behind the tail)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    @property
    def unexplained_corruption(self) -> int:
        return max(0, self.lines_skipped - self.fragments_adjudicated)
