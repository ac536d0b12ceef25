"""A store named by a URL (docs/postgresql.md, "URL forms").

    postgresql://user@host:5432/dbname                 the store "agentjournal" in dbname
    postgresql://user@host:5432/dbname?store=team_a    the store "team_a" in dbname
    postgres://...                                      the same

Every store of a database is one PostgreSQL schema named after the store, so several stores
share one database. ``store`` is the only parameter agentjournal reads; every other one
(``sslmode``, ``connect_timeout``, ``application_name``, ...) goes to libpq as given. A
password is best left to ``~/.pgpass`` or ``PGPASSWORD``: it never appears where the store
is shown (``where``).

A store argument that looks like a URL of any other scheme is refused: it is never taken
for a folder name (``postgresql:/host/x`` would otherwise be a folder).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from . import limits
from .errors import InvalidArgument

SCHEMES_SERVED = ("postgresql", "postgres")
STORE_PARAMETER = "store"
STORE_NAME_DEFAULT = "agentjournal"
STORE_NAME = re.compile(rf"[a-z_][a-z0-9_]{{0,{limits.pg_store_name_chars_max - 1}}}")
URL_LIKE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


@dataclass(frozen=True)
class StoreUrl:
    """A PostgreSQL store: the libpq connection string and the store's schema."""

    dsn: str  # for libpq: the URL without agentjournal's own parameter
    store: str  # the store name, which is its schema
    where: str  # for people: the URL without its password

    kind = "postgresql"

    @property
    def root(self) -> str:
        """What commands show as where the store is (a Location's ``root``)."""
        return self.where

    @property
    def exists(self) -> bool:
        """Whether the store was initialized there (asks the database, once per call)."""
        from .pg_connect import connect

        conn = connect(self.dsn, application_name=f"agentjournal:{self.store}")
        try:
            found = conn.execute("SELECT to_regclass(%s)", [f'"{self.store}".meta']).fetchone()
            if found is None or found[0] is None:
                return False
            row = conn.execute(f'SELECT 1 FROM "{self.store}".meta WHERE key = %s',
                               ["store"]).fetchone()
            return row is not None
        finally:
            conn.close()

    @property
    def channel(self) -> str:
        """The NOTIFY channel of this store."""
        return f"agentjournal_{self.store}"


def looks_like_url(value: str) -> bool:
    return bool(URL_LIKE.match(value))


def parse_store_url(value: str) -> StoreUrl:
    """The store a URL names; ``InvalidArgument`` for a scheme not served or a bad name."""
    scheme = value.split("://", 1)[0].lower()
    if scheme not in SCHEMES_SERVED:
        served = ", ".join(f"{s}://" for s in SCHEMES_SERVED)
        raise InvalidArgument(
            f"{_without_password(value)[:80]!r} looks like a URL of a scheme agentjournal does "
            f"not serve ({scheme}://; served: {served}); give a folder path or a "
            "postgresql:// URL")
    parts = urlsplit(value)
    if not parts.path.strip("/"):
        raise InvalidArgument(f"{_without_password(value)!r} names no database: use "
                              "postgresql://user@host:5432/dbname")
    query = parse_qsl(parts.query, keep_blank_values=True)
    names = [v for k, v in query if k == STORE_PARAMETER]
    store = names[-1] if names else STORE_NAME_DEFAULT
    if not STORE_NAME.fullmatch(store):
        raise InvalidArgument(
            f"store name {store!r}: use 1-{limits.pg_store_name_chars_max} characters of "
            "a-z, 0-9 and _, starting with a letter or _ (it is the store's schema)")
    rest = urlencode([(k, v) for k, v in query if k != STORE_PARAMETER])
    dsn = urlunsplit((parts.scheme, parts.netloc, parts.path, rest, ""))
    shown = urlunsplit((parts.scheme, _netloc_without_password(parts.netloc), parts.path,
                        rest, ""))
    return StoreUrl(dsn, store, f"{shown}{'&' if rest else '?'}store={store}")


def _netloc_without_password(netloc: str) -> str:
    if "@" not in netloc:
        return netloc
    credentials, host = netloc.rsplit("@", 1)
    user = credentials.split(":", 1)[0]
    return f"{user}@{host}"


def _without_password(value: str) -> str:
    if "://" not in value:
        return value
    scheme, rest = value.split("://", 1)
    netloc, _, tail = rest.partition("/")
    slash = "/" if "/" in rest else ""
    return f"{scheme}://{_netloc_without_password(netloc)}{slash}{tail}"


__all__ = ["SCHEMES_SERVED", "StoreUrl", "looks_like_url", "parse_store_url"]
