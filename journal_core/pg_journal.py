"""The PostgreSQL journal backend: one row per record, one database transaction per
mutation (docs/design.md, "PostgreSQL"; docs/postgresql.md).

The store lock and the seq assignment are one row lock: ``SELECT ... FROM head WHERE id = 1
FOR UPDATE``, taken with a bounded ``lock_timeout``, in the very transaction that inserts
the batch. The insert order is therefore the commit order, and a reader never sees seq
``n + 1`` committed before seq ``n``. An append is one statement (the ``INSERT`` of the
batch, the ``UPDATE`` of the head row and the ``NOTIFY`` that wakes waiters) and then
``COMMIT``, with ``synchronous_commit = on``: the caller hears ok only once the commit is
durable. A txn is atomic there, so there are no torn tails or short txns to settle.

The truth about failures: anything that goes wrong before ``COMMIT`` was sent rolled the
whole transaction back (``NotApplied``: nothing was written); a connection lost while the
``COMMIT`` was on its way leaves the outcome unknown (``OutcomeUnknown``: it may have been
applied, and a retry with the same ``request_id`` is safe).

A lock hold belongs to the thread that took it. Within it (``transaction`` is re-entrant on
that thread, as doctor's maintenance needs), blobs, checkpoints and the store's info are
written in the same database transaction as the records, so they commit together. After an
append committed, the next write of the same hold takes the row lock again.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from . import limits
from .counters import JournalCounters
from .errors import LockTimeout, NotApplied, OutcomeUnknown, StoreCorrupt, StoreUnavailable
from .journal import Follower, JournalStats, Record, TxnGroup
from .pg_connect import (
    ConnectionPool,
    connection_lost,
    describe_fault,
    driver,
    unreachable,
)
from .record import decode_envelope, encode_built, parse_line
from .store_url import StoreUrl

PART = "records"  # what records_at names as the place a record is kept
NOTHING_WRITTEN = "nothing was written"
MAYBE_APPLIED = ("the mutation may have been applied (a retry with the same request_id is "
                 "safe)")
Row = tuple[int, int, int, bytes]  # seq, txn_first, txn_count, line


def require(condition: bool, message: str) -> None:
    """An invariant check that survives ``python -O``."""
    if not condition:
        raise StoreCorrupt(f"invariant violated: {message}")


@dataclass
class Hold:
    """One thread's hold of the store lock: its connection and what the head row said."""

    conn: Any
    actor: str
    wait_s: float
    depth: int = 1
    locked: bool = False  # a database transaction holding the row lock is open
    head_seq: int = 0
    checkpoint_head: int = 0
    archived_through: int = 0


