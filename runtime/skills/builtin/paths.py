"""Confinement of every path the built-in tools touch to the workspace.

A requested path (relative to the workspace root, or absolute inside it) is resolved with
all symlinks followed; the result must lie inside the workspace and outside its
``perstack/`` folder (the runtime's own checkpoints and events), else the call is refused.

Resolution alone leaves a window: a directory could be swapped for a symlink between the
check and the use. So the resolved path, which holds no symlink, is then walked again from
an open descriptor of the root, one component at a time with ``O_NOFOLLOW``, and the final
operation is done relative to the parent's descriptor (``dir_fd``), again without following
a link in the last component. A symlink that appears in between makes the call fail
instead of escaping.

TODO(#2): a hard link inside the workspace to a file outside it is indistinguishable from
a plain file here and is read and written through; only the container prevents such links.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from runtime.errors import WorkspaceError
from runtime.skills.builtin.outcomes import ToolFailure

RUNTIME_FOLDER = "perstack"
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True)
class Target:
    """A checked path: its absolute form and its components below the workspace root."""

    absolute: Path
    parts: tuple[str, ...]

    @property
    def is_root(self) -> bool:
        return not self.parts

    @property
    def name(self) -> str:
        return self.parts[-1]


class Workspace:
    """The root directory the tools may touch, and the checks that keep them inside it."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        resolved = Path(os.path.realpath(root))
        if not resolved.is_dir():
            raise WorkspaceError(
                f"workspace {str(root)!r} is not a directory: create it or pass another --workspace"
            )
        self.root = resolved
        self._given = Path(os.path.abspath(root))

    def resolve(self, requested: str, *, follow_final: bool = True) -> Target:
        """Check ``requested`` and return where it points. ``follow_final=False`` keeps a
        final symlink as it is (to delete, move or describe the link itself)."""
        if not isinstance(requested, str) or not requested.strip():
            raise ToolFailure("The path is empty: give a path relative to the workspace root.")
        if "\x00" in requested:
            raise ToolFailure(f"The path {requested!r} contains a NUL character.")
        joined = self._join(requested)
        self._refuse_runtime_folder(requested, self._lexical_parts(joined))
        head, tail = os.path.split(joined)
        if follow_final or tail in ("", ".", ".."):
            real = Path(os.path.realpath(joined))
        else:
            real = Path(os.path.realpath(head)) / tail
        parts = self._parts_inside(requested, real)
        self._refuse_runtime_folder(requested, parts)
        return Target(absolute=real, parts=parts)

    def relative(self, target: Target) -> str:
        return "/".join(target.parts) or "."

    @contextlib.contextmanager
    def parent_fd(self, target: Target, *, create: bool = False) -> Iterator[int]:
        """An open descriptor of ``target``'s parent, reached without following any link.
        With ``create``, missing parent directories are made on the way."""
        if target.is_root:
            raise ToolFailure("This operation cannot act on the workspace root itself.")
        fd = self._walk(target.parts[:-1], create=create, requested=target)
        try:
            yield fd
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def dir_fd(self, target: Target) -> Iterator[int]:
        """An open descriptor of the directory ``target`` itself (the root included)."""
        fd = self._walk(target.parts, create=False, requested=target)
        try:
            yield fd
        finally:
            os.close(fd)

    def _join(self, requested: str) -> str:
        if os.path.isabs(requested):
            return requested
        return os.path.join(self.root, requested)

    def _lexical_parts(self, joined: str) -> tuple[str, ...]:
        normal = os.path.normpath(joined)
        for base in (self.root, self._given):
            rel = os.path.relpath(normal, base)
            if rel != ".." and not rel.startswith("../"):
                return tuple(part for part in rel.split("/") if part not in ("", "."))
        return ()

    def _parts_inside(self, requested: str, real: Path) -> tuple[str, ...]:
        try:
            rel = real.relative_to(self.root)
        except ValueError:
            raise ToolFailure(
                f"Access denied: {requested!r} resolves to {str(real)!r}, outside the "
                f"workspace {str(self.root)!r}. Use a path inside the workspace.",
                kind="AccessDenied",
            ) from None
        return tuple(part for part in rel.parts if part not in ("", "."))

    @staticmethod
    def _refuse_runtime_folder(requested: str, parts: tuple[str, ...]) -> None:
        if parts and parts[0].lower() == RUNTIME_FOLDER:
            raise ToolFailure(
                f"Access denied: {requested!r} is inside the workspace's {RUNTIME_FOLDER}/ "
                "folder, which belongs to the runtime. Use another path.",
                kind="AccessDenied",
            )

    def _walk(self, parts: tuple[str, ...], *, create: bool, requested: Target) -> int:
        fd = os.open(self.root, _DIR_FLAGS)
        try:
            for part in parts:
                next_fd = self._open_child_dir(fd, part, create=create, requested=requested)
                os.close(fd)
                fd = next_fd
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _open_child_dir(self, fd: int, part: str, *, create: bool, requested: Target) -> int:
        shown = self.relative(requested)
        try:
            return os.open(part, _DIR_FLAGS, dir_fd=fd)
        except FileNotFoundError:
            if not create:
                raise ToolFailure(
                    f"{shown!r} does not exist: there is no directory {part!r} on its way.",
                    kind="NotFound",
                ) from None
        except OSError as error:
            raise _walk_error(error, fd, part, shown) from None
        with contextlib.suppress(FileExistsError):
            os.mkdir(part, dir_fd=fd)
        try:
            return os.open(part, _DIR_FLAGS, dir_fd=fd)
        except OSError as error:
            raise _walk_error(error, fd, part, shown) from None


def _is_link(dir_fd: int, name: str) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _walk_error(error: OSError, dir_fd: int, part: str, shown: str) -> ToolFailure:
    # O_DIRECTORY | O_NOFOLLOW on a link fails with ENOTDIR on Linux, ELOOP elsewhere.
    if error.errno in (errno.ELOOP, errno.EMLINK) or (
        error.errno == errno.ENOTDIR and _is_link(dir_fd, part)
    ):
        return ToolFailure(
            f"Access denied: {part!r} in {shown!r} became a symbolic link while the call ran.",
            kind="AccessDenied",
        )
    if error.errno == errno.ENOTDIR:
        return ToolFailure(f"{part!r} in {shown!r} is not a directory.", kind="NotADirectory")
    return os_failure(error, shown)


def os_failure(error: OSError, shown: str) -> ToolFailure:
    """An OSError as a message about the workspace path (never the host's absolute path)."""
    reason = error.strerror or str(error)
    kinds = {
        errno.ENOENT: "NotFound",
        errno.EEXIST: "AlreadyExists",
        errno.EACCES: "PermissionDenied",
        errno.EPERM: "PermissionDenied",
        errno.ENOTDIR: "NotADirectory",
        errno.EISDIR: "IsADirectory",
        errno.ENOTEMPTY: "DirectoryNotEmpty",
        errno.ELOOP: "AccessDenied",
        errno.ENOSPC: "NoSpace",
    }
    kind = kinds.get(error.errno or 0, "OSError")
    return ToolFailure(f"{shown!r}: {reason}.", kind=kind)
