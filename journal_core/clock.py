"""Wall-clock time for people (record ``ts``, claim expiry). Never used to order records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

RFC3339_CHARS = len("2026-11-25T10:00:00.000000Z")


def boot_id() -> str | None:
    """An id of this boot of the machine (Linux), or None where the OS does not tell.

    A process crash keeps the page cache; only a power loss or a kernel crash -- a new
    boot -- can lose unsynced writes, so a store re-checks its caches once per boot."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as file:
            return file.read().strip() or None
    except OSError:
        return None


def utc_now() -> datetime:
    return datetime.now(UTC)


def to_rfc3339(moment: datetime) -> str:
    """``2026-11-25T10:00:00.123456Z`` (isoformat: several times faster than strftime)."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse_rfc3339(text: str) -> datetime:
    if len(text) != RFC3339_CHARS or not text.endswith("Z"):
        raise ValueError(f"not a UTC timestamp like 2026-11-25T10:00:00.000000Z: {text!r}")
    return datetime.fromisoformat(text[:-1]).replace(tzinfo=UTC)


def plus_seconds(moment: datetime, seconds: float) -> datetime:
    return moment + timedelta(seconds=seconds)