class PgJournal:
    """The journal of one store in a PostgreSQL schema."""

    read_only = False

    def __init__(self, url: StoreUrl, pool: ConnectionPool | None = None) -> None:
        self.url = url
        self.pool = pool or ConnectionPool(url.dsn, application_name=f"agentjournal:{url.store}")
        sql = driver().sql
        self.sql = sql
        self.schema = sql.Identifier(url.store)
        self._local = threading.local()
        self._q = _Queries(sql, self.schema)

    # -- holds ---------------------------------------------------------------------------
    def held(self) -> Hold | None:
        """This thread's hold of the lock, if it has one."""
        hold: Hold | None = getattr(self._local, "hold", None)
        return hold

    @contextmanager
    def transaction(self, actor: str, wait_s: float) -> Iterator[PgTransaction]:
        hold = self.held()
        if hold is not None:  # re-entrant on the thread that holds it
            hold.depth += 1
            try:
                yield PgTransaction(self, hold)
            finally:
                hold.depth -= 1
            return
        hold = Hold(self.pool.take(), actor, wait_s)
        self._local.hold = hold
        finished = False
        try:
            self._first_lock(hold)
            yield PgTransaction(self, hold)
            self._finish(hold)
            finished = True
        finally:
            if not finished:  # the error (or the exit) itself propagates
                self._abandon(hold)
            self._local.hold = None
            self.pool.give(hold.conn)

    def _first_lock(self, hold: Hold) -> None:
        """Take the lock; a pooled connection found dead (the database restarted since it
        was last used) is replaced once: nothing was sent on it, nothing was written."""
        try:
            self.lock(hold)
        except NotApplied:
            if not (hold.conn.closed or hold.conn.broken):
                raise
            hold.conn = self.pool.replace(hold.conn)
            self.lock(hold)

    def lock(self, hold: Hold) -> None:
        """Open a database transaction and take the head row's lock in it (bounded)."""
        psycopg = driver()
        name = f"aj-lock:{self.url.store}:{os.getpid()}:{hold.actor}"
        statement = self.sql.SQL(
            "BEGIN; SET LOCAL lock_timeout = {ms}; "
            "SELECT set_config('application_name', {name}, true); "
            "SELECT head_seq, checkpoint_head, archived_through FROM {s}.head WHERE id = 1 "
            "FOR UPDATE").format(ms=self.sql.Literal(max(1, int(hold.wait_s * 1000))),
                                 name=self.sql.Literal(name.encode()[:63].decode(
                                     "utf-8", "ignore")), s=self.schema)
        try:
            cursor = hold.conn.execute(statement)
            while cursor.nextset():
                pass  # to the last result: the head row
            row = cursor.fetchone()
        except psycopg.errors.LockNotAvailable as exc:
            self._rollback(hold)
            raise LockTimeout(hold.wait_s, self.lock_holder()) from exc
        except psycopg.Error as exc:
            self._rollback(hold)
            if connection_lost(hold.conn, exc):
                self.pool.discard_idle()
                raise NotApplied(f"{unreachable(exc)}; {NOTHING_WRITTEN}") from exc
            raise NotApplied(f"the store lock could not be taken: {describe_fault(exc)}; "
                             f"{NOTHING_WRITTEN}") from exc
        if row is None:
            self._rollback(hold)
            raise StoreCorrupt(f"the store {self.url.where} has no head row (its schema is "
                               "damaged; run `agentjournal doctor`)")
        hold.head_seq, hold.checkpoint_head, hold.archived_through = (int(v) for v in row)
        hold.locked = True

    def locked(self, hold: Hold) -> Any:
        """The hold's connection, inside a transaction holding the lock (taken again after
        an append committed)."""
        if not hold.locked:
            self.lock(hold)
        return hold.conn

    def commit(self, hold: Hold, what: str) -> None:
        """COMMIT the hold's transaction: durable once this returns."""
        psycopg = driver()
        try:
            hold.conn.execute("COMMIT")
        except psycopg.Error as exc:
            hold.locked = False
            if connection_lost(hold.conn, exc):
                self.pool.discard_idle()
                raise OutcomeUnknown(f"{unreachable(exc)} while {what} was committed; "
                                     f"{MAYBE_APPLIED}") from exc
            self._rollback(hold)
            raise NotApplied(f"the commit of {what} failed: {describe_fault(exc)}; "
                             f"{NOTHING_WRITTEN}") from exc
        hold.locked = False

    def _finish(self, hold: Hold) -> None:
        if hold.locked:
            self.commit(hold, "the store's maintenance")

    def _abandon(self, hold: Hold) -> None:
        if hold.locked:
            self._rollback(hold)

    def _rollback(self, hold: Hold) -> None:
        hold.locked = False
        psycopg = driver()
        if hold.conn.closed or hold.conn.broken:
            return
        try:
            hold.conn.execute("ROLLBACK")
        except psycopg.Error:
            return  # the connection is gone: the database rolled it back

    def fault(self, hold: Hold, exc: BaseException, what: str) -> NotApplied:
        """A statement of the hold's transaction failed: it is rolled back, nothing stays."""
        self._rollback(hold)
        if connection_lost(hold.conn, exc):
            self.pool.discard_idle()
            return NotApplied(f"{unreachable(exc)}; {NOTHING_WRITTEN}")
        return NotApplied(f"{what} failed: {describe_fault(exc)}; {NOTHING_WRITTEN}")

    @contextmanager
    def writing(self, what: str) -> Iterator[Any]:
        """A connection to write on: the hold's (locked) when this thread holds the lock,
        so the write commits with the records; else a pooled one (autocommit)."""
        psycopg = driver()
        hold = self.held()
        if hold is None:
            with self.pool.connection() as conn:
                try:
                    yield conn
                except psycopg.Error as exc:
                    if connection_lost(conn, exc):
                        self.pool.discard_idle()
                        raise NotApplied(f"{unreachable(exc)}; {NOTHING_WRITTEN}") from exc
                    raise NotApplied(f"{what} failed: {describe_fault(exc)}; "
                                     f"{NOTHING_WRITTEN}") from exc
            return
        conn = self.locked(hold)
        try:
            yield conn
        except psycopg.Error as exc:
            raise self.fault(hold, exc, what) from exc

    def read(self, work: Callable[[Any], Any]) -> Any:
        """A read: on the hold's connection when this thread holds the lock (it sees what
        the hold wrote), else on a pooled one, retried once on a fresh connection."""
        hold = self.held()
        if hold is not None and hold.locked:
            try:
                return work(hold.conn)
            except driver().Error as exc:
                raise self.fault(hold, exc, "a read") from exc
        return self.pool.run(work)

    # -- reading -------------------------------------------------------------------------
    def follower(self, after_seq: int = 0, hint: dict[str, Any] | None = None, *,
                 counters: JournalCounters | None = None) -> PgFollower:
        return PgFollower(self, after_seq, counters=counters)

    def rows_after(self, seq: int, limit: int, floor: bool) -> list[Row]:
        """Up to ``limit`` rows above ``seq`` (above the archive too, when ``floor``), plus
        the rest of a group the limit cut."""
        def work(conn: Any) -> list[Row]:
            rows: list[Row] = conn.execute(self._q.after_floor if floor else self._q.after,
                                           [seq, limit]).fetchall()
            if len(rows) == limit:
                last_seq, first, count, _ = rows[-1]
                end = first + count - 1
                if last_seq < end:
                    rows += conn.execute(self._q.between, [last_seq, end]).fetchall()
            return rows

        found: list[Row] = self.read(work)
        return found

    def scan(self, after_seq: int = 0, *, envelope_only: bool = False,
             counters: JournalCounters | None = None) -> Iterator[TxnGroup]:
        follower = PgFollower(self, after_seq, counters=counters, envelope_only=envelope_only)
        while True:
            groups = follower.poll(limits.scan_chunk_records)
            yield from groups
            if not groups and follower.caught_up():
                return

    def head_seq(self) -> int:
        row = self.read(lambda conn: conn.execute(self._q.head).fetchone())
        return int(row[0]) if row else 0

    def is_empty(self) -> bool:
        row = self.read(lambda conn: conn.execute(self._q.any_record).fetchone())
        return row is None

    def oldest_seq(self) -> int:
        row = self.read(lambda conn: conn.execute(self._q.oldest).fetchone())
        return int(row[0]) if row and row[0] is not None else 1

    def records_at(self, seqs: set[int]) -> list[Record]:
        rows = self.read(lambda conn: conn.execute(self._q.at, [sorted(seqs)]).fetchall())
        found = []
        for (line,) in rows:
            record = parse_line(bytes(line))
            if record is not None:
                found.append({**record, "_segment": PART})
        return found

    def stats(self) -> JournalStats:
        def work(conn: Any) -> tuple[Any, ...]:
            row: tuple[Any, ...] = conn.execute(self._q.stats, [f'"{self.url.store}".records']
                                                ).fetchone()
            return row

        head, oldest, size = self.read(work)
        return JournalStats("postgresql", int(head), int(oldest or 1), 1, int(size or 0), None,
                            {"database": self.url.where, "schema": self.url.store})

    def lock_holder(self) -> dict[str, Any] | None:
        """The session holding the lock now, as the application name it set says."""
        prefix = f"aj-lock:{self.url.store}:"
        try:
            row = self.pool.run(lambda conn: conn.execute(self._q.holder, [
                prefix.replace("_", r"\_") + "%"]).fetchone())
        except StoreUnavailable:
            return None
        if row is None:
            return None
        _, _, pid, actor = ([*str(row[0]).split(":", 3), "", "", "", ""])[:4]
        return {"pid": pid, "actor": actor, "since": str(row[1]),
                "backend_pid": int(row[2])}

    # -- maintenance (lock held) -----------------------------------------------------------
    def redact(self, seqs: set[int], rewrite: Callable[[Record, int | None], Record],
               actor: str) -> list[int]:
        """Rewrite the rows of ``seqs`` (same seq, writer, txn) in the hold's transaction."""
        hold = self.held()
        require(hold is not None, "redact holds the store lock")
        assert hold is not None
        done: list[int] = []
        for record in self.records_at(seqs):
            record.pop("_segment", None)
            new = rewrite(record, None)
            require(new["seq"] == record["seq"] and new["txn"] == record["txn"],
                    "a rewrite keeps seq and txn")
            with self.writing("a redaction") as conn:
                conn.execute(self._q.rewrite, [encode_built(new), record["seq"]])
            done.append(int(record["seq"]))
        return sorted(done)

    def archive_through(self, seq: int, actor: str) -> list[str]:
        """Stop keeping the groups that end at or below ``seq``: the archive watermark of the
        head row moves (the rows stay: nothing is deleted)."""
        hold = self.held()
        require(hold is not None, "gc holds the store lock")
        with self.writing("gc") as conn:
            row = conn.execute(self._q.group_end_at_or_below, [seq]).fetchone()
            boundary = int(row[0]) if row and row[0] is not None else 0
            previous = int(conn.execute(self._q.head_archived).fetchone()[0])
            if boundary <= previous:
                return []
            conn.execute(self._q.set_archived, [boundary])
        return [f"records through seq {boundary}"]

    def close(self) -> None:
        self.pool.close()


