"""The per-user workspace on the host: prepared for the container user, and measured."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from flows.launcher.errors import InvalidSpecError
from flows.launcher.limits import DEFAULT_WORKSPACE_DEPTH


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
    os.chmod(path, 0o750, follow_symlinks=False)


@dataclass(frozen=True)
class WorkspaceUsage:
    """What a workspace holds: allocated bytes, entries (files, folders, links: inodes),
    and whether it goes deeper than the walk was allowed to follow."""

    bytes: int
    entries: int
    too_deep: bool = False


def workspace_bytes(path: Path) -> int:
    return measure_workspace(path).bytes


def measure_workspace(path: Path, max_depth: int = DEFAULT_WORKSPACE_DEPTH) -> WorkspaceUsage:
    """Walk ``path`` without following a symlink, so nothing the container plants can make
    us walk elsewhere. Each folder is opened relative to its parent's descriptor, so no
    path grows too long to open however deep the tree (a chain of 2,300 folders made the
    path-based walk fail); at most ``max_depth`` descriptors are open at once. A folder
    that vanishes or turns into a link while we walk is skipped."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        top = os.open(path, flags)
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return WorkspaceUsage(0, 0)
    total = entries = 0
    too_deep = False

    def scan(fd: int) -> list[str]:
        nonlocal total, entries
        folders = []
        try:
            with os.scandir(fd) as listing:
                for entry in listing:
                    try:
                        info = entry.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        continue
                    total += info.st_blocks * 512
                    entries += 1
                    if stat.S_ISDIR(info.st_mode):
                        folders.append(entry.name)
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            pass
        return folders

    stack = [(top, scan(top))]
    try:
        while stack:
            fd, folders = stack[-1]
            if not folders:
                os.close(fd)
                stack.pop()
                continue
            name = folders.pop()
            if len(stack) >= max_depth:
                too_deep = True
                continue
            try:
                child = os.open(name, flags, dir_fd=fd)
            except OSError:  # gone, unreadable, or now a link (ELOOP): not ours to follow
                continue
            stack.append((child, scan(child)))
    finally:
        for fd, _ in stack:
            os.close(fd)
    return WorkspaceUsage(total, entries, too_deep)
