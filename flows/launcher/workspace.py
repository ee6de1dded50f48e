"""The per-user workspace on the host: prepared for the container user, and measured."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from flows.launcher.errors import InvalidSpecError


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


def workspace_bytes(path: Path) -> int:
    """Disk space used under ``path`` (allocated blocks), never following symlinks, so
    nothing the container plants can make us walk elsewhere."""
    total = 0
    stack = [path]
    while stack:
        directory = stack.pop()
        try:
            entries = list(os.scandir(directory))
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
        for entry in entries:
            try:
                info = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            total += info.st_blocks * 512
            if stat.S_ISDIR(info.st_mode):
                stack.append(Path(entry.path))
    return total
