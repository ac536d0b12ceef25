"""The one I/O seam: every file-system effect of the store goes through ``FileIO``.

Tests install a ``FaultPlan`` to make the N-th operation fail (once or for good, with any
errno, or as a short write) or to simulate a crash (``SimulatedCrash``, a BaseException so
that no handler in the store can swallow it). OS errors become ``StoreIOError`` here.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from dataclasses import dataclass, field

from .errors import StoreIOError

DIR_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)


class SimulatedCrash(BaseException):
    """Raised by a FaultPlan to stop the process at an I/O point, as kill -9 would."""


@dataclass
class FaultPlan:
    """Fail or crash at the N-th matching operation (1-based).

    ``ops`` limits which operation names count (None = all). ``persistent`` keeps failing
    every matching operation from the N-th on. ``short_write`` makes a write operation
    write half its bytes instead of raising.
    """

    at: int
    ops: frozenset[str] | None = None
    error_number: int = errno.EIO
    persistent: bool = False
    crash: bool = False
    short_write: bool = False
    seen: int = 0
    fired: int = 0
    log: list[str] = field(default_factory=list)

    def check(self, op: str, path: str) -> str | None:
        """Return None to proceed, 'short' for a short write; raise for a failure."""
        if self.ops is not None and op not in self.ops:
            return None
        self.seen += 1
        self.log.append(f"{op} {path}")
        hit = self.seen == self.at or (self.persistent and self.seen > self.at)
        if not hit:
            return None
        self.fired += 1
        if self.crash:
            raise SimulatedCrash(f"crash at {op} #{self.seen} ({path})")
        if self.short_write and op == "write":
            return "short"
        raise OSError(self.error_number, os.strerror(self.error_number), path)


class FileIO:
    """File-system effects of the store. Subclass-free: faults come from ``plan``."""

    def __init__(self) -> None:
        self.plan: FaultPlan | None = None
        self.observer: Callable[[str, str], None] | None = None

    # -- the seam -------------------------------------------------------------------
    def _gate(self, op: str, path: str) -> str | None:
        if self.observer is not None:
            self.observer(op, path)
        if self.plan is None:
            return None
        return self.plan.check(op, path)

    def _fail(self, op: str, path: str, exc: OSError) -> StoreIOError:
        return StoreIOError(f"{op} {path}: {exc.strerror or exc}")

    # -- operations -----------------------------------------------------------------
    def open_append(self, path: str) -> int:
        try:
            self._gate("open", path)
            return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise self._fail("open", path, exc) from exc

    def create_exclusive(self, path: str) -> None:
        try:
            self._gate("create", path)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
            os.close(fd)
        except FileExistsError:
            return
        except OSError as exc:
            raise self._fail("create", path, exc) from exc

    def write(self, fd: int, data: bytes, path: str) -> None:
        """Write all of ``data`` with ONE os.write; a short write raises."""
        try:
            mode = self._gate("write", path)
            chunk = data[: len(data) // 2] if mode == "short" else data
            written = os.write(fd, chunk)
        except OSError as exc:
            raise self._fail("write", path, exc) from exc
        if written != len(data):
            raise StoreIOError(f"short write to {path}: {written} of {len(data)} bytes")

    def fsync(self, fd: int, path: str) -> None:
        try:
            self._gate("fsync", path)
            os.fsync(fd)
        except OSError as exc:
            raise self._fail("fsync", path, exc) from exc

    def fsync_dir(self, path: str) -> None:
        try:
            self._gate("fsync_dir", path)
            fd = os.open(path, DIR_OPEN_FLAGS)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise self._fail("fsync_dir", path, exc) from exc

    def close(self, fd: int) -> None:
        try:
            os.close(fd)
        except OSError:
            return  # closing is not a write; the data was already written or refused

    def rename(self, src: str, dst: str) -> None:
        try:
            self._gate("rename", dst)
            os.replace(src, dst)
        except OSError as exc:
            raise self._fail("rename", dst, exc) from exc

    def unlink(self, path: str) -> None:
        try:
            self._gate("unlink", path)
            os.unlink(path)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise self._fail("unlink", path, exc) from exc

    def mkdir(self, path: str) -> None:
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as exc:
            raise self._fail("mkdir", path, exc) from exc

    def listdir(self, path: str) -> list[str]:
        try:
            return os.listdir(path)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise self._fail("list", path, exc) from exc

    def read_file(self, path: str) -> bytes | None:
        """Whole file, or None when it does not exist."""
        try:
            with open(path, "rb") as handle:
                return handle.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self._fail("read", path, exc) from exc

    def read_range(self, path: str, offset: int, size: int = -1) -> bytes:
        try:
            with open(path, "rb") as handle:
                handle.seek(offset)
                return handle.read(size)
        except FileNotFoundError:
            return b""
        except OSError as exc:
            raise self._fail("read", path, exc) from exc

    def size(self, path: str) -> int:
        try:
            return os.stat(path).st_size
        except FileNotFoundError:
            return -1
        except OSError as exc:
            raise self._fail("stat", path, exc) from exc

    def write_in_place(self, path: str, data: bytes) -> None:
        """Overwrite a small cache file in place (projections, meta): no rename, no fsync.

        Readers of such files tolerate a torn read (checksum or parse failure -> retry or
        rebuild); the journal, not this file, is what makes the data durable.
        """
        try:
            self._gate("write_file", path)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except FileNotFoundError:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                written = os.write(fd, data)
                if written != len(data):
                    raise StoreIOError(f"short write to {path}: {written} of {len(data)} bytes")
                os.ftruncate(fd, len(data))
            finally:
                os.close(fd)
        except OSError as exc:
            raise self._fail("write_file", path, exc) from exc

    def overwrite_at(self, path: str, offset: int, data: bytes) -> None:
        """Overwrite bytes in place and fsync (offline doctor --repair only)."""
        try:
            self._gate("write", path)
            fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
            try:
                if os.pwrite(fd, data, offset) != len(data):
                    raise StoreIOError(f"short write to {path} at {offset}")
                self._gate("fsync", path)
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise self._fail("write", path, exc) from exc

    def write_atomic(self, path: str, data: bytes, *, durable: bool = True) -> None:
        """temp file, (fsync), rename, (fsync folder): the file is old or new, never torn."""
        tmp = f"{path}.tmp.{os.getpid()}"
        try:
            self._gate("write_file", tmp)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
            try:
                written = os.write(fd, data)
                if written != len(data):
                    raise StoreIOError(f"short write to {tmp}: {written} of {len(data)} bytes")
                if durable:
                    self._gate("fsync", tmp)
                    os.fsync(fd)
            finally:
                os.close(fd)
            self._gate("rename", path)
            os.replace(tmp, path)
        except OSError as exc:
            raise self._fail("write_file", path, exc) from exc
        if durable:
            self.fsync_dir(os.path.dirname(path) or ".")
