"""The DuckDB database file: views over the Parquet dataset, the prices, named queries.

``catalog.duckdb`` sits in the dataset folder. Its views read the Parquet files in place
(nothing is copied into it except the small ``prices`` table), so any DuckDB client can
open it and query ``runs``, ``tool_calls``, ``generations`` and the rest.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import uuid
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from analytics.dataset import (
    Dataset,
    Touched,
    fsync_file,
    load_touched,
    save_touched,
    write_atomic,
)
from analytics.derive import QUIET
from analytics.errors import CatalogMovedError
from analytics.prices import Price, read_prices
from analytics.schemas import TABLES
from analytics.upgrade import OLD_SNAPSHOTS, check_readable

__all__ = ["open_catalog", "read_prices", "refresh_catalog", "resolve_prices"]

logger = logging.getLogger(__name__)

# List prices (USD per million tokens) used when no prices file is given; matched as model
# name prefixes, longest first.
DEFAULT_PRICES = "prices.json"
PRICES_FILE_NAME = "prices.csv"


@dataclass(frozen=True)
class Summary:
    """A view too slow to compute over millions of events at every query: it is written to
    snapshot files at each ingest (its *_live view stays available), recomputing only the
    rows whose ``key`` the ingest touched (``key``: a SQL expression giving the strings
    Touched holds).

    The snapshot is split into ``_PARTS`` files by the md5 of ``owner`` (the run, or the
    job of a tool call): all rows of one key are in one file, and an ingest of a few runs
    rewrites only the files holding them.
    """

    name: str
    sql: str
    key: str
    touched: Literal["runs", "calls"]
    owner: str


# Touched.calls holds dataset.key_array of (job_id, tool_call_id): both joined by chr(31),
# a null as ''.
_CALL_KEY = "(coalesce(job_id, '') || chr(31) || coalesce(tool_call_id, ''))"
SUMMARIES = (
    Summary("runs", "SELECT * FROM runs_live", "run_id", "runs", "run_id"),
    Summary("generations", "SELECT * FROM generations_live", "run_id", "runs", "run_id"),
    Summary(
        "tool_calls",
        "SELECT * EXCLUDE (args, result, result_text) FROM tool_calls_live",
        _CALL_KEY,
        "calls",
        "job_id",
    ),
)
# The first hex digit of the owner's md5 names the part: stable across DuckDB versions,
# unlike hash(). One run into ten million events rewrote whole snapshots in about 5 s (#7).
_PARTS = "0123456789abcdef"


def refresh_catalog(
    dataset: Dataset, prices: Path | None = None, *, touched: Touched | None = None
) -> None:
    """(Re)create the catalog's views, snapshots and prices; hold the dataset lock.

    ``touched`` names what changed since the snapshots were written; by default what the
    dataset's state says (what ingests made with ``refresh=False`` left to do), which is
    cleared once the new catalog is in place.

    The catalog is built whole in a new file and renamed over the old one: a reader sees
    the old catalog or the new one, never half of one, keeps its open old one, and does not
    block the build (DuckDB would refuse to write a file another process has open); a
    failed build leaves the old catalog as it was.
    """
    prices_rows = read_prices(resolve_prices(dataset, prices))
    if touched is None:
        touched = load_touched(dataset)
    tmp = dataset.root / f".{dataset.catalog_path.name}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        con = duckdb.connect(str(tmp))
        try:
            _build(con, dataset, touched, prices_rows)
        finally:
            con.close()
        fsync_file(tmp)
        os.replace(tmp, dataset.catalog_path)
        # Format 3's snapshot files: no catalog reads them any more.
        for name in OLD_SNAPSHOTS:
            (dataset.root / "summaries" / name).unlink(missing_ok=True)
        if not touched.empty:
            save_touched(dataset, Touched())
    finally:
        tmp.unlink(missing_ok=True)
        tmp.with_name(tmp.name + ".wal").unlink(missing_ok=True)


def _build(con: Any, dataset: Dataset, touched: Touched, prices: list[Price]) -> None:
    con.execute(QUIET)
    _prepare(con)
    # Each view reads the footers of its tables' files when it is created: cached, the
    # views over ten million events (324 files a table) take 0.44 s instead of 1.14 (#7).
    # Those files never change; a snapshot part does (see below).
    con.execute("SET parquet_metadata_cache = true")
    for statement in _view_statements(dataset):
        con.execute(statement)
    folders = {s.name: dataset.root / "summaries" / s.name for s in SUMMARIES}
    whole = {name: touched.full or not _complete(folder) for name, folder in folders.items()}
    fresh = {}
    if not touched.empty and not all(whole.values()):
        fresh = _touched_rows(con, dataset, touched)
    for summary in SUMMARIES:
        folder = folders[summary.name]
        if whole[summary.name]:
            _write_snapshot(con, summary, folder)
        elif summary.name in fresh:
            # A part is read, then replaced under the same name: no footer from a cache.
            con.execute("SET parquet_metadata_cache = false")
            _update_snapshot(con, summary, folder, fresh[summary.name])
        glob = _quote(str(folder / "part-*.parquet"))
        con.execute(f"CREATE OR REPLACE VIEW {summary.name} AS SELECT * FROM read_parquet({glob})")
    _create_prices(con, prices, temporary=False)


def _complete(folder: Path) -> bool:
    return all((folder / f"part-{part}.parquet").exists() for part in _PARTS)


def _write_snapshot(con: Any, summary: Summary, folder: Path) -> None:
    """Compute the whole snapshot once, written into its parts by DuckDB (one COPY costs
    what a single file did; sixteen filtered ones, 40% more at 1M events, #7), and move
    each part into place; a part without rows is an empty file of the same columns."""
    staging = folder.parent / f".{folder.name}.parts.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        con.execute(
            f"COPY (SELECT *, {_part_of(summary)} AS part_ FROM ({summary.sql})) "
            f"TO {_quote(str(staging))} (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (part_))"
        )
        written = {part: sorted((staging / f"part_={part}").glob("*.parquet")) for part in _PARTS}
        empty = _empty_snapshot(con, summary, staging, written)
        for part, files in written.items():
            target = folder / f"part-{part}.parquet"
            if len(files) == 1:
                os.replace(files[0], target)
            elif files:
                _copy(con, f"SELECT * FROM {_parquet(files)}", folder, part)
            elif empty is not None:
                tmp = target.with_name(f".{target.name}.tmp")
                shutil.copyfile(empty, tmp)
                os.replace(tmp, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _empty_snapshot(
    con: Any, summary: Summary, staging: Path, written: dict[str, list[Path]]
) -> Path | None:
    """A file of the snapshot's columns and no rows when some part has none, its columns
    taken from a written part if there is one."""
    if all(written.values()):
        return None
    files = [f for found in written.values() for f in found]
    rows = _parquet(files[:1]) if files else f"({summary.sql})"
    empty = staging / "empty.parquet"
    con.execute(
        f"COPY (SELECT * FROM {rows} LIMIT 0) TO {_quote(str(empty))} "
        "(FORMAT parquet, COMPRESSION zstd)"
    )
    return empty


def _parquet(files: list[Path]) -> str:
    # Not as hive partitions: the folder names (part_=3) are not columns of the snapshot.
    return f"read_parquet([{_in_list([str(f) for f in files])}], hive_partitioning = false)"


def _touched_rows(con: Any, dataset: Dataset, touched: Touched) -> dict[str, pa.Table]:
    """The rows of each summary for the touched runs, calls and jobs, every run and call
    of those jobs included, computed over the rows they depend on only.

    The *_live views filtered by key would still aggregate every run and job before the
    filter (it does not reach below their CTEs): one run into two million events took
    0.4 s for runs alone. A run's rows depend on all of its events, its job's
    initializeRuntime and its run setting; a tool call's on its job's calls and results.
    So the views are built again in a connection of their own, over those rows.
    """
    runs, jobs = _affected(con, touched)
    run_list, job_list = _in_list(runs), _in_list(jobs)
    calls = _in_list(touched.calls)
    # raw is not read (no summary uses it; the quarantine view only names it). Each filter
    # is on one column, so that the scan applies it: an OR of two columns is applied only
    # after every column of every row was read (1.06 s against 0.15 over 10M events).
    events = f"SELECT * REPLACE (NULL::VARCHAR AS raw) FROM {_source(dataset, 'events')}"
    calls_of_jobs = f"job_id IN ({job_list})"
    if any(key.startswith("\x1f") for key in touched.calls):  # a call without a job
        calls_of_jobs += " OR job_id IS NULL"
    selects = {
        "events": (
            f"{events} WHERE run_id IN ({run_list}) UNION ALL {events} "
            f"WHERE job_id IN ({job_list}) AND (run_id IS NULL OR run_id NOT IN ({run_list}))"
        ),
        "tool_calls": f"SELECT * FROM {_source(dataset, 'tool_calls')} WHERE {calls_of_jobs}",
        "tool_results": f"SELECT * FROM {_source(dataset, 'tool_results')} WHERE {calls_of_jobs}",
    }
    # Each summary's rows of whole keys: all rows of a key are replaced by these.
    selected = {
        "runs": f"run_id IN ({run_list})",
        "generations": f"run_id IN ({run_list})",
        "tool_calls": f"{_CALL_KEY} IN ({calls}) OR job_id IN ({job_list})",
    }
    mem = duckdb.connect()
    try:
        mem.execute(QUIET)
        mem.execute("SET parquet_metadata_cache = true")  # read here: the tables' files only
        _prepare(mem)
        for table, select in selects.items():
            mem.execute(f"CREATE TABLE touched_{table} AS {select}")
        for statement in _view_statements(dataset, {t: f"touched_{t}" for t in selects}):
            if _view_name(statement) in _SUMMARY_VIEWS:
                mem.execute(statement)
        return {
            summary.name: mem.sql(
                f"SELECT * FROM ({summary.sql}) WHERE {selected[summary.name]}"
            ).to_arrow_table()
            for summary in SUMMARIES
        }
    finally:
        mem.close()


def _affected(con: Any, touched: Touched) -> tuple[list[str], list[str]]:
    """The runs whose rows may change (the touched ones and every run of a touched job)
    and the jobs whose rows they read (the touched ones and every job of those runs)."""
    jobs = {key.split("\x1f", 1)[0] for key in touched.calls} | set(touched.jobs)
    jobs |= _column(
        con,
        "SELECT job_id FROM events WHERE run_id IN ({runs}) "
        "UNION SELECT job_id FROM run_settings WHERE run_id IN ({runs})",
        runs=touched.runs,
    )
    runs = set(touched.runs) | _column(
        con,
        "SELECT run_id FROM events WHERE job_id IN ({jobs}) "
        "UNION SELECT run_id FROM run_settings WHERE job_id IN ({jobs})",
        jobs=sorted(jobs),
    )
    jobs |= _column(con, "SELECT job_id FROM events WHERE run_id IN ({runs})", runs=sorted(runs))
    return sorted(runs), sorted(jobs)


def _column(con: Any, sql: str, **lists: list[str]) -> set[str]:
    """The distinct non-null values of a one-column query with its IN lists filled in."""
    if not any(lists.values()):
        return set()
    filled = sql.format(**{name: _in_list(texts) for name, texts in lists.items()})
    return {row[0] for row in con.execute(filled).fetchall() if row[0] is not None}


# The views the summaries' SQL reads, directly or through each other (views.sql).
_SUMMARY_VIEWS = (
    "run_settings",
    "tool_calls_live",
    "usage_events",
    "generations_live",
    "runs_live",
)


def _view_name(statement: str) -> str | None:
    found = re.search(r"CREATE OR REPLACE VIEW (\w+)", statement)
    return found.group(1) if found else None


def _update_snapshot(con: Any, summary: Summary, folder: Path, fresh: pa.Table) -> None:
    """Replace the rows of every key in ``fresh`` by its ``fresh`` rows, rewriting only
    the parts that hold them (each keeping its other rows).

    Rows are only ever added to the events, so a key stored before that the ingest
    touched has fresh rows, in the part it was stored in: the touched keys themselves
    need no list of their own.
    """
    con.register("fresh_rows", fresh)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE fresh_ AS SELECT *, {_part_of(summary)} AS part_, "
        f"{summary.key} AS key_ FROM fresh_rows"
    )
    con.unregister("fresh_rows")
    parts = [row[0] for row in con.execute("SELECT DISTINCT part_ FROM fresh_").fetchall()]
    for part in sorted(parts):
        old = _quote(str(folder / f"part-{part}.parquet"))
        _copy(
            con,
            f"SELECT * FROM read_parquet({old}) WHERE {summary.key} IS NULL OR {summary.key} "
            "NOT IN (SELECT key_ FROM fresh_ WHERE key_ IS NOT NULL) "
            f"UNION ALL BY NAME "
            f"SELECT * EXCLUDE (part_, key_) FROM fresh_ WHERE part_ = '{part}'",
            folder,
            part,
        )
    con.execute("DROP TABLE fresh_")


def _in_list(texts: list[str]) -> str:
    """SQL string literals for an IN list; NULL for none (IN (NULL) matches nothing)."""
    return ", ".join(_quote(t) for t in texts) or "NULL"


def _part_of(summary: Summary) -> str:
    return f"substr(md5(coalesce(CAST({summary.owner} AS VARCHAR), '')), 1, 1)"


def _copy(con: Any, sql: str, folder: Path, part: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"part-{part}.parquet"
    tmp = path.with_name(f".{path.name}.tmp")
    con.execute(f"COPY ({sql}) TO {_quote(str(tmp))} (FORMAT parquet, COMPRESSION zstd)")
    os.replace(tmp, path)


def open_catalog(dataset: Dataset | Path | str, prices: Path | None = None) -> Any:
    """A read-only connection to the catalog of a dataset (or of the dataset folder given);
    several readers may share the file."""
    if not isinstance(dataset, Dataset):
        dataset = Dataset(dataset)
    dataset.check_path()
    check_readable(dataset)
    if not dataset.catalog_path.exists():
        with dataset.locked():
            refresh_catalog(dataset)
    con = _attached(dataset)
    if not _points_at(con, dataset):
        # The views name the dataset's files by absolute path: a dataset moved or copied
        # elsewhere has a catalog reading its old place. Point them here (no data changes).
        con.close()
        _repoint(dataset)
        con = _attached(dataset)
    _prepare(con)
    # As the files say now: the catalog's copy is as of the last ingest.
    _load_prices(con, resolve_prices(dataset, prices), temporary=True)
    _confine(con, dataset)
    return con


def _attached(dataset: Dataset) -> Any:
    """A DuckDB of its own with the catalog attached read-only as the default database.

    Not ``duckdb.connect(catalog)``: connections to one file in one process share one
    database, so the second reader's settings failed on the first one's locked
    configuration (two audits in threads of one flow), and a reader opened after an
    ingest renamed a new catalog into place got the old one still held open.
    """
    con = duckdb.connect()
    try:
        con.execute(QUIET)
        con.execute(f"ATTACH {_quote(str(dataset.catalog_path))} AS catalog (READ_ONLY)")
        con.execute("USE catalog")
    except BaseException:
        con.close()
        raise
    return con


def _points_at(con: Any, dataset: Dataset) -> bool:
    """Whether the catalog's views read the files of ``dataset`` where it now is."""
    here = _quote(str(dataset.root) + "/")[:-1]  # the opening quote, the path, no closing
    row = con.execute(
        "SELECT sql FROM duckdb_views() WHERE NOT internal AND view_name = 'events'"
    ).fetchone()
    return row is not None and here in row[0]


def _repoint(dataset: Dataset) -> None:
    try:
        with dataset.locked():
            refresh_catalog(dataset)
    except OSError as error:
        raise CatalogMovedError(str(dataset.root), str(error)) from error


def _confine(con: Any, dataset: Dataset) -> None:
    """From here on the connection reads the dataset's files and nothing else: ad hoc SQL
    cannot read other files (``read_text('/etc/shadow')``), write any (``COPY … TO``),
    install extensions or reach the network. It cannot be switched back on, and no other
    setting can be changed either (ad hoc SQL is refused before it runs anything but a
    query, see ``queries.check_ad_hoc``; this is the second line)."""
    # DuckDB adds its spill folder (.tmp under the working directory) to the allowed
    # ones: ad hoc SQL could read what is there. Audit queries do not spill.
    con.execute("SET temp_directory = ''")
    con.execute(f"SET allowed_directories = [{_quote(str(dataset.root) + '/')}]")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


def resolve_prices(dataset: Dataset, prices: Path | None) -> Path:
    """An explicit file, else the dataset's own prices.csv, else the packaged defaults."""
    if prices is not None:
        return prices
    own = dataset.root / PRICES_FILE_NAME
    if own.exists():
        return own
    return Path(str(resources.files("analytics").joinpath(DEFAULT_PRICES)))


def _prepare(con: Any) -> None:
    # Times print in UTC whatever the machine's zone, like the timestamps are stored.
    con.execute("SET TimeZone = 'UTC'")


def _view_statements(dataset: Dataset, sources: dict[str, str] | None = None) -> list[str]:
    """The statements of views.sql, each table read from its files (or as ``sources``
    says: a table name standing for the table)."""
    sources = sources or {}
    text = resources.files("analytics").joinpath("sql", "views.sql").read_text()
    for name in TABLES:
        text = text.replace(f"@{name}@", sources.get(name) or _source(dataset, name))
    return [s.strip() for s in text.split(";\n") if _has_sql(s)]


def _has_sql(statement: str) -> bool:
    return any(
        line.strip() and not line.strip().startswith("--") for line in statement.splitlines()
    )


# TODO(#7): the views read each table's files by glob, so a query during an ingest sees a
# finished batch's events (and derived rows) as soon as they are renamed into place, while
# the runs, generations and tool_calls snapshots change only with the new catalog at the
# end: counts across the two can disagree until the ingest ends. A list of files in the
# catalog would isolate readers; its cost at many thousand files is unmeasured.
def _source(dataset: Dataset, table: str) -> str:
    spec = TABLES[table]
    if not dataset.files(table):
        return f"read_parquet({_quote(str(_empty_file(dataset, table)))})"
    glob = _quote(dataset.table_glob(table))
    if spec.day_column is None:
        return f"read_parquet({glob}, union_by_name = true)"
    return (
        f"read_parquet({glob}, hive_partitioning = true, hive_types = {{'day': DATE}}, "
        "union_by_name = true)"
    )


def _empty_file(dataset: Dataset, table: str) -> Path:
    """A zero-row file with the table's schema, so views exist before any data does."""
    spec = TABLES[table]
    schema = spec.schema
    if spec.day_column is not None:
        schema = schema.append(pa.field("day", pa.date32()))
    path = dataset.state_dir / "empty" / f"{table}.parquet"
    if not path.exists():
        sink = pa.BufferOutputStream()
        pq.write_table(schema.empty_table(), sink)
        write_atomic(path, sink.getvalue().to_pybytes())
    return path


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _load_prices(con: Any, path: Path, *, temporary: bool) -> None:
    _create_prices(con, read_prices(path), temporary=temporary)


def _create_prices(con: Any, rows: list[Price], *, temporary: bool) -> None:
    kind = "TEMP TABLE" if temporary else "TABLE"
    con.execute(
        f"CREATE OR REPLACE {kind} prices (model VARCHAR, input_usd_per_mtok DOUBLE, "
        "output_usd_per_mtok DOUBLE, cached_input_usd_per_mtok DOUBLE)"
    )
    if rows:
        con.executemany("INSERT INTO prices VALUES (?, ?, ?, ?)", rows)
