"""The write path (docs/design.md, "The write path"): group commit of mutations.

The central invariant: ``lock -> tail validation -> build records -> append -> fsync ->
unlock -> ok``. Projections and watermarks are caches, written after the unlock.

Mutations submitted at once by threads of this process (HTTP clients, tool calls) join one
*batch*: one thread leads it, takes the store lock once, runs every verb in turn against the
state as the earlier ones left it, appends all their txns with one write and one fsync, and
only then answers each caller. Each mutation stays its own txn: a verb that refuses (a bad
argument, a held claim) fails alone and writes nothing. If the append fails, every mutation
of the batch hears it, with the truth: not applied, or outcome unknown.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from . import clock, limits, verbs
from .backend import Blobs
from .blob import blob_ref
from .checkpoint import CheckpointFile, CheckpointStore, build_checkpoint
from .claim_index import claim_targets, renewal_due, targets_collide
from .errors import (
    InvalidArgument,
    NotApplied,
    OutcomeUnknown,
    RequestReused,
    StoreCorrupt,
    StoreError,
    StoreIOError,
    UserError,
)
from .ids import check_actor, writer_id
from .journal import Journal, Record, Transaction, TxnGroup
from .mutation import Change, Loaded, Mutation
from .record import payload_bytes
from .replay import EntityState, RequestEntry, State
from .replica import Replica
from .vocabulary import EPHEMERAL_ACTIONS

logger = logging.getLogger("agentjournal.commit")
STORE_ACTOR = "agentjournal"
Verb = Callable[[Mutation], Any]


def require(condition: bool, message: str) -> None:
    """An invariant check that survives ``python -O``."""
    if not condition:
        raise StoreCorrupt(f"invariant violated: {message}")


@dataclass
class Committed:
    """What a mutation wrote: its txn, and the keys it changed. ``replayed``: a repeat of an
    earlier request (same actor and request_id) that wrote nothing and answers the first."""

    first_seq: int
    count: int
    changed: list[tuple[str, str]]
    replayed: bool = False


@dataclass
class Request:
    actor: str
    verb: Verb
    request_id: str | None
    fingerprint: str
    wait_s: float
    done: threading.Event = field(default_factory=threading.Event)
    lead: bool = False  # handed the lead of the next batch
    result: Any = None
    committed: Committed | None = None
    error: BaseException | None = None
    records: list[Record] = field(default_factory=list)


def fingerprint(parts: object) -> str:
    """A short digest of a mutation's arguments: a reused request_id with other arguments
    is refused."""
    return hashlib.sha256(repr(parts).encode("utf-8", "backslashreplace")).hexdigest()[:32]


def check_request_id(request_id: object) -> str | None:
    if request_id is None:
        return None
    if not isinstance(request_id, str) or not 1 <= len(request_id) <= \
            limits.request_id_chars_max or not request_id.isprintable():
        raise InvalidArgument(f"request_id must be 1-{limits.request_id_chars_max} printable "
                              "characters (a client-chosen id that makes a retry safe)")
    return request_id


class BatchWorld:
    """The state as a mutation of a batch sees it: the replica plus the batch's earlier
    mutations (``pending``), which are not in the state until their append is durable."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.pending: dict[tuple[str, str], EntityState] = {}

    def load(self, family: str, item_id: str) -> Loaded:
        entity = self.pending.get((family, item_id)) or self.state.entity(family, item_id)
        if entity is None:
            return Loaded(0, None)
        if entity.deleted:
            return Loaded(entity.rev, None, entity.origin, entity.seq)
        if entity.payload is None:  # only a ref whose blob is gone: the content is missing
            raise ContentMissing(f"{family} {item_id}: its content is missing (the blob "
                                 f"{(entity.payload_ref or {}).get('sha256')} is not in this "
                                 "store); it cannot change. `agentjournal doctor` reports it")
        return Loaded(entity.rev, entity.payload, entity.origin, entity.seq)

    def colliding_claims(self, target: str) -> list[tuple[str, str]]:
        hits = {claim_id: theirs for claim_id, theirs in self.state.claims.colliding(target)
                if ("claim", claim_id) not in self.pending}
        for (family, claim_id), entity in self.pending.items():
            if family != "claim" or entity.payload is None or \
                    entity.payload.get("status") != "active":
                continue
            for theirs in claim_targets(entity.payload):
                if targets_collide(theirs, target):
                    hits[claim_id] = theirs
                    break
        return sorted(hits.items())

    def claims_of(self, actor: str) -> list[str]:
        out = {claim_id for claim_id in self.state.claims.held_by(actor)
               if ("claim", claim_id) not in self.pending}
        for (family, claim_id), entity in self.pending.items():
            if family == "claim" and entity.payload and entity.payload.get("status") == \
                    "active" and entity.payload.get("holder") == actor:
                out.add(claim_id)
        return sorted(out)

    def claims_due_for_renewal(self, actor: str, now: datetime) -> list[str]:
        at = now.timestamp()
        out = {claim_id for claim_id in self.state.claims.due_for_renewal(actor, at)
               if ("claim", claim_id) not in self.pending}
        for (family, claim_id), entity in self.pending.items():
            payload = entity.payload
            if family == "claim" and payload and payload.get("status") == "active" and \
                    payload.get("holder") == actor:
                due = renewal_due(payload)
                if due is not None and due <= at:
                    out.add(claim_id)
        return sorted(out)

    def entity_ids(self, family: str) -> list[str]:
        ids = set(self.state.families[family])
        ids.update(item_id for fam, item_id in self.pending if fam == family)
        return sorted(ids)

    def add(self, records: list[Record]) -> None:
        """A mutation of the batch built these: later ones see them."""
        for record in records:
            if record["item_type"] == "journal":
                continue
            key = (record["item_type"], record["item_id"])
            current = self.pending.get(key) or self.state.entity(*key)
            if record["action"] in EPHEMERAL_ACTIONS:
                if current is not None and current.payload is not None:
                    self.pending[key] = _with(current, {**current.payload, **record["payload"]},
                                              changed_seq=record["seq"])
                continue
            self.pending[key] = EntityState(
                record["item_type"], record["item_id"], record["entity_rev"], record["seq"],
                record["writer"], record["actor"], record["action"], record["ts"],
                None if record["action"] == "delete" else record.get("_payload"),
                record.get("payload_ref"), None, None,
            )


