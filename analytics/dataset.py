"""The on-disk dataset: one folder per table, Parquet files written atomically.

Layout under the dataset root::

    events/day=2026-12-03/part-<batch>.parquet     (tables with a day column)
    messages/part-<batch>.parquet                  (tables without one)
    summaries/runs/part-<0..f>.parquet             (snapshots, see catalog.py)
    _state/files.json                              (what was ingested: size, mtime)
    _state/format.json                             (format version, see upgrade.py)
    _state/lock                                    (held while an ingest writes)
    catalog.duckdb                                 (views over the Parquet files)

A file is written under a temporary name in its final folder and renamed into place, so
a reader globbing ``*.parquet`` sees all of a file or none of it. Appending never
rewrites an existing file; keys already present are filtered out before writing.

TODO(#7): every ingest adds one file per table and day; many small ingests (one per run)
leave many small files and nothing compacts them yet.
TODO(#7): a key look-up scans the key column of every day (an ingest of 200 events into 2M
events in 1,390 day folders: 0.30 s, against 0.06 s when only the batch's days were read);
a small id index would bound it.
TODO(#7): events are partitioned by day only; a filter on the Expert reads the whole day
of events (the runs, generations and tool_calls snapshots are small and cover it).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import glob
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeAlias

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from analytics.derive import QUIET
from analytics.errors import DatasetLockedError, DatasetPathError
from analytics.schemas import TABLES, TableSpec

logger = logging.getLogger(__name__)

DATA_ENV = "PERSTACK_AUDIT_DATA"
DEFAULT_DATA_DIR = Path(".data") / "audit"
# Ingests of several users may queue behind each other; one ingest of a large workspace
# takes seconds to minutes, so waiting up to ten minutes beats failing the flow.
LOCK_TIMEOUT_S = 600.0
_LOCK_POLL_S = 0.2
_ROW_GROUP_ROWS = 128 * 1024
# Rows gathered (and written as a row group) at a time when a batch's days are out of
# order; 16k events (about 14 MB of JSON) measured fastest, 4k to 64k cost more (#7).
_TAKE_ROWS = 16 * 1024
_COMPRESSION = "zstd"
# Level 1 is faster than 3 and, on event JSON, no larger (measured for #7).
_COMPRESSION_LEVEL = 1
# Long free text compresses well but never repeats exactly: dictionaries only cost there.
# Nor do columns unique per row (ids, hashes, line numbers, millisecond times).
_NO_DICTIONARY = {
    "raw",
    "text",
    "delta",
    "query",
    "message",
    "args",
    "result",
    "result_text",
    "event_id",
    "checkpoint_id",
    "next_checkpoint_id",
    "tool_call_id",
    "message_id",
    "version_hash",
    "raw_hash",
    "source_line",
    "ts",
    "step_started_at",
    "step_finished_at",
}
# Which rows of a table to write: a contiguous range, or indices in the order to write.
Rows: TypeAlias = slice | pa.Array


def default_root() -> Path:
    """The dataset folder: $PERSTACK_AUDIT_DATA, else ./.data/audit."""
    return Path(os.environ.get(DATA_ENV) or DEFAULT_DATA_DIR)


_GLOB_CHARS = frozenset("*?[]{}")


class Dataset:
    """A dataset folder; create it with ``Dataset(root)``, nothing is written until asked."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).resolve()

    def check_path(self) -> None:
        """DatasetPathError when the path is a file, or one DuckDB would misread: a folder
        named ``key=value`` becomes a column of every table (hive partitioning), and glob
        characters make the tables' file patterns match nothing."""
        existing = next(p for p in (self.root, *self.root.parents) if p.exists())
        if existing == self.root and not existing.is_dir():
            raise DatasetPathError(str(self.root))
        if not existing.is_dir():
            raise DatasetPathError(str(self.root), f"{existing} is a file, not a folder")
        for part in self.root.parts:
            if "=" in part:
                why = f"a folder named with '=' ({part!r}) would be read as a partition column"
                raise DatasetPathError(str(self.root), why)
            found = sorted(set(part) & _GLOB_CHARS)
            if found:
                why = f"{' '.join(found)} in a folder name ({part!r}) would be read as a pattern"
                raise DatasetPathError(str(self.root), why)

    def exists(self) -> bool:
        """True once something was ingested here (or its catalog was copied here)."""
        return self.catalog_path.is_file() or self.state_dir.is_dir()

    @property
    def state_dir(self) -> Path:
        return self.root / "_state"

    @property
    def catalog_path(self) -> Path:
        return self.root / "catalog.duckdb"

    def table_dir(self, table: str) -> Path:
        return self.root / table

    def table_glob(self, table: str) -> str:
        spec = TABLES.get(table)
        if spec is not None and spec.day_column is not None:
            return str(self.table_dir(table) / "*" / "*.parquet")
        return str(self.table_dir(table) / "*.parquet")

    def files(self, table: str) -> list[Path]:
        return sorted(Path(p) for p in _glob(self.table_glob(table)))

    @contextlib.contextmanager
    def locked(self, timeout_s: float = LOCK_TIMEOUT_S) -> Iterator[None]:
        """Hold the dataset's write lock (other ingests wait, readers never do)."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        path = self.state_dir / "lock"
        with open(path, "a+") as handle:
            deadline = time.monotonic() + timeout_s
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as error:
                    if error.errno not in (errno.EAGAIN, errno.EACCES):
                        raise
                    if time.monotonic() >= deadline:
                        raise DatasetLockedError(str(path)) from error
                    time.sleep(_LOCK_POLL_S)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def remove_leftovers(self) -> list[Path]:
        """Remove the temporary files an interrupted writer left (hold the lock).

        Every file this package writes is first a hidden ``.NAME….tmp`` beside its final
        name (DuckDB adds ``.wal`` to the catalog's), or in a hidden ``.NAME.parts.tmp``
        folder (a snapshot's parts); none is ever read as data, since the views read
        ``*.parquet`` in the tables' own folders only. Symlinked folders are not followed.
        """
        removed = []
        for folder, dirs, files in os.walk(self.root):
            for name in files:
                if name.startswith(".") and (name.endswith(".tmp") or name.endswith(".tmp.wal")):
                    path = Path(folder, name)
                    path.unlink(missing_ok=True)
                    removed.append(path)
            for name in [d for d in dirs if d.startswith(".") and d.endswith(".tmp")]:
                # A snapshot's parts as DuckDB wrote them, before they were moved into place.
                dirs.remove(name)
                shutil.rmtree(Path(folder, name), ignore_errors=True)
                removed.append(Path(folder, name))
        if removed:
            logger.info("removed %d temporary file(s) an interrupted ingest left", len(removed))
        return removed

    # --- what was ingested ------------------------------------------------------------

    def load_seen_files(self) -> dict[str, list[int]]:
        path = self.state_dir / "files.json"
        if not path.exists():
            return {}
        loaded = json.loads(path.read_text())
        return loaded if isinstance(loaded, dict) else {}

    def save_seen_files(self, seen: dict[str, list[int]]) -> None:
        write_atomic(self.state_dir / "files.json", json.dumps(seen, sort_keys=True).encode())

    # --- appending rows ---------------------------------------------------------------

    def existing_keys(self, spec: TableSpec, candidates: pa.Array) -> pa.Array:
        """Those of the ``candidates`` keys (as ``key_array`` makes them) already stored.

        Keys are unique across the whole table, not per day folder: the same event id with
        another timestamp (so another day) is the same event.
        """
        files = [str(p) for p in self.files(spec.name)]
        if not files:
            return pa.array([], pa.string())
        return _stored_among(files, spec.key, candidates)

    def new_rows(
        self, spec: TableSpec, table: pa.Table, stored: pa.Array | None = None
    ) -> pa.Table:
        """The rows whose keys are neither repeated in ``table`` nor already stored
        (``stored``: those of its keys already known to be stored, when looked up before)."""
        table = table.select(spec.schema.names).cast(spec.schema)
        table = drop_duplicate_keys(table, spec.key)
        if stored is None:
            # Only this batch's keys are looked up, reading just the key columns: tables
            # without days grow large too (a run into 10M events: checkpoints and messages
            # read whole and matched in Arrow took 0.9 s each, #7).
            stored = self.existing_keys(spec, key_array(table, spec.key))
        return _without(table, spec.key, stored)

    def write(self, spec: TableSpec, table: pa.Table, batch_id: str) -> int:
        """Write rows already known to be new (see ``new_rows``); returns how many."""
        commit(self.stage(spec, table, batch_id))
        return int(table.num_rows)

    def stage(self, spec: TableSpec, table: pa.Table, batch_id: str) -> list[Staged]:
        """Write the files under temporary names; ``commit`` renames them into place."""
        if table.num_rows == 0:
            return []
        if spec.day_column is None:
            return [self._write(self.table_dir(spec.name), table, batch_id)]
        staged = []
        try:
            for day, rows in _rows_by_day(table, spec.day_column):
                folder = self.table_dir(spec.name) / f"day={day}"
                staged.append(self._write(folder, table, batch_id, rows))
        except BaseException:
            discard(staged)
            raise
        return staged

    def append(self, spec: TableSpec, table: pa.Table, batch_id: str) -> int:
        """Write the new rows of ``table``; returns how many."""
        if table.num_rows == 0:
            return 0
        return self.write(spec, self.new_rows(spec, table), batch_id)

    def _write(
        self, folder: Path, table: pa.Table, batch_id: str, rows: Rows | None = None
    ) -> Staged:
        """Write ``table`` (or its ``rows``, in that order) under a temporary name."""
        folder.mkdir(parents=True, exist_ok=True)
        final = folder / f"part-{batch_id}.parquet"
        tmp = folder / f".part-{batch_id}.parquet.tmp"
        dictionary = [n for n in table.schema.names if n not in _NO_DICTIONARY]
        with pq.ParquetWriter(
            tmp,
            table.schema,
            compression=_COMPRESSION,
            compression_level=_COMPRESSION_LEVEL,
            use_dictionary=dictionary,
        ) as writer:
            if rows is None:
                writer.write_table(table, row_group_size=_ROW_GROUP_ROWS)
            elif isinstance(rows, slice):
                part = table.slice(rows.start, rows.stop - rows.start)
                writer.write_table(part, row_group_size=_ROW_GROUP_ROWS)
            else:
                # Gathered a slice at a time: one take of a whole batch (the raw payloads
                # too) fills hundreds of megabytes of fresh pages, which costs twice what
                # writing the rows does on these machines (#7); small takes reuse memory.
                for start in range(0, len(rows), _TAKE_ROWS):
                    piece = table.take(rows.slice(start, _TAKE_ROWS))
                    writer.write_table(piece, row_group_size=_TAKE_ROWS)
        fsync_file(tmp)
        return Staged(tmp, final)


@dataclass(frozen=True)
class Staged:
    """A file written under a temporary name, waiting to be renamed into place."""

    tmp: Path
    final: Path


def commit(staged: list[Staged]) -> None:
    for item in staged:
        os.replace(item.tmp, item.final)
        logger.debug("wrote %s", item.final)


def discard(staged: list[Staged]) -> None:
    for item in staged:
        item.tmp.unlink(missing_ok=True)


# Past this many touched runs, tool calls or jobs, recomputing the snapshots whole is
# cheaper than a filter listing them all.
_TOUCHED_LIMIT = 2000


@dataclass
class Touched:
    """What ingests changed since the snapshots were last written (kept in _state): the
    runs and tool calls with new rows, and their jobs (a run's row also depends on its
    job's runtime start, which may arrive with another run's events)."""

    full: bool = False
    runs: list[str] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    jobs: list[str] = field(default_factory=list)

    def add(self, runs: list[str], calls: list[str], jobs: list[str]) -> None:
        if self.full:
            return
        self.runs = sorted(set(self.runs) | {r for r in runs if r is not None})
        self.calls = sorted(set(self.calls) | {c for c in calls if c is not None})
        self.jobs = sorted(set(self.jobs) | {j for j in jobs if j is not None})
        if max(len(self.runs), len(self.calls), len(self.jobs)) > _TOUCHED_LIMIT:
            self.full, self.runs, self.calls, self.jobs = True, [], [], []

    @property
    def empty(self) -> bool:
        return not (self.full or self.runs or self.calls or self.jobs)


def load_touched(dataset: Dataset) -> Touched:
    path = dataset.state_dir / "touched.json"
    if not path.exists():
        return Touched()
    loaded = json.loads(path.read_text())
    return Touched(
        bool(loaded.get("full")),
        list(loaded["runs"]),
        list(loaded["calls"]),
        list(loaded.get("jobs", [])),  # absent in what format 3 saved
    )


def save_touched(dataset: Dataset, touched: Touched) -> None:
    path = dataset.state_dir / "touched.json"
    if touched.empty:
        path.unlink(missing_ok=True)
        return
    data = {
        "full": touched.full,
        "runs": touched.runs,
        "calls": touched.calls,
        "jobs": touched.jobs,
    }
    write_atomic(path, json.dumps(data).encode())


def new_batch_id() -> str:
    # Sortable by time, unique across concurrent writers.
    return f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:12]}"


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def key_array(table: pa.Table, key: tuple[str, ...]) -> pa.Array:
    """One string per row standing for the whole key (columns joined by a unit separator)."""
    if len(key) == 1:
        return table.column(key[0]).cast(pa.string())
    parts = [pc.fill_null(table.column(k).cast(pa.string()), "") for k in key]
    return pc.binary_join_element_wise(*parts, "\x1f")


def drop_duplicate_keys(table: pa.Table, key: tuple[str, ...]) -> pa.Table:
    """Keep the first row of each key (cheap when, as usual, there are no duplicates)."""
    keys = key_array(table, key)
    if pc.count_distinct(keys, mode="all").as_py() == table.num_rows:
        return table
    indexed = pa.table({"k": keys, "i": pa.array(range(table.num_rows), pa.int64())})
    first = indexed.group_by("k", use_threads=False).aggregate([("i", "min")])
    return table.take(_sorted(first.column("i_min")))


def _sorted(values: pa.ChunkedArray) -> pa.Array:
    return pc.take(values, pc.sort_indices(values))


def _stored_among(files: list[str], key: tuple[str, ...], candidates: pa.Array) -> pa.Array:
    """Which of ``candidates`` (as ``key_array`` makes them) the Parquet files hold."""
    if len(candidates) == 0:
        return pa.array([], pa.string())
    parts = [f"coalesce(CAST({_ident(k)} AS VARCHAR), '')" for k in key]
    expr = f"CAST({_ident(key[0])} AS VARCHAR)" if len(key) == 1 else _joined(parts)
    con = duckdb.connect()
    try:
        con.execute(QUIET)
        con.register("candidates", pa.table({"k": candidates}))
        found = con.sql(
            f"SELECT DISTINCT k FROM (SELECT {expr} AS k FROM "
            "read_parquet($files, hive_partitioning = false)) "
            "WHERE k IN (SELECT k FROM candidates)",
            params={"files": files},
        ).to_arrow_table()
    finally:
        con.close()
    return found.column("k").combine_chunks().cast(pa.string())


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _joined(parts: list[str]) -> str:
    # The same unit separator as key_array.
    return f"concat_ws(chr(31), {', '.join(parts)})"


def _without(table: pa.Table, key: tuple[str, ...], existing: pa.Array) -> pa.Table:
    if len(existing) == 0:
        return table
    seen = pc.fill_null(pc.is_in(key_array(table, key), value_set=existing), False)
    if not pc.any(seen).as_py():
        # Filtering would copy every column (the raw payloads too) to drop nothing.
        return table
    return table.filter(pc.invert(seen))


def _rows_by_day(table: pa.Table, column: str) -> list[tuple[str, Rows]]:
    """The rows of each day, days in order, rows in their order within a day: a slice of
    the table when its days ascend (a stream usually does), else indices into it.

    One stable sort of the days, not of the rows: a filter per day copied every column
    (the raw payloads too) once per day and cost six times more (#7).
    """
    days = _days(table, column)
    order = None
    if not _ascending(days):
        order = pc.sort_indices(days)  # stable: a day keeps its rows' order
        days = days.take(order)
    counts = pc.value_counts(days)
    parts: list[tuple[str, Rows]] = []
    start = 0
    for day, count in zip(
        counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True
    ):
        rows = slice(start, start + count) if order is None else order.slice(start, count)
        parts.append((day, rows))
        start += count
    return parts


def _ascending(values: pa.Array) -> bool:
    """True when no value is less than the one before (then a stream needs no sort)."""
    if len(values) < 2:
        return True
    later, earlier = values.slice(1), values.slice(0, len(values) - 1)
    return bool(pc.all(pc.greater_equal(later, earlier)).as_py())


def _days(table: pa.Table, column: str) -> pa.Array:
    """The UTC day of each row as YYYY-MM-DD (timestamps are stored in UTC)."""
    dates = pc.cast(table.column(column), pa.date32())
    return pc.fill_null(pc.cast(dates, pa.string()), "unknown").combine_chunks()


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _glob(pattern: str) -> list[str]:
    return sorted(glob.glob(pattern))
