"""The one I/O seam: every file-system effect of the store goes through ``FileIO``.

Tests install a ``FaultPlan`` to make the N-th operation fail (once or for good, with any
errno, or as a short write) or to simulate a crash (``SimulatedCrash``, a BaseException so
that no handler in the store can swallow it). OS errors become ``StoreIOError`` here.

The store never follows a symbolic link it did not make: every open is ``O_NOFOLLOW``, and
every folder between a confining root (the store's folders) and the file is checked with
``lstat``, so a link planted by a repository (``state/plan -> /home/you``) is refused
(``SymlinkRefused``) instead of written through.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field

from .errors import StoreIOError, SymlinkRefused

DIR_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | os.O_CLOEXEC
NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
READ_FLAGS = os.O_RDONLY | os.O_CLOEXEC | NOFOLLOW
FILE_MODE = 0o644


class SimulatedCrash(BaseException):
    """Raised by a FaultPlan to stop the process at an I/O point, as kill -9 would."""


@dataclass
class FaultPlan:
    """Fail or crash at the N-th matching operation (1-based).

    ``ops`` limits which operation names count (None = all). ``persistent`` keeps failing
    every matching operation from the N-th on. ``short_write`` makes a write operation
    write half its bytes instead of raising. ``paths`` limits it to paths containing one of
    these strings.
    """

    at: int
    ops: frozenset[str] | None = None
    error_number: int = errno.EIO
    persistent: bool = False
    crash: bool = False
    short_write: bool = False
    paths: tuple[str, ...] | None = None
    seen: int = 0
    fired: int = 0
    log: list[str] = field(default_factory=list)

    def check(self, op: str, path: str) -> str | None:
        """Return None to proceed, 'short' for a short write; raise for a failure."""
        if self.ops is not None and op not in self.ops:
            return None
        if self.paths is not None and not any(part in path for part in self.paths):
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
        self.roots: list[str] = []  # folders below which no link is followed

    def confine(self, *roots: str) -> None:
        """Refuse links in every folder below these roots (their real paths)."""
        for root in roots:
            real = os.path.realpath(root)
            if real not in self.roots:
                self.roots.append(real)

    # -- the seam -------------------------------------------------------------------
    def _gate(self, op: str, path: str) -> str | None:
        if self.observer is not None:
            self.observer(op, path)
        if self.plan is None:
            return None
        return self.plan.check(op, path)

    def _fail(self, op: str, path: str, exc: OSError) -> StoreIOError:
        if exc.errno == errno.ELOOP or isinstance(exc, _LinkFound):
            return SymlinkRefused(
                f"{op} {path}: it is a symlink (or sits in a folder that is one); the store "
                "never follows a link it did not make (`agentjournal doctor` lists them)", op,
            )
        return StoreIOError(f"{op} {path}: {exc.strerror or exc}", op)

    def check_folders(self, path: str) -> None:
        """Raise (as an OSError) when a folder between a confining root and ``path`` is a
        symbolic link (or not a folder)."""
        absolute = path if os.path.isabs(path) and "/." not in path and "//" not in path \
            else os.path.abspath(path)
        folder = absolute[:absolute.rfind(os.sep)]
        for root in self.roots:
            if not absolute.startswith(root + os.sep):
                continue
            at = len(root)
            while at < len(folder):
                at = folder.find(os.sep, at + 1)
                if at == -1:
                    at = len(folder)
                current = folder[:at]
                try:
                    mode = os.lstat(current).st_mode
                except FileNotFoundError:
                    return  # made by mkdir later, as a folder
                if stat.S_ISLNK(mode) or not stat.S_ISDIR(mode):
                    raise _LinkFound(errno.ELOOP, "a folder is a link", current)
            return

    # -- opening --------------------------------------------------------------------
    def open_append(self, path: str) -> int:
        try:
            self._gate("open", path)
            self.check_folders(path)
            return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | NOFOLLOW,
                           FILE_MODE)
        except OSError as exc:
            raise self._fail("open", path, exc) from exc

    def open_read(self, path: str) -> int | None:
        """A read-only fd, or None when the file does not exist."""
        try:
            self.check_folders(path)
            return os.open(path, READ_FLAGS)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self._fail("read", path, exc) from exc

    def open_lock(self, path: str, *, create: bool) -> int:
        """The lock file, read-write (created when ``create``); never through a link."""
        flags = os.O_RDWR | os.O_CLOEXEC | NOFOLLOW | (os.O_CREAT if create else 0)
        try:
            self.check_folders(path)
            return os.open(path, flags, FILE_MODE)
        except OSError as exc:
            raise self._fail("open lock", path, exc) from exc

    def create_exclusive(self, path: str) -> None:
        try:
            self._gate("create", path)
            self.check_folders(path)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | NOFOLLOW,
                         FILE_MODE)
            os.close(fd)
        except FileExistsError:
            if os.path.islink(path):
                raise self._fail("create", path, _LinkFound(errno.ELOOP, "link", path)) from None
            return
        except OSError as exc:
            raise self._fail("create", path, exc) from exc

    # -- writing --------------------------------------------------------------------
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
            fd = os.open(path, DIR_OPEN_FLAGS | NOFOLLOW)
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
            self.check_folders(src)
            self.check_folders(dst)
            os.replace(src, dst)
        except OSError as exc:
            raise self._fail("rename", dst, exc) from exc

    def unlink(self, path: str) -> None:
        try:
            self._gate("unlink", path)
            self.check_folders(path)
            os.unlink(path)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise self._fail("unlink", path, exc) from exc

    def mkdir(self, path: str) -> None:
        try:
            self.check_folders(os.path.join(path, "x"))
            os.makedirs(path, exist_ok=True)
            if os.path.islink(path):
                raise _LinkFound(errno.ELOOP, "a folder is a link", path)
        except OSError as exc:
            raise self._fail("mkdir", path, exc) from exc

    def write_in_place(self, path: str, data: bytes) -> None:
        """Overwrite a small cache file in place (projections, meta): no rename, no fsync.

        Readers of such files tolerate a torn read (checksum or parse failure -> retry or
        rebuild); the journal, not this file, is what makes the data durable.
        """
        flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | NOFOLLOW
        try:
            self._gate("write_file", path)
            self.check_folders(path)
            try:
                fd = os.open(path, flags, FILE_MODE)
            except FileNotFoundError:
                self.mkdir(os.path.dirname(path))
                fd = os.open(path, flags, FILE_MODE)
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
            self.check_folders(path)
            fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC | NOFOLLOW)
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
            self.check_folders(path)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | NOFOLLOW,
                         FILE_MODE)
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

    # -- reading --------------------------------------------------------------------
    def listdir(self, path: str) -> list[str]:
        try:
            self.check_folders(os.path.join(path, "x"))
            if os.path.islink(path):
                raise _LinkFound(errno.ELOOP, "a folder is a link", path)
            return os.listdir(path)
        except FileNotFoundError:
            return []
        except NotADirectoryError:
            return []
        except OSError as exc:
            raise self._fail("list", path, exc) from exc

    def read_file(self, path: str) -> bytes | None:
        """Whole file, or None when it does not exist."""
        fd = self.open_read(path)
        if fd is None:
            return None
        try:
            return _read_all(fd)
        except OSError as exc:
            raise self._fail("read", path, exc) from exc
        finally:
            os.close(fd)

    def read_range(self, path: str, offset: int, size: int = -1) -> bytes:
        fd = self.open_read(path)
        if fd is None:
            return b""
        try:
            if size < 0:
                size = max(0, os.fstat(fd).st_size - offset)
            return self.pread(fd, size, offset, path)
        finally:
            os.close(fd)

    def pread(self, fd: int, size: int, offset: int, path: str) -> bytes:
        """``size`` bytes at ``offset`` (fewer only at the end of the file)."""
        parts: list[bytes] = []
        try:
            while size > 0:
                chunk = os.pread(fd, size, offset)
                if not chunk:
                    break
                parts.append(chunk)
                size -= len(chunk)
                offset += len(chunk)
        except OSError as exc:
            raise self._fail("read", path, exc) from exc
        return b"".join(parts)

    def size(self, path: str) -> int:
        """The size of a regular file, -1 when it does not exist (a link counts as absent:
        it is never read)."""
        try:
            found = os.lstat(path)
        except FileNotFoundError:
            return -1
        except OSError as exc:
            raise self._fail("stat", path, exc) from exc
        return found.st_size if stat.S_ISREG(found.st_mode) else -1

    def identity(self, path: str) -> tuple[int, int] | None:
        """(device, inode) of what is at ``path`` now (not following a link), or None."""
        try:
            found = os.lstat(path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self._fail("stat", path, exc) from exc
        return (found.st_dev, found.st_ino)

    def fd_identity(self, fd: int) -> tuple[int, int]:
        found = os.fstat(fd)
        return (found.st_dev, found.st_ino)

    def fd_size(self, fd: int, path: str) -> int:
        try:
            return os.fstat(fd).st_size
        except OSError as exc:
            raise self._fail("stat", path, exc) from exc

    def is_link(self, path: str) -> bool:
        return os.path.islink(path)


class _LinkFound(OSError):
    """A link where a folder or file of the store should be."""


def _read_all(fd: int) -> bytes:
    parts: list[bytes] = []
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(parts)
        parts.append(chunk)