class ContentMissing(UserError):
    """An entity whose oversized payload's blob is gone: readable as such, not changeable."""


def _with(entity: EntityState, payload: dict[str, Any], changed_seq: int) -> EntityState:
    return EntityState(entity.family, entity.item_id, entity.rev, entity.seq, entity.writer,
                       entity.actor, entity.action, entity.ts, payload, entity.payload_ref,
                       entity.origin, entity.rev_origins, changed_seq)


# -- building records -------------------------------------------------------------------
def build_records(actor: str, first: int, changes: list[Change], now: datetime,
                  request: dict[str, Any] | None) -> tuple[list[Record], list[bytes]]:
    """The txn's records (envelope first, payload last) and the blobs they need."""
    count = len(changes)
    ts = clock.to_rfc3339(now)
    writer = writer_id()
    records: list[Record] = []
    blobs: list[bytes] = []
    for index, change in enumerate(changes):
        seq = first + index
        record: Record = {
            "v": limits.ENVELOPE_VERSION, "seq": seq, "ts": ts, "writer": writer,
            "actor": actor, "action": change.action, "item_type": change.family,
            "item_id": change.item_id, "entity_rev": change.rev, "txn": [first, count],
        }
        if request is not None and index == 0:
            record["request"] = request
        if change.summary:
            record["summary"] = change.summary[: limits.summary_chars_max]
        payload = change.payload
        if change.action != "delete" and payload is not None:
            encoded = payload_bytes(payload) if change.kind == "record" else b""
            if len(encoded) > limits.payload_inline_bytes_max:
                record["payload_ref"] = blob_ref(encoded)
                blobs.append(encoded)
            else:
                record["payload"] = payload
        records.append(record)
    return records, blobs


