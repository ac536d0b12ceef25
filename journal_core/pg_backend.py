"""A store in PostgreSQL (docs/postgresql.md): the journal, blobs, checkpoints, cursors and
the store's info in the tables of one schema, and a change watcher woken by LISTEN/NOTIFY.

Nothing of the store lives in a server process that the database does not have: kill any
server at any time, start another anywhere, and it catches up from the database (the
newest checkpoint, then the records after it). Projections are files for people; a
PostgreSQL store has none unless a folder is given for them (``agentjournal project``).
"""

from __future__ import annotations

import hashlib
import logging
import threading
from typing import Any

from . import limits
from .blob import blob_ref, payload_of
from .checkpoint import checkpoint_name
from .errors import BlobError, StoreError, StoreNotFound
from .fileio import FileIO
from .pg_connect import connect, describe_fault, driver
from .pg_journal import PgJournal
from .pg_schema import check_version, ensure_schema, schema_version
from .projection import Projections, Projector
from .store_url import StoreUrl
from .watch import ChangeWatcher, JournalWatcher

logger = logging.getLogger("agentjournal.postgresql")


class PgBlobs:
    """Content-addressed oversized payloads, in ``blobs``. A put inside a lock hold commits
    with the records that reference it."""

    def __init__(self, journal: PgJournal) -> None:
        self.journal = journal
        q, s = journal.sql.SQL, journal.schema
        self._put = q("INSERT INTO {s}.blobs (sha256, data) VALUES (%s, %s) ON CONFLICT "
                      "(sha256) DO UPDATE SET archived = false").format(s=s)
        self._get = q("SELECT data FROM {s}.blobs WHERE sha256 = %s").format(s=s)
        self._archive = q("UPDATE {s}.blobs SET archived = true WHERE sha256 = %s").format(s=s)
        self._remove = q("DELETE FROM {s}.blobs WHERE sha256 = %s").format(s=s)
        self._all = q("SELECT sha256 FROM {s}.blobs WHERE NOT archived ORDER BY sha256"
                      ).format(s=s)

    def put(self, data: bytes) -> dict[str, Any]:
        ref = blob_ref(data)
        with self.journal.writing("storing a blob") as conn:
            conn.execute(self._put, [ref["sha256"], data])
        return ref

    def get(self, ref: dict[str, Any]) -> bytes:
        sha256 = str(ref.get("sha256"))
        row = self.journal.read(lambda conn: conn.execute(self._get, [sha256]).fetchone())
        if row is None:
            raise BlobError(f"blob {sha256} is missing from the store's database")
        data = bytes(row[0])
        if hashlib.sha256(data).hexdigest() != sha256:
            raise BlobError(f"blob {sha256} does not match its hash (damaged)")
        return data

    def get_payload(self, ref: dict[str, Any]) -> dict[str, Any]:
        return payload_of(self.get(ref), ref)

    def exists(self, ref: dict[str, Any]) -> bool:
        try:
            return len(self.get(ref)) == ref.get("bytes")
        except BlobError:
            return False

    def archive(self, sha256: str) -> None:
        with self.journal.writing("archiving a blob") as conn:
            conn.execute(self._archive, [sha256])

    def remove(self, sha256: str) -> None:
        with self.journal.writing("removing a blob") as conn:
            conn.execute(self._remove, [sha256])

    def all_hashes(self) -> list[str]:
        rows = self.journal.read(lambda conn: conn.execute(self._all).fetchall())
        return [str(row[0]) for row in rows]


class PgCheckpoints:
    """Checkpoints in ``checkpoints``; writing one moves the head row's ``checkpoint_head``
    (what ``checkpoint_due`` counts from), in the same transaction."""

    def __init__(self, journal: PgJournal) -> None:
        self.journal = journal
        q, s = journal.sql.SQL, journal.schema
        self._heads = q("SELECT head_seq FROM {s}.checkpoints WHERE NOT archived "
                        "ORDER BY head_seq").format(s=s)
        self._read = q("SELECT data FROM {s}.checkpoints WHERE head_seq = %s AND NOT archived"
                       ).format(s=s)
        self._write = q(
            "WITH put AS (INSERT INTO {s}.checkpoints (head_seq, data) VALUES (%s, %s) "
            "ON CONFLICT (head_seq) DO UPDATE SET data = EXCLUDED.data, archived = false) "
            "UPDATE {s}.head SET checkpoint_head = GREATEST(checkpoint_head, %s) WHERE id = 1"
        ).format(s=s)
        self._archive = q("UPDATE {s}.checkpoints SET archived = true WHERE head_seq = %s "
                          "AND NOT archived RETURNING head_seq").format(s=s)

    def heads(self) -> list[int]:
        rows = self.journal.read(lambda conn: conn.execute(self._heads).fetchall())
        return [int(row[0]) for row in rows]

    def read(self, head: int) -> bytes | None:
        row = self.journal.read(lambda conn: conn.execute(self._read, [head]).fetchone())
        return bytes(row[0]) if row is not None else None

    def write(self, head: int, data: bytes) -> None:
        with self.journal.writing("writing a checkpoint") as conn:
            conn.execute(self._write, [head, data, head])

    def archive(self, head: int) -> bool:
        with self.journal.writing("archiving a checkpoint") as conn:
            return conn.execute(self._archive, [head]).fetchone() is not None

    def describe(self, head: int) -> str:
        return checkpoint_name(head)


