"""Find the files to ingest and read them into batches of parsed events and documents.

Kinds, by where a file sits (never by what its name claims about the event inside):

- ``jsonl``: an event stream, one JSON object per line (captured stdout);
- ``event``: ``perstack/jobs/{job}/runs/{run}/event-*.json``, one event per file;
- ``checkpoint``: ``perstack/jobs/{job}/checkpoints/{id}.json``;
- ``job``: ``perstack/jobs/{job}/job.json``; ``run_setting``: ``…/runs/{run}/run-setting.json``.

In a folder, JSONL streams are read only outside any workspace: of a folder holding
``perstack/jobs`` only that tree is read, and no JSONL file within it, since the rest of
a workspace is what the Expert wrote. A stream named explicitly is always read.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import stat
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import BinaryIO, Literal

import pyarrow as pa

from analytics.parse import TOO_DEEP, Parsed, Rejected, empty_table, parse_jsonl

logger = logging.getLogger(__name__)

Kind = Literal["jsonl", "event", "checkpoint", "job", "run_setting"]
DOC_KINDS: tuple[Kind, ...] = ("checkpoint", "job", "run_setting")
# Bytes of JSONL parsed at once: large enough for the reader's threads, small enough that
# a multi-gigabyte stream never sits in memory whole.
DEFAULT_CHUNK_BYTES = 256 << 20
_PROBE_BYTES = 64 << 10
# Begins the reason of a stream's last line that is not valid JSON and ends without a
# newline; views.sql matches it.
UNTERMINATED = "last line without a newline, perhaps still being written"
# What a line cut short is rejected as (cut inside a character, it is not UTF-8).
_CUT_SHORT = ("invalid JSON", "line is not valid UTF-8")


@dataclass(frozen=True)
class SourceFile:
    path: Path
    kind: Kind
    size: int
    mtime_ns: int

    @property
    def fingerprint(self) -> list[int]:
        return [self.size, self.mtime_ns]


@dataclass(frozen=True)
class Quarantined:
    source_file: str
    line_number: int
    reason: str
    raw: str


@dataclass(frozen=True)
class Skipped:
    """A file that was not read, and why (it goes to quarantine as line 0)."""

    path: str
    reason: str
    # False when it was passed over on purpose (a folder's JSONL that is not events, a
    # folder with nothing to read): named, but not a failure to record in quarantine.
    quarantine: bool = True

    def quarantined(self) -> Quarantined:
        return Quarantined(self.path, 0, f"file skipped: {self.reason}", "")


@dataclass
class Found:
    """What ``discover`` found: the files to read and those it had to pass over."""

    sources: list[SourceFile]
    skipped: list[Skipped]


@dataclass
class Batch:
    """What one round of reading produced, and which files it finished."""

    events: list[pa.Table] = field(default_factory=list)
    quarantined: list[Quarantined] = field(default_factory=list)
    docs: dict[Kind, list[tuple[str, str]]] = field(default_factory=dict)
    finished: list[SourceFile] = field(default_factory=list)
    bytes_read: int = 0

    def events_table(self) -> pa.Table:
        return pa.concat_tables(self.events) if self.events else _with_source(empty_table(), "")


def classify(path: Path) -> Kind | None:
    parts = path.parts
    name = path.name
    if name == "job.json" and len(parts) >= 3 and parts[-3] == "jobs":
        return "job"
    if path.suffix == ".json" and len(parts) >= 4 and parts[-2] == "checkpoints":
        return "checkpoint" if parts[-4] == "jobs" else None
    if len(parts) >= 5 and parts[-3] == "runs" and parts[-5] == "jobs":
        if name == "run-setting.json":
            return "run_setting"
        if name.startswith("event-") and name.endswith(".json"):
            return "event"
    if path.suffix == ".jsonl":
        return "jsonl"
    return None


def discover(paths: Iterable[Path]) -> Found:
    """Every ingestible file under the given files and folders, in a stable order.

    Only regular files are read (a FIFO would block the ingest forever); symlinks inside a
    folder are not followed (they may loop, or point out of a workspace).
    """
    found: dict[Path, Kind] = {}
    skipped: list[Skipped] = []
    for path in paths:
        if not os.path.lexists(path):
            raise FileNotFoundError(f"{path}: no such file or folder to ingest")
        try:
            real = path.resolve(strict=True)
        except (OSError, RuntimeError) as error:
            skipped.append(Skipped(str(path), f"cannot resolve the path ({error})"))
            continue
        if real.is_dir():
            before = (len(found), len(skipped))
            _discover_folder(real, found, skipped)
            if (len(found), len(skipped)) == before:
                reason = (
                    "nothing to ingest (no *.jsonl event stream and no perstack/jobs files in it)"
                )
                skipped.append(Skipped(str(path), reason, quarantine=False))
        elif _is_regular(real, skipped):
            found[real] = classify(path) or "jsonl"
    sources = []
    for path, kind in sorted(found.items()):
        try:
            sources.append(_stat(path, kind))
        except OSError as error:
            skipped.append(Skipped(str(path), f"cannot read it ({error.strerror or error})"))
    for item in skipped:
        logger.info("%s: %s", item.path, item.reason)
    return Found(sources, skipped)


def _discover_folder(root: Path, found: dict[Path, Kind], skipped: list[Skipped]) -> None:
    for file, in_workspace in _walk(root, skipped):
        kind = classify(file)
        if kind is None or (kind == "jsonl" and in_workspace):
            continue
        if file.is_symlink():
            skipped.append(
                Skipped(str(file), "symlink inside a folder (name its target to ingest it)")
            )
            continue
        if not _is_regular(file, skipped):
            continue
        if kind == "jsonl":
            try:
                events = _looks_like_events(file)
            except OSError as error:
                skipped.append(Skipped(str(file), f"cannot read it ({error.strerror or error})"))
                continue
            if not events:
                reason = (
                    "not an event stream (its first line is an object without id and type); "
                    "name the file to ingest it anyway"
                )
                # Passed over on purpose (a folder may hold other JSONL), not a failure.
                skipped.append(Skipped(str(file), reason, quarantine=False))
                continue
        found[file] = kind


def _is_regular(path: Path, skipped: list[Skipped]) -> bool:
    try:
        mode = path.stat().st_mode
    except OSError as error:
        skipped.append(Skipped(str(path), f"cannot read it ({error.strerror or error})"))
        return False
    if not stat.S_ISREG(mode):
        skipped.append(Skipped(str(path), "not a regular file (e.g. a FIFO or device)"))
        return False
    return True


def open_regular(path: Path) -> BinaryIO:
    """Open a file for reading, refusing anything but a regular file without blocking on it."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_batches(sources: list[SourceFile], chunk_bytes: int) -> Generator[Batch, None, None]:
    """Batches of at most about ``chunk_bytes`` of input each.

    A file that cannot be read is quarantined (line 0) and left unfinished, so that the
    next ingest tries it again.
    """
    batch = Batch()
    pending_events: list[tuple[SourceFile, bytes]] = []
    for source in sources:
        if source.kind == "jsonl":
            try:
                for chunk_batch, last, full in _read_jsonl(source, chunk_bytes):
                    if batch.bytes_read and batch.bytes_read + chunk_batch.bytes_read > chunk_bytes:
                        yield _flush(batch, pending_events)
                        batch, pending_events = Batch(), []
                    _merge(batch, chunk_batch)
                    if last:
                        batch.finished.append(source)
                    # A full chunk is a batch: one cut at its last newline falls short of
                    # chunk_bytes, and waiting for the next would double the batch.
                    if full or batch.bytes_read >= chunk_bytes:
                        yield _flush(batch, pending_events)
                        batch, pending_events = Batch(), []
            except OSError as error:
                _unreadable(batch, source, error)
            continue
        try:
            with open_regular(source.path) as handle:
                data = handle.read()
        except OSError as error:
            _unreadable(batch, source, error)
            continue
        batch.bytes_read += len(data)
        if source.kind == "event":
            pending_events.append((source, data))
        else:
            _add_doc(batch, source, data)
        batch.finished.append(source)
        if batch.bytes_read >= chunk_bytes:
            yield _flush(batch, pending_events)
            batch, pending_events = Batch(), []
    if batch.finished or pending_events:
        yield _flush(batch, pending_events)


