"""The store's own exception types.

OS and parse errors are translated into these at one boundary (fileio, record, meta), so a
caller can tell "the caller asked for something wrong" (``UserError`` subclasses: nothing was
written) from "the store could not do it" (``StoreIOError``: the mutation failed).
"""

from __future__ import annotations

from typing import Any


class StoreError(Exception):
    """Base of every error raised by journal_core."""


class UserError(StoreError):
    """The request was wrong in a way the caller can fix. Nothing was written."""


class InvalidArgument(UserError):
    """A bad argument: wrong shape, out of range, unsafe id."""


class NotFound(UserError):
    """An id that names no live entity."""


class Conflict(UserError):
    """The request collides with the current state (for example a claim held by another)."""


class ClaimConflict(Conflict):
    """The target holds an active, unexpired claim of another actor."""

    def __init__(self, target: str, holder: str, claim_id: str, expires_at: str,
                 theirs: str | None = None) -> None:
        self.target = target
        self.holder = holder
        self.claim_id = claim_id
        self.expires_at = expires_at
        self.theirs = theirs  # the overlapping target of theirs, when it is not the same one
        what = f"target {target!r}" if theirs is None else \
            f"target {target!r} overlaps {theirs!r}, which is"
        super().__init__(
            f"{what} claimed by {holder!r} ({claim_id}) until {expires_at}; "
            "pick other work, or wait until the claim expires or its holder releases it"
        )


class PayloadTooLarge(UserError):
    """A record or payload over the limits."""


class RecordInvalid(StoreError):
    """A record that breaks the envelope or its action class."""


class LockTimeout(StoreError):
    """The store lock was not acquired within the bounded wait."""

    def __init__(self, wait_s: float, holder: dict[str, Any] | None) -> None:
        self.wait_s = wait_s
        self.holder = holder
        if holder:
            who = (
                f"held by pid {holder.get('pid')} (actor {holder.get('actor')!r}) "
                f"since {holder.get('since')}"
            )
        else:
            who = "holder unknown"
        super().__init__(f"store lock not acquired within {wait_s:g}s: {who}")


class StoreIOError(StoreError):
    """A file-system operation failed. A failed write is a failed mutation."""

    def __init__(self, message: str, operation: str | None = None) -> None:
        super().__init__(message)
        self.operation = operation  # the I/O seam's operation name, when it comes from there


class SymlinkRefused(StoreIOError):
    """A symbolic link where the store expected its own file or folder: never followed."""


class NotApplied(StoreIOError):
    """The journal write failed before anything of the mutation was in the journal: it was
    not applied, and retrying is safe."""


class OutcomeUnknown(StoreIOError):
    """The journal write happened but could not be confirmed durable (the fsync failed, or
    the journal file was replaced while writing): the mutation may have been applied.
    Retrying with the same ``request_id`` is safe: a repeat returns the first answer."""


class StoreUnavailable(StoreIOError):
    """The store's database cannot be reached (down, restarting, a network fault). Nothing
    was read or written by the call that hears it; the store recovers once it is back."""


class ReadOnlyStore(StoreError):
    """The store can be read but not written (a read-only file system or folder)."""


class StoreNotFound(StoreError):
    """No store where one was looked for (and none is created implicitly)."""


class RequestReused(UserError):
    """A ``request_id`` repeated with different arguments."""


class StoreCorrupt(StoreError):
    """The store is damaged in a way the hot path will not guess around."""


class JournalReplaced(StoreCorrupt):
    """A journal file this process holds open is no longer the one at its path."""


class BlobError(StoreCorrupt):
    """A referenced blob is missing or does not match its hash."""
