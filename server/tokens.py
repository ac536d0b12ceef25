"""Per-client tokens of an HTTP server: who may act as whom (README, "Tokens").

A token file holds, for each client, the sha256 of its token (never the token itself), the
actor names it may act as -- exact names, or a prefix ending in ``*`` such as
``ci-runner-*`` -- and whether it may write (``read-write``) or only read (``read-only``):

    {"format": 1, "tokens": [{"name": "ci", "sha256": "...", "actors": ["ci-runner-*"],
                              "access": "read-write", "created": "..."}]}

``agentjournal token add|list|revoke`` manages it; ``serve --transport http --token-file``
(or ``$AGENTJOURNAL_TOKEN_FILE``) enforces it. A call whose actor the token does not allow,
or a write through a read-only token, is refused with nothing written. The single
``AGENTJOURNAL_TOKEN`` keeps working beside it, allowing every actor. The server reads the
file again when it changes, so a revoked token stops working without a restart.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from journal_core import InvalidArgument

TOKEN_FILE_ENV = "AGENTJOURNAL_TOKEN_FILE"
TOKEN_FILE_FORMAT = 1
ACCESS = ("read-write", "read-only")
TOKEN_BYTES = 32
TOKEN_PREFIX = "ajt_"
CURSOR_TOOLS = frozenset({"ack"})  # move the caller's own cursor: allowed to read-only tokens
GRANT_KEY = "agentjournal_grant"  # where the HTTP layer leaves the caller's grant (scope state)


class ActorRefused(InvalidArgument):
    """The caller's token does not allow this actor, or allows no writes."""


@dataclass(frozen=True)
class Grant:
    name: str
    actors: tuple[str, ...]
    access: str

    def allows_actor(self, actor: str) -> bool:
        return any(actor.startswith(p[:-1]) if p.endswith("*") else actor == p
                   for p in self.actors)

    def check_actor(self, actor: str) -> None:
        if not self.allows_actor(actor):
            raise ActorRefused(f"the token {self.name!r} may act only as "
                               f"{', '.join(self.actors)}; not as {actor!r}")

    def check_write(self, tool: str) -> None:
        if self.access != "read-write" and tool not in CURSOR_TOOLS:
            raise ActorRefused(f"the token {self.name!r} is read-only: {tool} writes")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def read_file(path: str) -> list[dict[str, Any]]:
    try:
        with open(path, "rb") as handle:
            doc = orjson.loads(handle.read())
    except FileNotFoundError:
        return []
    except (OSError, orjson.JSONDecodeError) as exc:
        raise InvalidArgument(f"the token file {path} is unreadable: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("format") != TOKEN_FILE_FORMAT or \
            not isinstance(doc.get("tokens"), list):
        raise InvalidArgument(f"the token file {path} is not a token file of format "
                              f"{TOKEN_FILE_FORMAT}")
    return [entry for entry in doc["tokens"] if isinstance(entry, dict)]


def write_file(path: str, entries: list[dict[str, Any]]) -> None:
    """Atomically, readable by its owner only."""
    data = orjson.dumps({"format": TOKEN_FILE_FORMAT, "tokens": entries},
                        option=orjson.OPT_INDENT_2) + b"\n"
    tmp = f"{path}.tmp.{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def add(path: str, name: str, actors: list[str], access: str) -> str:
    """A new token for ``name``; the token is returned once and only its hash is kept."""
    if not name or len(name) > 64:
        raise InvalidArgument("a token needs a name of 1-64 characters")
    if not actors or any(not a or "*" in a[:-1] for a in actors):
        raise InvalidArgument("give --actor NAME or --actor PREFIX* at least once ('*' only "
                              "at the end)")
    if access not in ACCESS:
        raise InvalidArgument(f"access must be one of {', '.join(ACCESS)}")
    entries = read_file(path)
    if any(entry.get("name") == name for entry in entries):
        raise InvalidArgument(f"a token named {name!r} exists; revoke it first")
    token = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
    entries.append({"name": name, "sha256": hash_token(token), "actors": actors,
                    "access": access, "created": datetime.now(UTC).isoformat()})
    write_file(path, entries)
    return token


def revoke(path: str, name: str) -> bool:
    entries = read_file(path)
    kept = [entry for entry in entries if entry.get("name") != name]
    if len(kept) == len(entries):
        return False
    write_file(path, kept)
    return True


class TokenFile:
    """The grants of a token file, read again whenever the file changes."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._grants: list[tuple[str, Grant]] = []
        self._load()

    def _load(self) -> None:
        try:
            st = os.stat(self.path)
            stamp: tuple[int, int] | None = (st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            stamp = None
        with self._lock:
            if stamp == self._stamp and self._stamp is not None:
                return
            self._grants = [
                (str(e.get("sha256")), Grant(str(e.get("name")),
                                             tuple(str(a) for a in e.get("actors") or []),
                                             str(e.get("access"))))
                for e in read_file(self.path)]
            self._stamp = stamp

    def grant_for(self, token: bytes) -> Grant | None:
        self._load()
        digest = hashlib.sha256(token).hexdigest()
        for sha, grant in self._grants:
            if hmac.compare_digest(sha, digest):
                return grant
        return None


def grant_of(context: Any) -> Grant | None:
    """The grant the HTTP layer found for this call's token (None: stdio, or the single
    token, which allows everything)."""
    try:
        request = context.request_context.request
    except (AttributeError, ValueError):
        return None
    state = getattr(request, "scope", {}).get("state") or {}
    found = state.get(GRANT_KEY)
    return found if isinstance(found, Grant) else None