def meta_record(seq: int, txn: tuple[int, int], actor: str, action: str,
                payload: dict[str, Any], summary: str, now: datetime) -> Record:
    return {
        "v": limits.ENVELOPE_VERSION, "seq": seq, "ts": clock.to_rfc3339(now),
        "writer": writer_id(), "actor": actor, "action": action, "item_type": "journal",
        "txn": [txn[0], txn[1]], "summary": summary[: limits.summary_chars_max],
        "payload": payload,
    }


# -- the committer ----------------------------------------------------------------------
class Committer:
    """Runs mutations in batches, one lock hold and one fsync per batch."""

    def __init__(self, journal: Journal, replica: Replica, blobs: Blobs,
                 checkpoints: CheckpointStore, store_id: str, now: Callable[[], datetime],
                 after_commit: Callable[[], None]) -> None:
        self.journal = journal
        self.replica = replica
        self.blobs = blobs
        self.checkpoints = checkpoints
        self.store_id = store_id
        self.now = now
        self.after_commit = after_commit
        self._queue: deque[Request] = deque()
        self._queue_lock = threading.Lock()
        self._leading = False
        self._waiting = False
        self.last_checkpoint: CheckpointFile | None = None
        self.batches = 0  # batches committed (tests and bench read them)
        self.batched = 0  # mutations committed in them

    def submit(self, actor: str, verb: Verb, *, request_id: str | None, fingerprint: str,
               wait_s: float) -> tuple[Any, Committed]:
        check_actor(actor)
        request = Request(actor, verb, check_request_id(request_id), fingerprint, wait_s)
        with self._queue_lock:
            self._queue.append(request)
            lead = not self._leading
            self._leading = True
        if not lead:
            request.done.wait()
            if request.lead:  # the previous leader handed us the next batch
                request.done.clear()
                self._lead()
        else:
            self._lead()
        if request.error is not None:
            raise request.error
        assert request.committed is not None
        return request.result, request.committed

    def waiting_for_lock(self) -> bool:
        """Is a batch of this process waiting for the store lock right now?"""
        return self._waiting

    def _lead(self) -> None:
        """Commit a batch, then hand the lead on *before* writing projections (sync mode):
        the next batch takes the lock while this one's caches are written; each caller of
        this batch is answered once they are."""
        batch: list[Request] = []
        written = False
        try:
            written = self._commit_batch(batch)
        finally:
            with self._queue_lock:
                if self._queue:
                    nxt = self._queue[0]
                    nxt.lead = True
                    nxt.done.set()  # it leads the next batch (its own among it)
                else:
                    self._leading = False
            try:
                if written:
                    self._after_commit()
            finally:
                for request in batch:
                    request.done.set()

    def _take_batch(self, batch: list[Request]) -> None:
        """The queue's first mutations (this leader's own first): taken once the lock is
        held, so that those that came while the leader waited for it join this batch."""
        with self._queue_lock:
            batch.extend(self._queue.popleft()
                         for _ in range(min(len(self._queue), limits.commit_batch_max)))

    def _commit_batch(self, batch: list[Request]) -> bool:
        """Fill ``batch`` and commit it; True when something was appended."""
        with self._queue_lock:
            head = self._queue[0]  # this leader's own request
        try:
            self._waiting = True
            with self.journal.transaction(head.actor, head.wait_s) as txn:
                self._waiting = False
                self._take_batch(batch)
                prefix = self._tail(txn)
                self._run_verbs(batch, txn.next_seq + len(prefix))
                written = [r for r in batch if r.records]
                groups = ([prefix] if prefix else []) + [r.records for r in written]
                if groups:
                    self._put_blobs(batch, written)
                    self._append(txn, groups)
                    self.batches += 1
                    self.batched += len(written)
        except BaseException as exc:
            self._waiting = False
            if not batch:  # the lock was not taken: the batch it would have led hears why
                self._take_batch(batch)
            if isinstance(exc, StoreIOError) and not isinstance(exc, NotApplied | OutcomeUnknown):
                exc = NotApplied(f"{exc}; the mutation was not applied")  # before its append
            for request in batch:
                if request.error is not None:
                    continue  # its own verb refused: that is its answer
                if request.committed is not None and (request.committed.replayed
                                                      or not request.records):
                    continue  # it wrote nothing: its answer stands
                request.committed = None  # its append failed with the batch
                request.error = exc
            if not isinstance(exc, Exception):
                raise
            return False
        return True

    def _after_commit(self) -> None:
        try:
            self.after_commit()
        except (StoreError, OSError):  # caches: a failure is a miss, never a failed mutation
            logger.exception("writing projections after a commit failed")

    def _tail(self, txn: Transaction) -> list[Record]:
        """Tail validation (others' groups applied), then a checkpoint when one is due: its
        ref becomes the batch's first group."""
        with self.replica.follower_mutex:
            self.replica.apply(txn.catch_up(self.replica.follower), own=False)
            if not txn.checkpoint_due:
                return []
            self.replica.apply(self._cut(txn), own=False)
            checkpoint = self.write_checkpoint()
        return [meta_record(txn.next_seq, (txn.next_seq, 1), STORE_ACTOR, "checkpoint_ref",
                            checkpoint.ref_payload(), f"checkpoint {checkpoint.name}",
                            self.now())]

    @staticmethod
    def _cut(txn: Transaction) -> list[TxnGroup]:
        """Close the segment for a checkpoint. Its note's durability is not the mutation's:
        the mutation, not yet written, was not applied whatever happened to the note."""
        try:
            return txn.cut_for_checkpoint()
        except OutcomeUnknown as exc:
            raise NotApplied(f"{exc} (the roll note before the mutation); the mutation itself "
                             "was not written: it was not applied") from exc

    def write_checkpoint(self) -> CheckpointFile:
        """Write ckpt-<head> durably (lock held); its ref is appended by the caller."""
        with self.replica.state_lock:
            checkpoint = build_checkpoint(self.replica.state, self.store_id,
                                          self.replica.follower.checkpoint_hint())
        self.checkpoints.write(checkpoint.head_seq, checkpoint.data)
        self.last_checkpoint = checkpoint
        return checkpoint

    def _run_verbs(self, batch: list[Request], first_seq: int) -> None:
        world = BatchWorld(self.replica.state)
        requests: dict[tuple[str, str], Request] = {}
        next_seq = first_seq
        for request in batch:
            try:
                if self._replayed(request, requests):
                    continue
                now = self.now()
                mutation = Mutation(request.actor, now, world, first_seq=next_seq)
                result = request.verb(mutation)
                changes = mutation.changes()
                if any(c.kind == "record" for c in changes):
                    verbs.keep_alive(mutation)
                    changes = mutation.changes()
                header = self._request_header(request, result)
                records, blob_data = build_records(request.actor, next_seq, changes, now,
                                                   header if changes else None)
            except (UserError, StoreError) as exc:
                request.error = exc
                continue
            except Exception as exc:  # a bug in one verb fails that call, not its batch
                logger.exception("a verb failed unexpectedly")
                request.error = exc
                continue
            for record, change in zip(records, changes, strict=True):
                record["_payload"] = change.payload  # for later mutations of the batch
            world.add(records)
            for record in records:
                record.pop("_payload", None)
            request.result, request.records = result, records
            request.blobs = blob_data  # type: ignore[attr-defined]
            request.committed = Committed(next_seq, len(records),
                                          [(c.family, c.item_id) for c in changes])
            if request.request_id is not None and records:
                requests[(request.actor, request.request_id)] = request
            next_seq += len(records)

    def _request_header(self, request: Request, result: Any) -> dict[str, Any] | None:
        if request.request_id is None:
            return None
        header: dict[str, Any] = {"id": request.request_id, "hash": request.fingerprint}
        if isinstance(result, tuple) and len(result) == 2 and all(isinstance(p, str)
                                                                   for p in result):
            header["result"] = f"{result[0]}/{result[1]}"
        return header

    def _replayed(self, request: Request, batch: dict[tuple[str, str], Request]) -> bool:
        """A repeat of an earlier request answers the first call and writes nothing."""
        if request.request_id is None:
            return False
        key = (request.actor, request.request_id)
        earlier = batch.get(key)
        entry: RequestEntry | None
        if earlier is not None:
            assert earlier.committed is not None
            entry = RequestEntry(earlier.committed.first_seq, earlier.committed.count,
                                 earlier.fingerprint, None, "")
            result = earlier.result
        else:
            entry = self.replica.state.request(*key)
            if entry is None:
                return False
            result = tuple(entry.result.split("/", 1)) if entry.result else None
        if entry.digest != request.fingerprint:
            raise RequestReused(
                f"request_id {request.request_id!r} was already used by {request.actor!r} "
                f"(seq {entry.first_seq}) with other arguments; use a new request_id for a "
                "new call")
        request.result = result
        request.committed = Committed(entry.first_seq, entry.count, [], replayed=True)
        return True

    def _put_blobs(self, batch: list[Request], written: list[Request]) -> None:
        """Oversized payloads land (durably) before any record that references them."""
        try:
            for request in written:
                for data in getattr(request, "blobs", []):
                    self.blobs.put(data)
        except StoreError as exc:
            raise NotApplied(f"{exc}; the mutation was not applied") from exc

    def _append(self, txn: Transaction, groups: list[list[Record]]) -> None:
        with self.replica.follower_mutex:
            txn.append(groups)  # one write, one fsync: durable from here
            try:
                self.replica.apply([TxnGroup(group) for group in groups], own=True)
            except Exception as exc:  # the mutation happened: never report it as failed
                logger.exception("applying our own commit to the state failed; reloading")
                self.replica.needs_reload = f"applying a commit failed: {exc}"

    # -- single transactions (maintenance, imports) ---------------------------------------------
    def journal_txn(self, actor: str, wait_s: float,
                    build: Callable[[Transaction, int], list[list[Record]]],
                    *, checkpoint: bool = False) -> list[list[Record]]:
        """One transaction outside the batches: ``build(txn, next_seq)`` returns the groups
        to append (journal notes, imported records). ``checkpoint`` cuts and writes one
        first (its ref is the first group)."""
        with self.journal.transaction(actor, wait_s) as txn:
            with self.replica.follower_mutex:
                self.replica.apply(txn.catch_up(self.replica.follower), own=False)
                prefix: list[Record] = []
                if checkpoint or txn.checkpoint_due:
                    self.replica.apply(self._cut(txn), own=False)
                    made = self.write_checkpoint()
                    prefix = [meta_record(txn.next_seq, (txn.next_seq, 1), actor,
                                          "checkpoint_ref", made.ref_payload(),
                                          f"checkpoint {made.name}", self.now())]
            groups = ([prefix] if prefix else []) + build(txn, txn.next_seq + len(prefix))
            groups = [g for g in groups if g]
            if groups:
                self._append(txn, groups)
        self._after_commit()
        return groups


def targets_of(payload: dict[str, Any] | None) -> list[str]:
    return claim_targets(payload)


__all__ = ["BatchWorld", "Committed", "Committer", "ContentMissing", "OutcomeUnknown",
           "Request", "build_records", "check_request_id", "fingerprint", "meta_record"]
