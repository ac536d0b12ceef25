"""Wall-clock time for people (record ``ts``, claim expiry). Never used to order records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


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
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_rfc3339(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def plus_seconds(moment: datetime, seconds: float) -> datetime:
    return moment + timedelta(seconds=seconds)