class _Queries:
    """Every statement of the journal, composed once."""

    def __init__(self, sql: Any, s: Any) -> None:
        columns = "seq, txn_first, txn_count, line"
        q = sql.SQL
        self.after = q(f"SELECT {columns} FROM {{s}}.records WHERE seq > %s ORDER BY seq "
                       "LIMIT %s").format(s=s)
        self.after_floor = q(
            f"SELECT {columns} FROM {{s}}.records WHERE seq > GREATEST(%s, (SELECT "
            "archived_through FROM {s}.head WHERE id = 1)) ORDER BY seq LIMIT %s").format(s=s)
        self.between = q(f"SELECT {columns} FROM {{s}}.records WHERE seq > %s AND seq <= %s "
                         "ORDER BY seq").format(s=s)
        self.head = q("SELECT head_seq FROM {s}.head WHERE id = 1").format(s=s)
        self.head_archived = q("SELECT archived_through FROM {s}.head WHERE id = 1").format(s=s)
        self.any_record = q("SELECT 1 FROM {s}.records LIMIT 1").format(s=s)
        self.oldest = q("SELECT COALESCE((SELECT min(seq) FROM {s}.records WHERE seq > "
                        "h.archived_through), h.archived_through + 1) FROM {s}.head h "
                        "WHERE id = 1").format(s=s)
        self.at = q("SELECT line FROM {s}.records WHERE seq = ANY(%s) ORDER BY seq").format(s=s)
        self.stats = q("SELECT h.head_seq, COALESCE((SELECT min(seq) FROM {s}.records WHERE "
                       "seq > h.archived_through), h.archived_through + 1), "
                       "pg_total_relation_size(%s::regclass) FROM {s}.head h WHERE id = 1"
                       ).format(s=s)
        self.holder = q("SELECT application_name, xact_start, pid FROM pg_stat_activity "
                        "WHERE application_name LIKE %s AND pid <> pg_backend_pid() AND "
                        "wait_event_type IS DISTINCT FROM 'Lock' AND xact_start IS NOT NULL "
                        "ORDER BY xact_start LIMIT 1")
        self.rewrite = q("UPDATE {s}.records SET line = %s WHERE seq = %s").format(s=s)
        self.group_end_at_or_below = q(
            "SELECT max(txn_first + txn_count - 1) FROM {s}.records WHERE "
            "txn_first + txn_count - 1 <= %s").format(s=s)
        self.set_archived = q("UPDATE {s}.head SET archived_through = %s WHERE id = 1"
                              ).format(s=s)
        self.insert = q(
            "WITH added AS (INSERT INTO {s}.records (seq, txn_first, txn_count, writer, actor, "
            "action, item_type, item_id, line) SELECT * FROM unnest(%s::bigint[], "
            "%s::bigint[], %s::int[], %s::text[], %s::text[], %s::text[], %s::text[], "
            "%s::text[], %s::bytea[])), moved AS (UPDATE {s}.head SET head_seq = %s "
            "WHERE id = 1) SELECT pg_notify(%s, %s)").format(s=s)


