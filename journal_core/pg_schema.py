"""The schema of a PostgreSQL store, its version and its migrations (docs/postgresql.md,
"Schema").

One store is one PostgreSQL schema, named after the store:

    meta(key text primary key, value jsonb)      'schema_version', 'store' (store_id, ...)
    head(id = 1, head_seq, checkpoint_head, archived_through)
                                                 the one row whose lock is the store lock
    records(seq bigint primary key, txn_first, txn_count, writer, actor, action,
            item_type, item_id, line bytea)      the journal: one row per record
    blobs(sha256 text primary key, data bytea, archived)
    checkpoints(head_seq bigint primary key, data bytea, archived)
    cursors(actor text primary key, last_seq bigint)

``ensure_schema`` (run by ``agentjournal init``) creates it, or brings an older one up to
``SCHEMA_VERSION`` one migration at a time, all in one transaction under an advisory lock:
two inits at once, or an init beside running servers, are safe. Opening a store checks the
version and never migrates by itself: a newer schema is refused (this agentjournal is too
old for it), an older one asks for ``agentjournal init``.
"""

from __future__ import annotations

from typing import Any

from .errors import StoreCorrupt
from .pg_connect import driver

SCHEMA_VERSION = 1

# MIGRATIONS[n] takes a schema from version n - 1 to n; ``{s}`` is the schema (quoted).
MIGRATIONS: dict[int, list[str]] = {
    1: [
        "CREATE TABLE {s}.meta (key text PRIMARY KEY, value jsonb NOT NULL)",
        "CREATE TABLE {s}.head (id int PRIMARY KEY CHECK (id = 1), "
        "head_seq bigint NOT NULL DEFAULT 0, checkpoint_head bigint NOT NULL DEFAULT 0, "
        "archived_through bigint NOT NULL DEFAULT 0)",
        "INSERT INTO {s}.head (id) VALUES (1)",
        "CREATE TABLE {s}.records (seq bigint PRIMARY KEY, txn_first bigint NOT NULL, "
        "txn_count int NOT NULL, writer text NOT NULL, actor text NOT NULL, "
        "action text NOT NULL, item_type text NOT NULL, item_id text, line bytea NOT NULL, "
        "CHECK (seq >= txn_first AND seq < txn_first + txn_count))",
        "CREATE TABLE {s}.blobs (sha256 text PRIMARY KEY, data bytea NOT NULL, "
        "archived boolean NOT NULL DEFAULT false)",
        "CREATE TABLE {s}.checkpoints (head_seq bigint PRIMARY KEY, data bytea NOT NULL, "
        "archived boolean NOT NULL DEFAULT false)",
        "CREATE TABLE {s}.cursors (actor text PRIMARY KEY, last_seq bigint NOT NULL)",
    ],
}


class SchemaMismatch(StoreCorrupt):
    """A store schema of another version than this agentjournal's."""


def quoted(schema: str) -> Any:
    return driver().sql.Identifier(schema)


def schema_version(conn: Any, schema: str) -> int | None:
    """The version of the store's schema; None when there is no store schema."""
    sql = driver().sql
    found = conn.execute("SELECT to_regclass(%s)", [f'"{schema}".meta']).fetchone()
    if found is None or found[0] is None:
        return None
    row = conn.execute(sql.SQL("SELECT value FROM {}.meta WHERE key = 'schema_version'")
                       .format(quoted(schema))).fetchone()
    return int(row[0]) if row is not None else 0


def check_version(version: int | None, where: str) -> None:
    """Opening: the schema must be this version (None: no store there, checked by the
    caller)."""
    if version is None or version == SCHEMA_VERSION:
        return
    if version > SCHEMA_VERSION:
        raise SchemaMismatch(
            f"the store {where} has schema version {version}; this agentjournal knows "
            f"versions up to {SCHEMA_VERSION}: upgrade agentjournal")
    raise SchemaMismatch(
        f"the store {where} has schema version {version}, older than this agentjournal's "
        f"{SCHEMA_VERSION}: run `agentjournal init --store URL` once to migrate it")


def ensure_schema(conn: Any, schema: str, where: str) -> list[int]:
    """Create the store's schema or migrate it to SCHEMA_VERSION (idempotent); the
    migrations applied."""
    sql = driver().sql
    s = quoted(schema)
    applied: list[int] = []
    conn.execute("BEGIN")
    committed = False
    try:
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"agentjournal:{schema}"])
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(s))
        version = schema_version(conn, schema) or 0
        if version > SCHEMA_VERSION:
            check_version(version, where)
        for step in range(version + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[step]:
                conn.execute(sql.SQL(statement).format(s=s))
            conn.execute(sql.SQL(
                "INSERT INTO {}.meta (key, value) VALUES ('schema_version', %s) "
                "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value").format(s),
                [driver().types.json.Jsonb(step)])
            applied.append(step)
        conn.execute("COMMIT")
        committed = True
    finally:
        if not committed and not conn.closed:
            conn.execute("ROLLBACK")  # the error itself propagates
    return applied


__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "SchemaMismatch", "check_version",
           "ensure_schema", "schema_version"]
