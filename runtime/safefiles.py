"""The runtime's own files (jobs, checkpoints, run settings, events), through descriptors.

Two things a tool (``exec``, say) can do to the workspace's ``perstack/`` folder must not
reach the runtime itself:

- swap one of its folders for a symbolic link, mid-run: every write walks down from the
  workspace's descriptor, opened once, each folder opened relative to its parent with
  ``O_NOFOLLOW``, so a link is refused and nothing is ever written outside the workspace;
- plant a FIFO, a device or a folder where a file is expected: every read opens with
  ``O_NONBLOCK | O_NOFOLLOW`` and checks ``fstat`` before reading, so such a file is
  refused at once, naming it. (A blocking ``open()`` of a FIFO is retried after each
  signal, so the run would hang and ignore SIGTERM.)
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import threading
import weakref
from collections.abc import Iterator, Sequence
from pathlib import Path

from runtime.errors import StorageError
from runtime.ids import new_id

# Bounds the search for a free event file name; more than this many same-millisecond,
# same-type events in one step would mean something is badly wrong.
MAX_NEW_NAME_SUFFIX = 10_000
# Reads go in pieces this large (a checkpoint holds a whole history: megabytes).
READ_CHUNK = 1 << 20
# Files are created as open(…, "w") would (before the umask).
FILE_MODE = 0o666
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC
_LOCK_FLAGS = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def read_regular(path: Path) -> tuple[bytes, int]:
    """(content, mtime in ns) of ``path``, a regular file that is not a link; a
    StorageError saying what it is otherwise. Never blocks on a FIFO."""
    try:
        fd = os.open(path, _READ_FLAGS)
    except OSError as error:
        raise _read_error(path, error) from error
    return _read_open(fd, path)


def _read_open(fd: int, path: Path) -> tuple[bytes, int]:
    """Read the file open on ``fd`` (closed afterwards) if it is a regular file."""
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise StorageError(
                f"{path} is not a regular file but {_kind(info.st_mode)}; the runtime's "
                "files are plain files: remove it"
            )
        chunks = []
        while chunk := os.read(fd, READ_CHUNK):
            chunks.append(chunk)
        return b"".join(chunks), info.st_mtime_ns
    except OSError as error:
        raise StorageError(f"cannot read {path}: {error.strerror}") from error
    finally:
        os.close(fd)


def _read_error(path: Path, error: OSError) -> StorageError:
    if error.errno == errno.ENOENT:
        return StorageError(f"{path} does not exist")
    if error.errno == errno.ELOOP:
        return StorageError(f"{path} is a symbolic link; the runtime's files are plain files")
    if error.errno == errno.ENXIO:  # a socket
        return StorageError(f"{path} is not a regular file; remove it")
    return StorageError(f"cannot read {path}: {error.strerror}")


def _folder_error(path: Path, parent: int, name: str, error: OSError) -> StorageError:
    if error.errno in (errno.ELOOP, errno.ENOTDIR) and _is_link(parent, name):
        return StorageError(
            f"{path} is a symbolic link; the runtime's folder must be a real folder inside "
            "the workspace: remove the link"
        )
    if error.errno == errno.ENOTDIR:
        return StorageError(f"{path} is not a folder; remove it")
    return StorageError(f"cannot open {path}: {error.strerror}")


def _is_link(parent: int, name: str) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a special file"


class FolderTree:
    """Files under ``root`` (a folder opened once), by their parts relative to it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._fd: int | None = None
        self._opening = threading.Lock()  # the event-file writer thread uses it too

    def _root_fd(self, *, create: bool) -> int:
        """The root's descriptor; FileNotFoundError when it does not exist and nothing is
        to be written (reading a workspace not made yet finds nothing)."""
        with self._opening:
            if self._fd is None:
                try:
                    fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                except FileNotFoundError as error:
                    if not create:
                        raise
                    raise StorageError(f"cannot open {self.root}: {error.strerror}") from error
                except OSError as error:
                    raise StorageError(f"cannot open {self.root}: {error.strerror}") from error
                # Closed when nothing uses the tree any more: never under a thread still
                # writing with it (a closed number could be reused by another file).
                weakref.finalize(self, os.close, fd)
                self._fd = fd
            return self._fd

    @contextlib.contextmanager
    def folder(self, parts: Sequence[str], *, create: bool) -> Iterator[int]:
        """A descriptor of the folder ``parts`` below the root, each level a real folder
        (created when ``create``); FileNotFoundError when one is missing."""
        fd = os.dup(self._root_fd(create=create))
        try:
            for depth, part in enumerate(parts):
                child = self._open_child(fd, part, parts[: depth + 1], create)
                os.close(fd)
                fd = child
            yield fd
        finally:
            os.close(fd)

    def _open_child(self, parent: int, name: str, parts: Sequence[str], create: bool) -> int:
        """The folder ``name`` in ``parent`` (``parts`` is its path, for messages)."""
        try:
            return os.open(name, _DIR_FLAGS, dir_fd=parent)
        except FileNotFoundError:
            if not create:
                raise
        except OSError as error:
            raise _folder_error(self.root.joinpath(*parts), parent, name, error) from error
        try:
            os.mkdir(name, dir_fd=parent)
        except FileExistsError:
            pass  # made meanwhile, or a link planted meanwhile: the open below tells
        except OSError as error:
            path = self.root.joinpath(*parts)
            raise StorageError(f"cannot create {path}: {error.strerror}") from error
        try:
            return os.open(name, _DIR_FLAGS, dir_fd=parent)
        except OSError as error:
            raise _folder_error(self.root.joinpath(*parts), parent, name, error) from error

    # --- writing ----------------------------------------------------------------------

    def write_atomic(self, parts: Sequence[str], name: str, data: bytes) -> None:
        """Write ``name`` in the folder ``parts`` (made if missing) through a temporary
        file renamed into place: a reader never sees half of it."""
        with self.folder(parts, create=True) as fd:
            tmp = self._write_temporary(fd, parts, name, data)
            try:
                os.replace(tmp, name, src_dir_fd=fd, dst_dir_fd=fd)
            except OSError as error:
                raise self._write_error(parts, name, error) from error
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp, dir_fd=fd)

    def write_new(self, parts: Sequence[str], stem: str, data: bytes) -> Path:
        """Write ``stem.json`` in the folder ``parts`` without ever replacing a file: a
        taken name gets ``-1``, ``-2``… before ``.json``. Returns the path written."""
        with self.folder(parts, create=True) as fd:
            tmp = self._write_temporary(fd, parts, stem, data)
            try:
                for suffix in range(MAX_NEW_NAME_SUFFIX):
                    name = f"{stem}.json" if suffix == 0 else f"{stem}-{suffix}.json"
                    try:
                        os.link(tmp, name, src_dir_fd=fd, dst_dir_fd=fd)
                    except FileExistsError:
                        continue
                    return self.root.joinpath(*parts, name)
                raise StorageError(f"no free file name for {stem} in {self.root.joinpath(*parts)}")
            except OSError as error:
                raise self._write_error(parts, stem, error) from error
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp, dir_fd=fd)

    def _write_temporary(self, fd: int, parts: Sequence[str], name: str, data: bytes) -> str:
        tmp = f".{name}.{new_id()}.tmp"
        try:
            file_fd = os.open(tmp, _NEW_FILE_FLAGS, FILE_MODE, dir_fd=fd)
        except OSError as error:
            raise self._write_error(parts, name, error) from error
        try:
            with os.fdopen(file_fd, "wb") as handle:
                handle.write(data)
        except OSError as error:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp, dir_fd=fd)
            raise self._write_error(parts, name, error) from error
        return tmp

    def _write_error(self, parts: Sequence[str], name: str, error: OSError) -> StorageError:
        return StorageError(f"cannot write {self.root.joinpath(*parts, name)}: {error.strerror}")

    # --- reading ----------------------------------------------------------------------

    def read(self, parts: Sequence[str], name: str) -> tuple[bytes, int]:
        """(content, mtime in ns) of the regular file ``name`` in the folder ``parts``."""
        path = self.root.joinpath(*parts, name)
        try:
            with self.folder(parts, create=False) as fd:
                try:
                    file_fd = os.open(name, _READ_FLAGS, dir_fd=fd)
                except OSError as error:
                    raise _read_error(path, error) from error
                return _read_open(file_fd, path)
        except FileNotFoundError as error:
            raise StorageError(f"{path} does not exist") from error

    def open_for_lock(self, parts: Sequence[str], name: str, *, create: bool) -> int:
        """A read-write descriptor of ``name`` in the folder ``parts`` (both made when
        ``create``), to take a lock on; FileNotFoundError when the folder is missing."""
        with self.folder(parts, create=create) as fd:
            try:
                return os.open(name, _LOCK_FLAGS, FILE_MODE, dir_fd=fd)
            except OSError as error:
                path = self.root.joinpath(*parts, name)
                raise StorageError(f"cannot open {path}: {error.strerror}") from error

    def names(self, parts: Sequence[str]) -> list[str]:
        """The names in the folder ``parts`` (none when it does not exist)."""
        try:
            with self.folder(parts, create=False) as fd:
                return os.listdir(fd)
        except FileNotFoundError:
            return []

    def exists(self, parts: Sequence[str], name: str) -> bool:
        try:
            with self.folder(parts, create=False) as fd:
                os.stat(name, dir_fd=fd, follow_symlinks=False)
                return True
        except FileNotFoundError:
            return False
