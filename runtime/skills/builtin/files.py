"""The text file tools: readTextFile, writeTextFile, appendTextFile, editTextFile.

Files are opened relative to their parent's descriptor with ``O_NOFOLLOW`` (see
``paths``) and must be regular files: a FIFO or device is refused rather than read.
TODO(#2): file I/O runs on the event loop thread (at most ``MAX_TEXT_FILE_BYTES`` per
call); move it to a worker thread if tool calls on large files delay other work.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from runtime.skills.builtin.outcomes import ToolFailure
from runtime.skills.builtin.paths import Target, Workspace, os_failure

# The reference reads whole files; we refuse very large ones instead of flooding the
# model's context and our memory (10 MiB is also the reference's cap on exec output).
MAX_TEXT_FILE_BYTES = 10 * 1024 * 1024
NEW_FILE_MODE = 0o644


class Args(BaseModel):
    """Tool arguments: types checked strictly, unknown keys ignored (as the reference does)."""

    model_config = ConfigDict(strict=True, extra="ignore")


class ReadTextFileArgs(Args):
    path: str
    from_: int | float | None = Field(default=None, alias="from")
    to: int | float | None = None


class WriteTextFileArgs(Args):
    path: str
    text: str


class EditTextFileArgs(Args):
    path: str
    newText: str  # noqa: N815 - the wire name
    oldText: str  # noqa: N815 - the wire name


def read_text_file(ws: Workspace, args: ReadTextFileArgs) -> dict[str, Any]:
    target = ws.resolve(args.path)
    text = _decode(_read_bytes(ws, target), args.path)
    lines = text.split("\n")
    start = _line_number(args.from_, "from", default=0)
    end = _line_number(args.to, "to", default=len(lines))
    return {"path": args.path, "content": "\n".join(lines[start:end]), "from": start, "to": end}


def write_text_file(ws: Workspace, args: WriteTextFileArgs) -> dict[str, Any]:
    target = ws.resolve(args.path)
    data = _encode(args.text, args.path)
    with (
        ws.parent_fd(target, create=True) as parent,
        _open_regular(parent, target, ws, os.O_WRONLY | os.O_CREAT) as fd,
    ):
        os.ftruncate(fd, 0)
        _write_all(fd, data)
    return {"path": str(target.absolute), "text": args.text}


def append_text_file(ws: Workspace, args: WriteTextFileArgs) -> dict[str, Any]:
    target = ws.resolve(args.path)
    data = _encode(args.text, args.path)
    with (
        ws.parent_fd(target) as parent,
        _open_regular(parent, target, ws, os.O_WRONLY | os.O_APPEND) as fd,
    ):
        _write_all(fd, data)
    return {"path": str(target.absolute), "text": args.text}


def edit_text_file(ws: Workspace, args: EditTextFileArgs) -> dict[str, Any]:
    if not args.oldText:
        raise ToolFailure(
            "oldText is empty: give the exact text to replace (to add text at the end of a "
            "file, use appendTextFile).",
            kind="InvalidArguments",
        )
    target = ws.resolve(args.path)
    with ws.parent_fd(target) as parent, _open_regular(parent, target, ws, os.O_RDWR) as fd:
        content = _normalize(_decode(_read_fd(fd, args.path), args.path))
        old, new = _normalize(args.oldText), _normalize(args.newText)
        if old not in content:
            raise ToolFailure(
                f"oldText was not found in {args.path!r}: it must match the file exactly, "
                "whitespace and line breaks included. Read the file again and copy the text.",
                kind="NoMatch",
            )
        data = _encode(content.replace(old, new, 1), args.path)
        os.lseek(fd, 0, os.SEEK_SET)
        os.ftruncate(fd, 0)
        _write_all(fd, data)
    return {"path": str(target.absolute), "newText": args.newText, "oldText": args.oldText}


@contextlib.contextmanager
def _open_regular(parent: int, target: Target, ws: Workspace, flags: int) -> Iterator[int]:
    shown = ws.relative(target)
    try:
        fd = os.open(
            target.name,
            flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
            NEW_FILE_MODE,
            dir_fd=parent,
        )
    except FileNotFoundError:
        raise ToolFailure(f"File {shown!r} does not exist.", kind="NotFound") from None
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise ToolFailure(
                f"Access denied: {shown!r} is a symbolic link.", kind="AccessDenied"
            ) from None
        raise os_failure(error, shown) from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise ToolFailure(f"{shown!r} is a directory, not a file.", kind="IsADirectory")
        if not stat.S_ISREG(mode):
            raise ToolFailure(f"{shown!r} is not a regular file.", kind="NotARegularFile")
        os.set_blocking(fd, True)
        yield fd
    except OSError as error:
        raise os_failure(error, shown) from None
    finally:
        os.close(fd)


def _read_bytes(ws: Workspace, target: Target) -> bytes:
    with ws.parent_fd(target) as parent, _open_regular(parent, target, ws, os.O_RDONLY) as fd:
        return _read_fd(fd, ws.relative(target))


def _read_fd(fd: int, shown: str) -> bytes:
    size = os.fstat(fd).st_size
    if size > MAX_TEXT_FILE_BYTES:
        raise ToolFailure(
            f"{shown!r} is {size} bytes, over the {MAX_TEXT_FILE_BYTES}-byte limit for text "
            "files. Use exec with a tool such as head, tail or grep to read part of it.",
            kind="FileTooLarge",
        )
    chunks = []
    total = 0
    while chunk := os.read(fd, 1024 * 1024):
        total += len(chunk)
        if total > MAX_TEXT_FILE_BYTES:
            raise ToolFailure(f"{shown!r} grew over the size limit while it was read.")
        chunks.append(chunk)
    return b"".join(chunks)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _decode(data: bytes, shown: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ToolFailure(
            f"{shown!r} is not UTF-8 text (invalid byte at offset {error.start}); it may be a "
            "binary file.",
            kind="NotText",
        ) from None


def _encode(text: str, shown: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise ToolFailure(
            f"The text for {shown!r} is not valid Unicode (it holds a lone surrogate).",
            kind="InvalidArguments",
        ) from None


def _normalize(text: str) -> str:
    return text.replace("\r\n", "\n")


def _line_number(value: int | float | None, name: str, *, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, float) and not value.is_integer():
        raise ToolFailure(
            f"'{name}' must be a whole line number, got {value!r}.", kind="InvalidArguments"
        )
    return int(value)