def _unreadable(batch: Batch, source: SourceFile, error: OSError) -> None:
    skipped = Skipped(str(source.path), f"cannot read it ({error.strerror or error})")
    logger.info("%s: %s", skipped.path, skipped.reason)
    batch.quarantined.append(skipped.quarantined())


def _walk(root: Path, skipped: list[Skipped]) -> Iterator[tuple[Path, bool]]:
    """Files under ``root`` (already resolved), each with whether it is in a workspace's
    ``perstack/jobs`` tree; symlinked folders are not followed.

    Of a workspace (a folder holding ``perstack/jobs``) only that tree is read: the rest is
    the Expert's own files, and a JSONL file there must not become audit rows.
    """

    def unreadable(error: OSError) -> None:
        skipped.append(Skipped(str(error.filename), f"cannot list it ({error.strerror})"))

    jobs_trees = [root] if _in_jobs_tree(root) else []
    for folder, dirs, files in os.walk(root, onerror=unreadable):
        here = Path(folder)
        in_workspace = any(here.is_relative_to(tree) for tree in jobs_trees)
        if not in_workspace and (here / "perstack" / "jobs").is_dir():
            jobs_trees.append(here / "perstack" / "jobs")
        inside = [t for t in jobs_trees if t.is_relative_to(here) and t != here]
        if inside and not in_workspace:
            # A workspace root, or its perstack folder: walk on only toward perstack/jobs.
            step = {t.relative_to(here).parts[0] for t in inside}
            dirs[:] = sorted(d for d in dirs if d in step)
            continue
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            yield Path(folder, name), in_workspace


