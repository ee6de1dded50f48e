"""Ingest event streams and workspace folders into the dataset: the one entry point.

Order matters for "nothing lost, nothing doubled": within a batch the runs and tool
calls it touches are recorded (for the snapshots) before any of its files is renamed into
place, the derived tables are written before the events they come from, and a file is
recorded as ingested only after all of its rows are on disk. A crash therefore leaves at
worst rows that the next ingest recognises by key and skips, with their snapshot rows
still due to be recomputed (tests/analytics/test_crash.py kills an ingest before each of
its renames in turn).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from collections.abc import Generator, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from analytics.catalog import read_prices, refresh_catalog, resolve_prices
from analytics.dataset import (
    Dataset,
    Touched,
    commit,
    discard,
    key_array,
    load_touched,
    new_batch_id,
    save_touched,
)
from analytics.derive import DERIVED, derive, doc_table
from analytics.duplicates import split_conflicts
from analytics.schemas import CALL_KEY, QUARANTINE, TABLES, TS_RANGE, ms_out_of_range
from analytics.sources import DEFAULT_CHUNK_BYTES, Batch, Quarantined, discover, read_batches
from analytics.upgrade import upgrade

logger = logging.getLogger(__name__)

# DuckDB threads of the derivations; None: DuckDB's default, one per core (see _write_batch).
_DERIVE_THREADS: int | None = None


@dataclass
class IngestReport:
    """What an ingest did: files read and skipped, rows written per table."""

    files_read: int = 0
    files_skipped: int = 0
    bytes_read: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    # "path: why" for each file passed over (also in quarantine as line 0).
    skipped: list[str] = field(default_factory=list)
    # What else a person should know: an upgrade of the dataset's format, say.
    notes: list[str] = field(default_factory=list)

    def add(self, table: str, count: int) -> None:
        self.rows[table] = self.rows.get(table, 0) + count


def ingest(
    paths: Iterable[Path | str],
    root: Path | str,
    *,
    user: str | None = None,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    refresh: bool = True,
) -> IngestReport:
    """Ingest files and folders into the dataset at ``root``; unchanged files are skipped."""
    started = time.perf_counter()
    dataset = Dataset(root)
    dataset.check_path()
    if refresh:
        # A prices file the catalog cannot load would fail the ingest after its rows were
        # written, leaving the summaries behind them: refuse before writing anything.
        read_prices(resolve_prices(dataset, None))
    report = IngestReport()
    found = discover(Path(p) for p in paths)
    sources = found.sources
    report.skipped = [f"{s.path}: {s.reason}" for s in found.skipped]
    with dataset.locked():
        dataset.remove_leftovers()
        report.notes = upgrade(dataset)
        seen = dataset.load_seen_files()
        touched = load_touched(dataset)
        if report.notes:
            # Rows were re-keyed or rebuilt: every snapshot is recomputed.
            touched.full = True
            save_touched(dataset, touched)
        todo = [s for s in sources if seen.get(str(s.path)) != s.fingerprint]
        report.files_skipped = len(sources) - len(todo)
        with contextlib.closing(_read_ahead(read_batches(todo, chunk_bytes))) as batches:
            for batch in batches:
                _write_batch(dataset, batch, user, report, touched)
                # Only now, with every row of these files on disk, are they ingested.
                for source in batch.finished:
                    seen[str(source.path)] = source.fingerprint
                report.files_read += len(batch.finished)
                report.bytes_read += batch.bytes_read
                dataset.save_seen_files(seen)
                report.skipped += [
                    f"{q.source_file}: {q.reason}" for q in batch.quarantined if q.line_number == 0
                ]
        if any(s.quarantine for s in found.skipped):
            lines = [s.quarantined() for s in found.skipped if s.quarantine]
            quarantine = Batch(quarantined=lines)
            _write_batch(dataset, quarantine, user, report, touched)
        if refresh:
            refresh_catalog(dataset, touched=touched)  # and clears what was touched
    report.seconds = time.perf_counter() - started
    logger.info(
        "ingested %d files (%d unchanged skipped) in %.2fs: %s",
        report.files_read,
        report.files_skipped,
        report.seconds,
        report.rows,
    )
    return report


def _read_ahead(batches: Generator[Batch, None, None]) -> Generator[Batch, None, None]:
    """The batches, the next one read and parsed while the caller writes the current one.

    Parsing is mostly Arrow and writing mostly DuckDB and Parquet; both release the GIL,
    and neither keeps two cores busy all the time, so overlapping them shortens an ingest.
    """
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        pending = pool.submit(next, batches, None)
        while (batch := pending.result()) is not None:
            pending = pool.submit(next, batches, None)
            yield batch
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        batches.close()


# TODO(#7): ingestion of 1M events measures about 1.8x to 2.2x pyarrow.json.read_json of
# the same bytes (goal 1.5x; medians, 2 cores). It is CPU-bound: about 18 s of CPU (user
# and system) against the reader's 12 to 13, so even with both cores busy all along it
# would not reach 1.5x. Per 256 MB batch (283k events), in seconds of CPU:
# - parse_jsonl 1.4 to 2: Arrow's reader with our schema 1.2 to 1.5 (it grows with the
#   column count: every column appends a null to every row lacking it), lines 0.15;
# - derive 1.2 on one thread (see derive.py);
# - the events' Parquet files about 1 (raw compressed is a third of it), the derived
#   tables and the key look-ups 0.6; once per ingest, catalog and snapshots 0.7 to 0.9;
# - fresh memory: a first touch costs about 2.4 ms per MB on these machines (page zeroing
#   is 15% of the ingest's samples), paid by the reader too; the main run-to-run noise.
# Tried and not kept: checkpoint fields in Arrow's read schema (every added column costs
# every row, ~35 columns cost what json_transform does, and Arrow's strict types would
# drop checkpoints json_transform reads, e.g. "stepNumber": "3"); skipping json_extract
# of the parts where raw lacks their keys (the exact test, \u escapes included, costs
# more than the extraction); parts as JSON fields of the one json_transform (a JSON null
# becomes NULL, not 'null'); a cheaper version hash (it would change the key of every
# stored checkpoint version); other allocators (jemalloc with decay off, mimalloc without
# purging: no gain); other JSON block sizes (1 to 32 MB, same CPU); derived tables written
# two at a time (no gain measured). What would close the gap: one parse of each line,
# e.g. DuckDB's reader (yyjson parses 1.5 GB/s per core, Arrow's reader about 0.2) if it
# can reproduce which lines Arrow's strict types keep, keep with common columns or
# quarantine; raw as string_view over the read buffer (no copy at the split).
# TODO(#7): one ingest of a single run into ten million events takes about 2.2 to 2.5 s:
# the key look-ups read the key columns of every file (0.15 s a table), the rows of the
# runs of the touched jobs are found and recomputed (1 s, half of it reading their events
# out of all the files) and the catalog's views are created again (0.45 s).
def _write_batch(
    dataset: Dataset, batch: Batch, user: str | None, report: IngestReport, touched: Touched
) -> None:
    """Write one batch, first adding the runs and tool calls it touches to ``touched``.

    ``touched`` is saved before any file of the batch is renamed into place: a crash after
    that leaves rows the next ingest recognises by key and skips, so it would not touch
    them again, and their snapshot rows would stay stale for good. Saved first, at worst
    a snapshot row is recomputed for nothing.
    """
    batch_id = new_batch_id()
    now = pa.scalar(int(time.time() * 1000), pa.int64()).cast(
        TABLES["events"].schema.field("ts").type
    )
    events = _with_provenance(batch.events_table(), user, now)
    events, invalid = _split_invalid(events)
    events, conflicting, stored = split_conflicts(dataset, events)
    quarantined = batch.quarantined + invalid + conflicting
    new_events = dataset.new_rows(TABLES["events"], events, stored=stored)
    docs = {
        kind: doc_table(batch.docs.get(kind, []), user)
        for kind in ("checkpoint", "job", "run_setting")
    }
    # The events' files are compressed while DuckDB derives the other tables, and renamed
    # into place only after those are written. The next batch is parsed meanwhile too (see
    # _read_ahead). The derivations are the longest of the three: on two threads DuckDB
    # spends more CPU than on one (200k events alone: 1.19 s against 1.03) but takes the
    # core the others leave idle, and 1M events ingest faster (10.7 s against 11.4,
    # medians of three, 2 cores; #7).
    with ThreadPoolExecutor(max_workers=1) as pool:
        staging = pool.submit(dataset.stage, TABLES["events"], new_events, batch_id)
        try:
            stored_messages = [str(f) for f in dataset.files("messages")]
            derived = derive(new_events, docs, _DERIVE_THREADS, stored_messages)
            touched.add(*_touched_by(new_events, derived))
            save_touched(dataset, touched)
            for name in DERIVED:
                report.add(name, dataset.append(TABLES[name], derived[name], batch_id))
            quarantine = _quarantine_table(quarantined, user, now)
            report.add("quarantine", dataset.append(TABLES["quarantine"], quarantine, batch_id))
        except BaseException:
            discard(staging.result())
            raise
        commit(staging.result())
    report.add("events", new_events.num_rows)


def _touched_by(
    events: pa.Table, derived: dict[str, pa.Table]
) -> tuple[list[str], list[str], list[str]]:
    """The run ids, tool-call keys and job ids whose snapshot rows new rows change."""
    run_ids = [events.column("run_id"), derived["run_settings"].column("run_id")]
    ids = [key_array(derived[t], CALL_KEY) for t in ("tool_calls", "tool_results")]
    jobs = [events.column("job_id"), derived["run_settings"].column("job_id")]
    jobs += [derived[t].column("job_id") for t in ("tool_calls", "tool_results")]
    return _unique(run_ids), _unique(ids), _unique(jobs)


def _unique(columns: list[pa.Array | pa.ChunkedArray]) -> list[str]:
    # Chunks, not the columns themselves: pa.chunked_array converts a ChunkedArray item
    # through Python objects (0.08 s per 200k events).
    chunks = [c for column in columns for c in getattr(column, "chunks", [column])]
    unique: list[str] = pc.unique(pa.chunked_array(chunks, pa.string())).to_pylist()
    return unique


def _with_provenance(table: pa.Table, user: str | None, now: pa.Scalar) -> pa.Table:
    rows = table.num_rows
    table = table.append_column("user_name", pa.repeat(pa.scalar(user, pa.string()), rows))
    return table.append_column("ingested_at", pa.repeat(now, rows))


_REQUIRED = (("event_id", "id"), ("type", "type"), ("ts", "timestamp"))
# Other times an event carries: out of range, the column is left null (raw keeps them).
_OTHER_TIMES = (("step_started_at", "step.startedAt"), ("step_finished_at", "step.finishedAt"))


def _split_invalid(events: pa.Table) -> tuple[pa.Table, list[Quarantined]]:
    """Events without an id, type or a timestamp in range cannot be keyed or placed; other
    times out of range are left null, with a note."""
    events, notes = _null_bad_times(events)
    missing = None
    for column, _ in _REQUIRED:
        null = pc.is_null(events.column(column))
        missing = null if missing is None else pc.or_(missing, null)
    bad_ts = ms_out_of_range(events.column("ts"))
    invalid = bad_ts if missing is None else pc.or_(missing, bad_ts)
    if not pc.any(invalid).as_py():
        return events, notes
    bad = events.filter(invalid)
    # As integers: an out-of-range time has no Python datetime.
    bad = bad.set_column(bad.schema.get_field_index("ts"), "ts", bad.column("ts").cast(pa.int64()))
    quarantined = []
    for row in bad.select(
        ["source_file", "source_line", "raw", "event_id", "type", "ts"]
    ).to_pylist():
        absent = [field for column, field in _REQUIRED if row[column] is None]
        reason = (
            f"event has no {' and no '.join(absent)}"
            if absent
            else f"timestamp out of range ({TS_RANGE})"
        )
        quarantined.append(Quarantined(row["source_file"], row["source_line"], reason, row["raw"]))
    return events.filter(pc.invert(invalid)), notes + quarantined


def _null_bad_times(events: pa.Table) -> tuple[pa.Table, list[Quarantined]]:
    masks = {column: ms_out_of_range(events.column(column)) for column, _ in _OTHER_TIMES}
    any_bad = None
    for mask in masks.values():
        any_bad = mask if any_bad is None else pc.or_(any_bad, mask)
    if any_bad is None or not pc.any(any_bad).as_py():
        return events, []
    rows = events.filter(any_bad).select(["source_file", "source_line", "raw"]).to_pylist()
    flags = {column: mask.filter(any_bad).to_pylist() for column, mask in masks.items()}
    notes = []
    for i, row in enumerate(rows):
        fields = " and ".join(field for column, field in _OTHER_TIMES if flags[column][i])
        reason = f"kept with {fields} left null: out of range ({TS_RANGE})"
        notes.append(Quarantined(row["source_file"], row["source_line"], reason, row["raw"]))
    for column, mask in masks.items():
        null = pa.scalar(None, events.schema.field(column).type)
        index = events.schema.get_field_index(column)
        events = events.set_column(index, column, pc.if_else(mask, null, events[column]))
    return events, notes


def _quarantine_table(rows: list[Quarantined], user: str | None, now: pa.Scalar) -> pa.Table:
    return pa.table(
        {
            "source_file": [r.source_file for r in rows],
            "line_number": pa.array([r.line_number for r in rows], pa.int64()),
            "reason": pa.array([r.reason for r in rows], pa.large_string()),
            "raw_hash": [hashlib.sha256(r.raw.encode(errors="replace")).hexdigest() for r in rows],
            "raw": pa.array([r.raw for r in rows], pa.large_string()),
            "ingested_at": pa.repeat(now, len(rows)),
            "user_name": pa.repeat(pa.scalar(user, pa.string()), len(rows)),
        },
        schema=QUARANTINE,
    )
