"""Events seen twice: the same event again is dropped quietly, another one under the same
id is quarantined.

The same event reaches an ingest from stdout and from the workspace's event file, or from
a stream read again after it grew; those copies are one event. Two events with one id and
different content are not: keeping the first silently would hide the second, so it goes
to quarantine naming the id. Copies compare by their JSON value, not their bytes (an
event file may be pretty-printed), and an event file whose history was left to a
checkpoint (``elidedMessages``, see runtime.histories) matches the whole event.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from analytics.dataset import Dataset
from analytics.derive import QUIET
from analytics.schemas import TABLES
from analytics.sources import Quarantined

logger = logging.getLogger(__name__)

# Where an event holds a history that its event file may leave to a checkpoint file.
_HISTORY_HOLDERS = ("checkpoint", "nextCheckpoint", "initialCheckpoint")


def split_conflicts(
    dataset: Dataset, events: pa.Table
) -> tuple[pa.Table, list[Quarantined], pa.Array]:
    """The events without the conflicting copies, those copies as quarantine rows, and the
    ids of the batch already stored (so that the caller need not look them up again)."""
    spec = TABLES["events"]
    conflicts: dict[int, str] = {}
    ids = events.column("event_id")
    stored = dataset.existing_keys(spec, ids.combine_chunks().cast(pa.string()))
    if len(stored):
        # Every copy of a stored id is held against the stored event, not against the
        # batch's first copy: that one may be the copy that differs.
        conflicts |= _against_stored(dataset, events, stored)
    if pc.count_distinct(ids, mode="all").as_py() != events.num_rows:
        conflicts |= _within(events, stored)
    if not conflicts:
        return events, [], stored
    rows = sorted(conflicts)
    picked = events.take(pa.array(rows, pa.int64()))
    quarantined = [
        Quarantined(row["source_file"], row["source_line"], conflicts[i], row["raw"])
        for i, row in zip(
            rows, picked.select(["source_file", "source_line", "raw"]).to_pylist(), strict=True
        )
    ]
    keep = pc.invert(pc.is_in(pa.array(range(events.num_rows)), value_set=pa.array(rows)))
    logger.warning("%d event(s) reuse an id with other content; quarantined", len(rows))
    return events.filter(keep), quarantined, stored


def _within(events: pa.Table, stored: pa.Array) -> dict[int, str]:
    """Copies within the batch that differ from the first copy of their id (ids not
    stored yet; the others are held against the stored event)."""
    counts = pc.value_counts(events.column("event_id"))
    repeated = counts.filter(pc.greater(counts.field("counts"), 1)).field("values")
    repeated = repeated.filter(pc.invert(pc.is_in(repeated, value_set=stored)))
    mask = pc.is_in(events.column("event_id"), value_set=repeated)
    indices = pc.indices_nonzero(mask).to_pylist()
    rows = events.filter(mask).select(["event_id", "raw", "source_file", "source_line"])
    first: dict[str, tuple[str, str, int]] = {}
    conflicts = {}
    for index, row in zip(indices, rows.to_pylist(), strict=True):
        event_id, raw = row["event_id"], row["raw"]
        if event_id not in first:
            first[event_id] = (raw, row["source_file"], row["source_line"])
            continue
        first_raw, source, line = first[event_id]
        if not same_event(first_raw, raw):
            conflicts[index] = (
                f"duplicate event id {event_id!r} with other content than its first copy "
                f"({source} line {line}); this copy was not ingested"
            )
    return conflicts


def _against_stored(dataset: Dataset, events: pa.Table, stored: pa.Array) -> dict[int, str]:
    """Rows of the batch whose id is stored with other content."""
    mask = pc.is_in(events.column("event_id"), value_set=stored)
    indices = pa.array(pc.indices_nonzero(mask).to_pylist(), pa.int64())
    batch = pa.table(
        {
            "i": indices,
            "k": events.column("event_id").take(indices),
            "raw": events.column("raw").take(indices),
        }
    )
    files = [str(p) for p in dataset.files("events")]
    con = duckdb.connect()
    try:
        con.execute(QUIET)
        con.register("batch", batch)
        # Bytes first (md5 in DuckDB, the raw never leaves it); only the few rows whose
        # bytes differ are compared as JSON.
        differing = con.sql(
            "SELECT b.i, b.k, b.raw, s.raw AS stored_raw FROM batch AS b JOIN ("
            "SELECT event_id AS k, raw FROM read_parquet($files, hive_partitioning = false) "
            "WHERE event_id IN (SELECT k FROM batch)) AS s USING (k) "
            "WHERE md5(b.raw) <> md5(s.raw)",
            params={"files": files},
        ).fetchall()
    finally:
        con.close()
    conflicts = {}
    for index, event_id, raw, stored_raw in differing:
        if index not in conflicts and not same_event(stored_raw, raw):
            conflicts[index] = (
                f"duplicate event id {event_id!r} with other content than the event already "
                "stored under that id; this copy was not ingested"
            )
    return conflicts


def same_event(a: str, b: str) -> bool:
    """True when two raw lines hold the same event."""
    if a == b:
        return True
    try:
        left, right = json.loads(a), json.loads(b)
    except (ValueError, RecursionError):
        return False
    if not (isinstance(left, dict) and isinstance(right, dict)):
        return bool(left == right)
    _drop_elided_histories(left, right)
    return bool(left == right)


def _drop_elided_histories(left: dict[str, Any], right: dict[str, Any]) -> None:
    """Where either side left its history to a checkpoint, compare without histories."""
    holders: list[tuple[Any, Any]] = [(left, right)]
    holders += [(left.get(k), right.get(k)) for k in _HISTORY_HOLDERS]
    for one, other in holders:
        if not (isinstance(one, dict) and isinstance(other, dict)):
            continue
        if "elidedMessages" in one or "elidedMessages" in other:
            for side in (one, other):
                side.pop("elidedMessages", None)
                side.pop("messages", None)
