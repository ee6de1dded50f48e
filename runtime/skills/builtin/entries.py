"""The tools that act on directory entries: getFileInfo, listDirectory, createDirectory,
deleteDirectory, deleteFile and moveFile.

Deleting and moving act on the entry named, not on what a symlink points to; describing and
listing follow a link only when its target is inside the workspace (see ``paths``).
"""

from __future__ import annotations

import errno
import functools
import math
import mimetypes
import os
import shutil
import stat
from datetime import UTC, datetime
from typing import Any

from runtime.skills.builtin.files import Args
from runtime.skills.builtin.outcomes import ToolFailure
from runtime.skills.builtin.paths import RUNTIME_FOLDER, Target, Workspace, os_failure

_RENAME_NOREPLACE = 1  # from <linux/fs.h>
# A listing is for a model to read: past this many entries it says it was cut short.
MAX_LIST_ENTRIES = 1000


class PathArgs(Args):
    path: str


class DeleteDirectoryArgs(Args):
    path: str
    recursive: bool | None = None


class MoveFileArgs(Args):
    source: str
    destination: str


def get_file_info(ws: Workspace, args: PathArgs) -> dict[str, Any]:
    target = ws.resolve(args.path)
    info = _lstat(ws, target)
    if info is None:
        raise ToolFailure(f"File or directory {args.path!r} does not exist.", kind="NotFound")
    is_dir = stat.S_ISDIR(info.st_mode)
    absolute = str(target.absolute)
    return {
        "exists": True,
        "path": absolute,
        "absolutePath": absolute,
        "name": target.absolute.name,
        "directory": str(target.absolute.parent),
        "extension": None if is_dir else os.path.splitext(target.absolute.name)[1],
        "type": _entry_type(info.st_mode),
        "mimeType": None if is_dir else _mime_type(target.absolute.name),
        "size": info.st_size,
        "sizeFormatted": _format_size(info.st_size),
        "created": _iso(getattr(info, "st_birthtime", info.st_ctime)),
        "modified": _iso(info.st_mtime),
        "accessed": _iso(info.st_atime),
        "permissions": {
            "readable": bool(info.st_mode & stat.S_IRUSR),
            "writable": bool(info.st_mode & stat.S_IWUSR),
            "executable": bool(info.st_mode & stat.S_IXUSR),
        },
    }


def list_directory(ws: Workspace, args: PathArgs) -> dict[str, Any]:
    target = ws.resolve(args.path)
    info = _lstat(ws, target)
    if info is None:
        raise ToolFailure(f"Directory {args.path!r} does not exist.", kind="NotFound")
    if not stat.S_ISDIR(info.st_mode):
        raise ToolFailure(f"{args.path!r} is not a directory.", kind="NotADirectory")
    items: list[dict[str, Any]] = []
    truncated = False
    with ws.dir_fd(target) as fd:
        entries = sorted(os.listdir(fd))
        for name in entries:
            if target.is_root and name.lower() == RUNTIME_FOLDER:
                continue
            if len(items) == MAX_LIST_ENTRIES:
                truncated = True
                break
            item = _list_item(fd, name)
            if item is not None:
                items.append(item)
    result: dict[str, Any] = {"path": str(target.absolute), "items": items}
    if truncated:
        result["truncated"] = True
        result["note"] = (
            f"Only the first {MAX_LIST_ENTRIES} of {len(entries)} entries are listed; use "
            "exec (e.g. find) to search the rest."
        )
    return result


def create_directory(ws: Workspace, args: PathArgs) -> dict[str, Any]:
    target = ws.resolve(args.path)
    shown = ws.relative(target)
    if target.is_root:
        raise ToolFailure("The workspace root already exists.", kind="AlreadyExists")
    with ws.parent_fd(target, create=True) as parent:
        if _lstat_at(parent, target.name) is not None:
            raise ToolFailure(f"{shown!r} already exists.", kind="AlreadyExists")
        try:
            os.mkdir(target.name, dir_fd=parent)
        except OSError as error:
            raise os_failure(error, shown) from None
    return {"path": str(target.absolute)}


def delete_directory(ws: Workspace, args: DeleteDirectoryArgs) -> dict[str, Any]:
    target = ws.resolve(args.path, follow_final=False)
    shown = ws.relative(target)
    if target.is_root:
        raise ToolFailure("The workspace root itself cannot be deleted.", kind="AccessDenied")
    with ws.parent_fd(target) as parent:
        info = _lstat_at(parent, target.name)
        if info is None:
            raise ToolFailure(f"Directory {shown!r} does not exist.", kind="NotFound")
        if not stat.S_ISDIR(info.st_mode):
            raise ToolFailure(
                f"{shown!r} is not a directory; use deleteFile for files and links.",
                kind="NotADirectory",
            )
        try:
            if args.recursive:
                # With dir_fd, rmtree uses its descriptor-based walk that never follows a link.
                shutil.rmtree(target.name, dir_fd=parent)
            else:
                os.rmdir(target.name, dir_fd=parent)
        except OSError as error:
            failure = os_failure(error, shown)
            if failure.kind == "DirectoryNotEmpty":
                failure.message += " Pass recursive: true to delete it with its contents."
            raise failure from None
    return {"path": str(target.absolute)}