class PgCursors:
    """Per-actor cursors in ``cursors``: an upsert that never moves one back, never under
    the store lock."""

    def __init__(self, journal: PgJournal) -> None:
        self.journal = journal
        q, s = journal.sql.SQL, journal.schema
        self._get = q("SELECT last_seq FROM {s}.cursors WHERE actor = %s").format(s=s)
        self._advance = q(
            "INSERT INTO {s}.cursors AS c (actor, last_seq) VALUES (%s, %s) ON CONFLICT "
            "(actor) DO UPDATE SET last_seq = GREATEST(c.last_seq, EXCLUDED.last_seq) "
            "RETURNING last_seq").format(s=s)

    def get(self, actor: str) -> int:
        row = self.journal.pool.run(lambda conn: conn.execute(self._get, [actor]).fetchone())
        return int(row[0]) if row is not None else 0

    def advance(self, actor: str, last_seq: int) -> int:
        # Idempotent (it never moves back), so a retry on a fresh connection is safe.
        row = self.journal.pool.run(
            lambda conn: conn.execute(self._advance, [actor, last_seq]).fetchone())
        return int(row[0])


class PgWatcher(JournalWatcher):
    """The change watcher of a PostgreSQL store: one connection LISTENing on the store's
    channel (every append NOTIFYs in its transaction), read by one thread. A notification
    lost (the connection dropped, the database restarted) costs at most ``poll_s``: the
    thread looks at the head seq whenever a second passes without one, and after every
    reconnection."""

    def __init__(self, url: StoreUrl, journal: PgJournal) -> None:
        self.url = url
        self._listener: Any = None
        super().__init__(None, journal.head_seq, use_inotify=False)
        self.mechanism = "listen/notify"

    def _run(self) -> None:
        while not self._closed.is_set():
            try:
                self._listen()
            except (StoreError, driver().Error) as exc:
                self.mechanism = "polling"
                logger.info("LISTEN on %s lost (%s); polling until it is back",
                            self.url.where, describe_fault(exc))
            finally:
                self._drop_listener()
            if not self._closed.wait(limits.pg_listen_retry_s):
                self._poll_once()

    def _listen(self) -> None:
        conn = self._listener = connect(
            self.url.dsn, application_name=f"agentjournal-listen:{self.url.store}")
        conn.execute(driver().sql.SQL("LISTEN {}").format(driver().sql.Identifier(
            self.url.channel)))
        self.mechanism = "listen/notify"
        self._notify()  # (re)connected: whatever happened meanwhile, look again
        while not self._closed.is_set():
            woken = False
            for _ in conn.notifies(timeout=self.poll_s, stop_after=1):
                woken = True
            if woken:
                self._notify()
            else:
                self._poll_once()

    def _drop_listener(self) -> None:
        conn, self._listener = self._listener, None
        if conn is not None:
            try:
                conn.close()
            except driver().Error:
                return


class PgBackend:
    """Everything a PostgreSQL store keeps (``Store(backend=PgBackend(url))``)."""

    name = "postgresql"
    read_only = False
    read_only_reason: str | None = None

    def __init__(self, url: StoreUrl, *, projection_dir: str | None = None,
                 projections_mode: str = "sync", fileio: FileIO | None = None) -> None:
        self.url = url
        self.where = url.where
        self.location = None
        self.journal = PgJournal(url)
        self.blobs = PgBlobs(self.journal)
        self.checkpoints = PgCheckpoints(self.journal)
        self.cursors = PgCursors(self.journal)
        self.projections: Projections | None = None
        self.projector: Projector | None = None
        if projection_dir is not None:
            self._projection_folder(projection_dir, projections_mode, fileio or FileIO())
        self._watcher: PgWatcher | None = None
        self._watcher_lock = threading.Lock()
        q, s = self.journal.sql.SQL, self.journal.schema
        self._info = q("SELECT value FROM {s}.meta WHERE key = 'store'").format(s=s)
        self._create = q("INSERT INTO {s}.meta (key, value) VALUES ('store', %s) "
                         "ON CONFLICT (key) DO NOTHING").format(s=s)

    def _projection_folder(self, folder: str, mode: str, fileio: FileIO) -> None:
        """Projection files in ``folder`` (state/, meta.json, projections.lock)."""
        import os

        fileio.mkdir(folder)
        fileio.confine(folder)
        self.projections = Projections(os.path.join(folder, "state"), fileio)
        self.projections.ensure_dirs()
        self.projector = Projector(self.projections, os.path.join(folder, "meta.json"),
                                   os.path.join(folder, "projections.lock"), fileio, "", mode)

    def watcher(self) -> ChangeWatcher:
        with self._watcher_lock:
            if self._watcher is None:
                self._watcher = PgWatcher(self.url, self.journal)
            return self._watcher

    def schema_version(self) -> int | None:
        found: int | None = self.journal.pool.run(
            lambda conn: schema_version(conn, self.url.store))
        return found

    def store_info(self) -> dict[str, Any] | None:
        version = self.schema_version()
        if version is None:
            return None
        check_version(version, self.where)
        row = self.journal.read(lambda conn: conn.execute(self._info).fetchone())
        if row is None:
            return None
        info = row[0]
        if not isinstance(info, dict) or not isinstance(info.get("store_id"), str):
            raise StoreNotFound(f"the store {self.where} holds no store_id (run `agentjournal "
                                "init`)")
        return info

    def prepare(self) -> None:
        """The schema (created, or migrated to this version): idempotent."""
        applied = self.journal.pool.run(
            lambda conn: ensure_schema(conn, self.url.store, self.where), retry=False)
        if applied:
            logger.info("schema of %s at version %s", self.where, applied[-1])

    def create(self, info: dict[str, Any]) -> None:
        with self.journal.writing("recording the store") as conn:
            conn.execute(self._create, [driver().types.json.Jsonb(info)])

    def close(self) -> None:
        if self._watcher is not None:
            self._watcher.close()
        if self.projector is not None:
            self.projector.close()
        self.journal.close()


__all__ = ["PgBackend", "PgBlobs", "PgCheckpoints", "PgCursors", "PgWatcher"]