def _in_jobs_tree(path: Path) -> bool:
    parts = path.parts
    return any(parts[i : i + 2] == ("perstack", "jobs") for i in range(len(parts) - 1))


def _stat(path: Path, kind: Kind) -> SourceFile:
    info = path.stat()
    return SourceFile(path, kind, info.st_size, info.st_mtime_ns)


def _looks_like_events(path: Path) -> bool:
    """False only for a JSONL file whose first line is an object without id and type."""
    with open_regular(path) as handle:
        head = handle.read(_PROBE_BYTES)
    first = next((line for line in head.split(b"\n") if line.strip()), b"")
    try:
        obj = json.loads(first)
    except (ValueError, RecursionError):
        return True
    return not (isinstance(obj, dict) and "id" not in obj and "type" not in obj)


# TODO(#7): a grown stream is read again from its start (its old rows are recognised by key).
def _read_jsonl(source: SourceFile, chunk_bytes: int) -> Iterator[tuple[Batch, bool, bool]]:
    """Parsed chunks of the stream, each with whether it is the last and whether it filled
    a whole read of ``chunk_bytes``."""
    line = 1
    carry = b""
    with open_regular(source.path) as handle:
        while True:
            block = handle.read(chunk_bytes)
            at_end = not block
            # Copies cost a tenth of a second per 256 MB (#7): the carried partial line is
            # joined only when there is one, and the part up to the last newline is a view.
            data = carry + block if carry else block
            cut = len(data) if at_end else data.rfind(b"\n") + 1
            carry = data[cut:]
            if cut > 0 or at_end:
                with memoryview(data) as whole, whole[:cut] as view:
                    batch = _parsed_batch(parse_jsonl(view, line), str(source.path))
                batch.bytes_read = cut
                if at_end and data:
                    _mark_unterminated(batch, line)
                line += data.count(b"\n", 0, cut)
                yield batch, at_end, len(block) == chunk_bytes
            if at_end:
                return


def _mark_unterminated(batch: Batch, line: int) -> None:
    """Say so when the stream's last line, without a newline, is not valid JSON (or not
    UTF-8): it may be an event still being written. The quarantine view drops the row
    once a later ingest reads the line whole (views.sql)."""
    batch.quarantined = [
        replace(row, reason=f"{UNTERMINATED}: {row.reason}")
        if row.line_number == line and row.reason.startswith(_CUT_SHORT)
        else row
        for row in batch.quarantined
    ]