def delete_file(ws: Workspace, args: PathArgs) -> dict[str, Any]:
    target = ws.resolve(args.path, follow_final=False)
    shown = ws.relative(target)
    with ws.parent_fd(target) as parent:
        info = _lstat_at(parent, target.name)
        if info is None:
            raise ToolFailure(f"File {shown!r} does not exist.", kind="NotFound")
        if stat.S_ISDIR(info.st_mode):
            raise ToolFailure(
                f"{shown!r} is a directory; use deleteDirectory.", kind="IsADirectory"
            )
        try:
            os.unlink(target.name, dir_fd=parent)
        except OSError as error:
            raise os_failure(error, shown) from None
    return {"path": str(target.absolute)}


def move_file(ws: Workspace, args: MoveFileArgs) -> dict[str, Any]:
    source = ws.resolve(args.source, follow_final=False)
    destination = ws.resolve(args.destination, follow_final=False)
    src_shown, dst_shown = ws.relative(source), ws.relative(destination)
    with ws.parent_fd(source) as src_parent:
        if _lstat_at(src_parent, source.name) is None:
            raise ToolFailure(f"Source {src_shown!r} does not exist.", kind="NotFound")
        if destination.parts[: len(source.parts)] == source.parts:
            raise ToolFailure(
                f"Cannot move {src_shown!r} into itself ({dst_shown!r}).",
                kind="InvalidArguments",
            )
        with ws.parent_fd(destination, create=True) as dst_parent:
            if _lstat_at(dst_parent, destination.name) is not None:
                raise ToolFailure(
                    f"Destination {dst_shown!r} already exists; delete it first or choose "
                    "another name.",
                    kind="AlreadyExists",
                )
            try:
                _rename_no_replace(src_parent, source.name, dst_parent, destination.name)
            except OSError as error:
                raise os_failure(error, f"{src_shown} -> {dst_shown}") from None
    return {"source": str(source.absolute), "destination": str(destination.absolute)}


def _rename_no_replace(src_dir: int, src: str, dst_dir: int, dst: str) -> None:
    """rename(2) that fails instead of replacing a destination created since our check."""
    import ctypes  # only moveFile needs it

    renameat2 = _renameat2()
    if renameat2 is not None:
        result = renameat2(src_dir, os.fsencode(src), dst_dir, os.fsencode(dst), _RENAME_NOREPLACE)
        if result == 0:
            return
        code = ctypes.get_errno()
        if code not in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
            raise OSError(code, os.strerror(code))
    # No renameat2 (not Linux, or a file system without it): a small window remains.
    if _lstat_at(dst_dir, dst) is not None:
        raise OSError(errno.EEXIST, os.strerror(errno.EEXIST))
    os.rename(src, dst, src_dir_fd=src_dir, dst_dir_fd=dst_dir)


@functools.cache
def _renameat2() -> Any:
    import ctypes

    return getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)


def _list_item(dir_fd: int, name: str) -> dict[str, Any] | None:
    info = _lstat_at(dir_fd, name)
    if info is None:  # removed while we listed
        return None
    return {
        "name": name,
        "path": name,
        "type": _entry_type(info.st_mode),
        "size": info.st_size,
        "modified": _iso(info.st_mtime),
    }


def _lstat(ws: Workspace, target: Target) -> os.stat_result | None:
    if target.is_root:
        return os.stat(ws.root)
    with ws.parent_fd(target) as parent:
        return _lstat_at(parent, target.name)


def _lstat_at(dir_fd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _entry_type(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISLNK(mode):
        return "symlink"
    return "file"


def _mime_type(name: str) -> str:
    return mimetypes.guess_type(name, strict=False)[0] or "application/octet-stream"


def _format_size(size: int) -> str:
    if size <= 0:
        return "0 B"
    units = ["B", "KB", "MB", "GB", "TB"]
    index = min(int(math.log(size, 1024)), len(units) - 1)
    return f"{size / 1024**index:.2f} {units[index]}"


def _iso(timestamp: float) -> str:
    """Milliseconds and a ``Z``, as JavaScript's ``toISOString`` writes them."""
    moment = datetime.fromtimestamp(timestamp, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
