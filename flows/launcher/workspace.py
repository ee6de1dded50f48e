"""The per-user workspace on the host: prepared for the container user, and measured."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from flows.launcher.errors import InvalidSpecError
from flows.launcher.limits import DEFAULT_WORKSPACE_DEPTH

# The container's user and its group only; restored after each run, whatever it set.
WORKSPACE_MODE = 0o750


def prepare_workspace(path: Path, user: str) -> None:
    """Create the workspace and, when we may, hand it to the container's user.

    A workspace that is itself a symlink is refused: the mount would follow it.
    """
    if path.is_symlink():
        raise InvalidSpecError(f"workspace {str(path)!r} is a symlink; pass the real directory")
    path.mkdir(parents=True, exist_ok=True)
    uid, _, gid = user.partition(":")
    if os.geteuid() == 0 and uid.isdigit():
        os.chown(path, int(uid), int(gid or uid), follow_symlinks=False)
    os.chmod(path, WORKSPACE_MODE, follow_symlinks=False)


@dataclass(frozen=True)
class WorkspaceUsage:
    """What a workspace holds: allocated bytes, entries (files, folders, links: inodes),
    and whether it goes deeper than the walk was allowed to follow."""

    bytes: int
    entries: int
    too_deep: bool = False
    # Files whose set-user-ID or set-group-ID bit was cleared (``clear_set_id``).
    set_id_cleared: int = 0


def workspace_bytes(path: Path) -> int:
    return measure_workspace(path).bytes


def measure_workspace(
    path: Path, max_depth: int = DEFAULT_WORKSPACE_DEPTH, *, clear_set_id: bool = False
) -> WorkspaceUsage:
    """Walk ``path`` without following a symlink, so nothing the container plants can make
    us walk elsewhere. Each folder is opened relative to its parent's descriptor, so no
    path grows too long to open however deep the tree (a chain of 2,300 folders made the
    path-based walk fail); at most ``max_depth`` descriptors are open at once. A folder
    that vanishes or turns into a link while we walk is skipped.

    ``clear_set_id`` (once the container has exited) clears the set-user-ID and
    set-group-ID bits of the files it left: harmless inside the container (no new
    privileges there), they would not be on the host.
    """
    try:
        top = os.open(path, _DIRECTORY_FLAGS)
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return WorkspaceUsage(0, 0)
    walk = _Walk(clear_set_id)
    stack = [(top, walk.scan(top))]
    try:
        while stack:
            fd, folders = stack[-1]
            if not folders:
                os.close(fd)
                stack.pop()
                continue
            name = folders.pop()
            if len(stack) >= max_depth:
                walk.too_deep = True
                continue
            try:
                child = os.open(name, _DIRECTORY_FLAGS, dir_fd=fd)
            except OSError:  # gone, unreadable, or now a link (ELOOP): not ours to follow
                continue
            stack.append((child, walk.scan(child)))
    finally:
        for fd, _ in stack:
            os.close(fd)
    return WorkspaceUsage(walk.bytes, walk.entries, walk.too_deep, walk.cleared)


_DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass
class _Walk:
    clear_set_id: bool
    bytes: int = 0
    entries: int = 0
    cleared: int = 0
    too_deep: bool = False

    def scan(self, fd: int) -> list[str]:
        """Count the entries of the open folder ``fd``; returns its sub-folders' names."""
        folders = []
        try:
            with os.scandir(fd) as listing:
                for entry in listing:
                    try:
                        info = entry.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        continue
                    self.bytes += info.st_blocks * 512
                    self.entries += 1
                    if stat.S_ISDIR(info.st_mode):
                        folders.append(entry.name)
                    elif self.clear_set_id and _clear_set_id(fd, entry.name, info.st_mode):
                        self.cleared += 1
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            pass
        return folders


_SET_ID = stat.S_ISUID | stat.S_ISGID


def _clear_set_id(folder: int, name: str, mode: int) -> bool:
    if not stat.S_ISREG(mode) or not mode & _SET_ID:
        return False
    try:
        os.chmod(name, stat.S_IMODE(mode) & ~_SET_ID, dir_fd=folder, follow_symlinks=False)
    except OSError:
        return False
    return True
