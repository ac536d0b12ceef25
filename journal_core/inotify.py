"""A small binding of Linux inotify (ctypes, no dependency): watch one folder, read the
names of the files that changed in it.

Only what the journal watcher needs: ``inotify_init1`` (non-blocking, close-on-exec),
``inotify_add_watch`` on one folder, and a parser of the event records read from the fd.
Where inotify is missing (another OS, a libc without it, no watch left: ``ENOSPC``), the
constructor raises ``InotifyUnavailable`` and the watcher polls instead.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import struct
import sys
from dataclasses import dataclass

from . import limits

IN_MODIFY = 0x00000002
IN_CLOSE_WRITE = 0x00000008
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = 0o2000000
WATCH_GONE = IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED  # the folder itself went away
EVENT_HEADER = struct.Struct("iIII")  # wd, mask, cookie, len (struct inotify_event)


class InotifyUnavailable(OSError):
    """This system cannot watch the folder with inotify; poll instead."""


@dataclass(frozen=True)
class Event:
    mask: int
    name: str  # the file in the watched folder ("" for the folder itself)


def _libc() -> ctypes.CDLL:
    if not sys.platform.startswith("linux"):
        raise InotifyUnavailable(errno.ENOSYS, f"inotify is Linux only (this is {sys.platform})")
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.inotify_init1.argtypes = [ctypes.c_int]
        libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
    except (OSError, AttributeError) as exc:
        raise InotifyUnavailable(errno.ENOSYS, f"no inotify in the C library: {exc}") from exc
    return libc


class Inotify:
    """One inotify instance watching one folder. ``fileno()`` is readable when events wait."""

    def __init__(self, folder: str, mask: int) -> None:
        libc = _libc()
        fd = int(libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC))
        if fd < 0:
            code = ctypes.get_errno()
            raise InotifyUnavailable(code, f"inotify_init1: {os.strerror(code)}")
        watch = int(libc.inotify_add_watch(fd, os.fsencode(folder), mask))
        if watch < 0:
            code = ctypes.get_errno()
            os.close(fd)
            raise InotifyUnavailable(code, f"inotify_add_watch {folder}: {os.strerror(code)}")
        self.fd = fd
        self.folder = folder

    def fileno(self) -> int:
        return self.fd

    def read(self) -> list[Event]:
        """The events waiting now (none if nothing is ready); never blocks."""
        try:
            data = os.read(self.fd, limits.inotify_read_bytes)
        except BlockingIOError:
            return []
        return parse_events(data)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def parse_events(data: bytes) -> list[Event]:
    """``struct inotify_event`` records, each followed by its NUL-padded name."""
    events = []
    offset = 0
    while offset + EVENT_HEADER.size <= len(data):
        _, mask, _, length = EVENT_HEADER.unpack_from(data, offset)
        start = offset + EVENT_HEADER.size
        raw = data[start:start + length].split(b"\0", 1)[0]
        events.append(Event(mask, os.fsdecode(raw)))
        offset = start + length
    return events


__all__ = ["IN_CLOSE_WRITE", "IN_CREATE", "IN_MODIFY", "IN_MOVED_TO", "IN_Q_OVERFLOW",
           "WATCH_GONE", "Event", "Inotify", "InotifyUnavailable", "parse_events"]