def _parsed_batch(parsed: Parsed, source: str) -> Batch:
    batch = Batch()
    batch.events.append(_with_source(parsed.table, source))
    batch.quarantined.extend(
        Quarantined(source, r.line_number, r.reason, r.raw) for r in parsed.rejected
    )
    return batch


def _with_source(table: pa.Table, source: str | pa.Array) -> pa.Table:
    if isinstance(source, str):
        source = pa.repeat(pa.scalar(source, pa.string()), table.num_rows)
    return table.append_column("source_file", source)


def _merge(into: Batch, other: Batch) -> None:
    into.events.extend(other.events)
    into.quarantined.extend(other.quarantined)
    into.bytes_read += other.bytes_read
    for kind, docs in other.docs.items():
        into.docs.setdefault(kind, []).extend(docs)


def _add_doc(batch: Batch, source: SourceFile, data: bytes) -> None:
    text = data.decode("utf-8", errors="replace")
    try:
        obj = json.loads(text)
    except ValueError as error:
        batch.quarantined.append(Quarantined(str(source.path), 1, f"invalid JSON: {error}", text))
        return
    except RecursionError:
        batch.quarantined.append(Quarantined(str(source.path), 1, TOO_DEEP, text))
        return
    if not isinstance(obj, dict):
        reason = f"not a JSON object but {type(obj).__name__}"
        batch.quarantined.append(Quarantined(str(source.path), 1, reason, text))
        return
    batch.docs.setdefault(source.kind, []).append((str(source.path), json.dumps(obj)))


def _flush(batch: Batch, pending_events: list[tuple[SourceFile, bytes]]) -> Batch:
    """Parse the collected one-event files together, as one JSONL buffer."""
    if not pending_events:
        return batch
    lines: list[bytes] = []
    names: list[str] = []
    for source, data in pending_events:
        body = data.strip()
        if not body:
            batch.quarantined.append(Quarantined(str(source.path), 1, "empty event file", ""))
            continue
        if b"\n" in body:
            body = _compact(body)
        lines.append(body)
        names.append(str(source.path))
    parsed = parse_jsonl(b"\n".join(lines) + b"\n", first_line=0)
    table = parsed.table
    files = pa.array(names, pa.string()).take(table.column("source_line"))
    table = table.set_column(
        table.schema.get_field_index("source_line"),
        "source_line",
        pa.array([1] * table.num_rows, pa.int64()),
    )
    batch.events.append(table.append_column("source_file", files))
    for rejected in parsed.rejected:
        _rescue(batch, names[rejected.line_number], rejected)
    return batch


def _compact(body: bytes) -> bytes:
    try:
        return json.dumps(json.loads(body)).encode()
    except (ValueError, RecursionError):
        return body.replace(b"\n", b" ")


def _rescue(batch: Batch, source: str, rejected: Rejected) -> None:
    """An event file with trailing bytes keeps its leading event; the rest is quarantined.

    The reference overwrites a shorter event over a longer one when two share a name; the
    file then holds a whole event followed by the tail of the other.
    """
    if rejected.kept:
        batch.quarantined.append(Quarantined(source, 1, rejected.reason, rejected.raw))
        return
    try:
        obj, end = json.JSONDecoder().raw_decode(rejected.raw)
    except (ValueError, RecursionError):
        obj, end = None, 0
    if not isinstance(obj, dict) or end == 0 or not rejected.raw[end:].strip():
        # Nothing trailing: the event itself was refused, for the reason given.
        batch.quarantined.append(Quarantined(source, 1, rejected.reason, rejected.raw))
        return
    parsed = parse_jsonl(json.dumps(obj).encode())
    table = parsed.table.set_column(
        parsed.table.schema.get_field_index("raw"),
        "raw",
        pa.array([rejected.raw[:end]], pa.large_string()),
    )
    batch.events.append(_with_source(table, source))
    reason = f"trailing bytes after the event in this file (overwritten?): {rejected.reason}"
    batch.quarantined.append(Quarantined(source, 1, reason, rejected.raw[end:]))
