"""The dataset's format version, and the upgrade of datasets written in an older one.

``_state/format.json`` holds ``{"format": N}``. A dataset without it but with data was
written before the file existed: format 1. Each upgrade is safe to interrupt: the version
is written last, and every step can run again over what an interrupted run left.

Formats: 1, tool calls keyed by ``tool_call_id`` alone (a second job's call with the same
id was dropped as a duplicate); 2, keyed by ``(job_id, tool_call_id)``; 3, the snapshots'
token sums are BIGINT (they were DOUBLE: DuckDB's HUGEINT sums, as Parquet stores them);
4, each snapshot is a folder of parts (``summaries/runs/part-0.parquet`` …) instead of one
file (``summaries/runs.parquet``), so that an ingest rewrites only the parts it touched.
"""

from __future__ import annotations

import json
import logging

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from analytics.dataset import Dataset, commit, drop_duplicate_keys, new_batch_id, write_atomic
from analytics.derive import QUIET, sql_text
from analytics.errors import DatasetFormatError
from analytics.schemas import TABLES

logger = logging.getLogger(__name__)

FORMAT = 4
# The snapshot files of formats 1 to 3, under summaries/.
OLD_SNAPSHOTS = ("runs.parquet", "generations.parquet", "tool_calls.parquet")
_CALL_EVENTS = ("callTools", "callDelegate", "callInteractiveTool")
_EVENT_COLUMNS = "event_id, type, ts, job_id, run_id, expert_key, step_number, user_name, raw"


def stored_format(dataset: Dataset) -> int:
    """The dataset's format: its format file, else 1 when it holds data, else current."""
    path = dataset.state_dir / "format.json"
    if path.exists():
        try:
            found = json.loads(path.read_text()).get("format")
        except (ValueError, AttributeError) as error:
            raise DatasetFormatError(str(path), f"unreadable ({error})") from error
        if not isinstance(found, int) or isinstance(found, bool) or found < 1:
            raise DatasetFormatError(str(path), f"format {found!r} is not a version number")
        return found
    has_data = dataset.catalog_path.exists() or any(dataset.files(name) for name in TABLES)
    return 1 if has_data else FORMAT


def check_readable(dataset: Dataset) -> int:
    """The stored format; DatasetFormatError when this code is too old to read it."""
    found = stored_format(dataset)
    if found > FORMAT:
        raise DatasetFormatError(
            str(dataset.state_dir / "format.json"),
            f"the dataset is in format {found}, and this perstack-audit knows up to "
            f"{FORMAT}; use a newer perstack-audit",
        )
    return found


def upgrade(dataset: Dataset) -> list[str]:
    """Bring the dataset to the current format (hold its lock); a note per upgrade done.
    After any note the caller recomputes every snapshot."""
    found = check_readable(dataset)
    notes = []
    if found < 2:
        before, after = _rekey_tool_calls(dataset)
        notes.append(
            f"{dataset.root}: upgraded the dataset from format {found} to 2: tool_calls are "
            "now keyed by (job_id, tool_call_id) and were rebuilt from the stored events "
            f"({before} row{'s' if before != 1 else ''} before, {after} now)"
        )
    if found < 3:
        # Nothing to rewrite here: the ingest recomputes every snapshot after a note.
        notes.append(
            f"{dataset.root}: upgraded the dataset from format {max(found, 2)} to 3: the "
            "runs, generations and tool_calls snapshots are recomputed (token sums as "
            "BIGINT)"
        )
    if found < 4:
        # The parts are written by the recompute that follows any note; the old files
        # serve the old catalog's readers until the new catalog is in place (catalog.py
        # removes them then, see OLD_SNAPSHOTS).
        notes.append(
            f"{dataset.root}: upgraded the dataset from format {max(found, 3)} to 4: the "
            "runs, generations and tool_calls snapshots are split into parts by run or job, "
            "so that an ingest rewrites only the parts it touches"
        )
    if found != FORMAT or not (dataset.state_dir / "format.json").exists():
        write_atomic(dataset.state_dir / "format.json", json.dumps({"format": FORMAT}).encode())
    for note in notes:  # info: the caller shows the notes (the CLI prints each once)
        logger.info("%s", note)
    return notes


def _rekey_tool_calls(dataset: Dataset) -> tuple[int, int]:
    """Rewrite tool_calls under the new key: the stored rows plus those derived again from
    the stored call events (the calls format 1 dropped), each call once."""
    spec = TABLES["tool_calls"]
    old_files = dataset.files("tool_calls")
    old = (
        pq.read_table([str(f) for f in old_files], partitioning=None)
        if old_files
        else spec.schema.empty_table()
    )
    rebuilt = pa.concat_tables(
        [old.select(spec.schema.names).cast(spec.schema), _calls_from_events(dataset)]
    )
    rows = drop_duplicate_keys(rebuilt, spec.key)
    # New files in place first, then the old ones go: an interruption in between leaves
    # both, and the next upgrade (the version is not written yet) keeps each call once.
    commit(dataset.stage(spec, rows, new_batch_id()))
    for file in old_files:
        file.unlink()
    return int(old.num_rows), int(rows.num_rows)


def _calls_from_events(dataset: Dataset) -> pa.Table:
    spec = TABLES["tool_calls"]
    files = [str(f) for f in dataset.files("events")]
    if not files:
        return spec.schema.empty_table()
    con = duckdb.connect()
    try:
        con.execute(QUIET)
        types = ", ".join(f"'{t}'" for t in _CALL_EVENTS)
        events = con.sql(
            f"SELECT {_EVENT_COLUMNS} FROM read_parquet($files, hive_partitioning = false, "
            f"union_by_name = true) WHERE type IN ({types})",
            params={"files": files},
        ).to_arrow_table()
        con.register("batch_events", events)
        table = con.sql(sql_text("derive", "tool_calls.sql")).to_arrow_table()
    finally:
        con.close()
    return table.select(spec.schema.names).cast(spec.schema)