class PgFollower:
    """Follows the records table from a seq: each poll reads the rows committed since."""

    def __init__(self, journal: PgJournal, after_seq: int, *,
                 counters: JournalCounters | None = None, envelope_only: bool = False) -> None:
        self.journal = journal
        self.counters = counters or JournalCounters()
        self.position = after_seq
        self.envelope_only = envelope_only
        self._started = False
        self._caught_up = False

    @property
    def head_seq(self) -> int:
        return self.position

    def caught_up(self) -> bool:
        return self._caught_up

    def checkpoint_hint(self) -> dict[str, Any]:
        return {"backend": "postgresql", "after": self.position}

    def poll(self, max_records: int | None = None) -> list[TxnGroup]:
        out: list[TxnGroup] = []
        taken = 0
        while max_records is None or taken < max_records:
            limit = limits.pg_read_chunk_records if max_records is None else \
                max(1, min(limits.pg_read_chunk_records, max_records - taken))
            rows = self.journal.rows_after(self.position, limit, floor=not self._started)
            self._started = True
            groups = self._groups(rows)
            out += groups
            taken += sum(len(g) for g in groups)
            if len(rows) < limit:
                self._caught_up = True
                return out
        self._caught_up = False
        return out

    def _groups(self, rows: list[Row]) -> list[TxnGroup]:
        """Rows as complete groups (the first may start inside a group: a scan from a seq);
        the position moves past every row read."""
        out: list[TxnGroup] = []
        current: list[Record] = []
        key: tuple[int, int] | None = None
        for seq, first, count, line in rows:
            if key != (first, count):
                self._close_group(current, key, out)
                current, key = [], (first, count)
            record = self._parse(bytes(line))
            if record is None or record["seq"] != seq:
                self.counters.lines_skipped += 1
            else:
                current.append(record)
            self.position = max(self.position, seq)
        self._close_group(current, key, out)
        return out

    def _close_group(self, records: list[Record], key: tuple[int, int] | None,
                     out: list[TxnGroup]) -> None:
        if key is None or not records:
            return
        first, count = key
        expected = first + count - records[0]["seq"]
        if len(records) == expected and records[-1]["seq"] == first + count - 1:
            out.append(TxnGroup(records))
        else:
            self.counters.incomplete_txns += 1

    def _parse(self, line: bytes) -> Record | None:
        if self.envelope_only:
            light = decode_envelope(line)
            if light is not None:
                return light
        return parse_line(line)

    def close(self) -> None:
        return None


class PgTransaction:
    """One hold of the store lock (a database transaction holding the head row)."""

    def __init__(self, journal: PgJournal, hold: Hold) -> None:
        self.journal = journal
        self.hold = hold
        self.follower: PgFollower | None = None
        self.next_seq = hold.head_seq + 1
        self.checkpoint_due = False

    def catch_up(self, follower: Follower) -> list[TxnGroup]:
        if not isinstance(follower, PgFollower):
            raise StoreCorrupt("invariant violated: a PostgreSQL journal catches up its own "
                               "follower")
        self.follower = follower
        hold = self.hold
        self.journal.locked(hold)
        groups = follower.poll() if follower.head_seq < hold.head_seq else []
        require(follower.head_seq >= hold.head_seq,
                f"the follower reached the head ({follower.head_seq} of {hold.head_seq})")
        self.next_seq = hold.head_seq + 1
        self.checkpoint_due = (hold.head_seq - hold.checkpoint_head
                               >= limits.pg_checkpoint_every_records)
        return groups

    def cut_for_checkpoint(self) -> list[TxnGroup]:
        self.checkpoint_due = False
        return []  # a table has no part to close

    def start(self, first_seq: int, records: list[Record]) -> bool:
        hold = self.hold
        conn = self.journal.locked(hold)
        try:
            if conn.execute(self.journal._q.any_record).fetchone() is not None:
                return False
        except driver().Error as exc:
            raise self.journal.fault(hold, exc, "starting the journal") from exc
        require(records[0]["seq"] == first_seq, "a journal starts at its first record")
        hold.head_seq = first_seq - 1
        self.next_seq = first_seq
        self.append([records])
        return True

    def append(self, groups: list[list[Record]]) -> None:
        records = [record for group in groups for record in group]
        if not records:
            return
        require(records[0]["seq"] == self.next_seq, f"the batch starts at seq {self.next_seq}")
        require(all(b["seq"] == a["seq"] + 1 for a, b in pairwise(records)),
                "the batch's seqs run without a gap")
        journal, hold = self.journal, self.hold
        if not hold.locked:
            journal.lock(hold)
            if hold.head_seq != self.next_seq - 1:
                journal._rollback(hold)
                raise NotApplied(f"another writer appended (head {hold.head_seq}) since this "
                                 f"transaction caught up; {NOTHING_WRITTEN}")
        last = int(records[-1]["seq"])
        try:
            hold.conn.execute(journal._q.insert, [*_columns(records), last,
                                                  journal.url.channel, str(last)])
        except driver().Error as exc:
            raise journal.fault(hold, exc, "the append") from exc
        journal.commit(hold, f"seqs {records[0]['seq']}-{last}")
        hold.head_seq = last
        self.next_seq = last + 1
        if self.follower is not None and self.follower.position < last:
            self.follower.position = last  # our own append: never read back


def _columns(records: list[Record]) -> list[list[Any]]:
    """The batch as the columns the INSERT unnests."""
    return [
        [r["seq"] for r in records], [r["txn"][0] for r in records],
        [r["txn"][1] for r in records], [r["writer"] for r in records],
        [r["actor"] for r in records], [r["action"] for r in records],
        [r["item_type"] for r in records], [r.get("item_id") for r in records],
        [encode_built(r) for r in records],
    ]


__all__ = ["PgFollower", "PgJournal", "PgTransaction"]
