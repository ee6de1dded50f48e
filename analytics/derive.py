"""Derive the tool-call, checkpoint, message, job and run-setting rows of one batch.

The work is SQL (the files in ``sql/derive/``) run by an in-memory DuckDB over the batch's
new events and documents, so JSON is taken apart in C++, not in Python.

Cost (#7, 200k synthetic events, one thread): about 0.85 s of CPU. DuckDB's JSON parser
(yyjson) is fast, about 1.5 GB/s; the time goes to what is built from it. docs.sql 0.30
(each checkpoint's json_transform, its free-form parts, the version hash: the struct as
text and md5, 0.08), messages.sql 0.30 (windows, unnest, the messages' text), tool
results 0.10 to 0.14, tool calls 0.05, checkpoints 0.03. The ingest runs this while the
events' Parquet files are written and the next batch is parsed.
"""

from __future__ import annotations

import logging
from importlib import resources

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from analytics.schemas import TABLES, ms_out_of_range

logger = logging.getLogger(__name__)

# Columns of the events table the derivations read (never the whole table).
_EVENT_COLUMNS = [
    "event_id",
    "type",
    "ts",
    "job_id",
    "run_id",
    "expert_key",
    "step_number",
    "checkpoint_id",
    "next_checkpoint_id",
    "user_name",
    "source_file",
    "raw",
]
# DuckDB draws a progress bar on stdout during long statements; stdout belongs to events.
QUIET = "SET enable_progress_bar = false"
DERIVED = ("tool_calls", "tool_results", "checkpoints", "messages", "jobs", "run_settings")


def sql_text(*parts: str) -> str:
    text = resources.files("analytics").joinpath("sql", *parts).read_text()
    if "@CHECKPOINT@" in text:
        struct = resources.files("analytics").joinpath("sql", "derive", "checkpoint_struct.json")
        text = text.replace("@CHECKPOINT@", " ".join(struct.read_text().split()))
    return text


def derive(
    events: pa.Table,
    docs: dict[str, pa.Table],
    threads: int | None = None,
    stored_messages: list[str] | None = None,
) -> dict[str, pa.Table]:
    """Rows for each derived table from new events and the ``{kind: (text, source_file,
    user_name)}`` documents of the batch; ``stored_messages``: the Parquet files of the
    messages already stored (none is taken out of a checkpoint again)."""
    con = duckdb.connect()
    try:
        con.execute(QUIET)
        if threads:
            con.execute(f"SET threads = {int(threads)}")
        if stored_messages:
            con.execute(
                "CREATE TEMP VIEW stored_messages AS SELECT message_id FROM "
                f"read_parquet({_sql_list(stored_messages)}, hive_partitioning = false)"
            )
        else:
            con.execute("CREATE TEMP TABLE stored_messages (message_id VARCHAR)")
        con.register("batch_events", _numbered(events.select(_EVENT_COLUMNS), "event_no"))
        for kind in ("checkpoint", "job", "run_setting"):
            con.register(f"batch_{kind}_files", _numbered(docs[kind], "file_no"))
        con.execute(sql_text("derive", "docs.sql"))
        out = {}
        for name in DERIVED:
            table = con.sql(sql_text("derive", f"{name}.sql")).to_arrow_table()
            schema = TABLES[name].schema
            out[name] = _null_bad_times(table.select(schema.names).cast(schema))
        return out
    finally:
        con.close()


def _null_bad_times(table: pa.Table) -> pa.Table:
    """Times of job and run-setting files outside the accepted range become null (the
    file's text keeps them): stored, DuckDB could not read them back."""
    for index, field in enumerate(table.schema):
        if not pa.types.is_timestamp(field.type):
            continue
        bad = ms_out_of_range(table.column(index))
        if pc.any(bad).as_py():
            null = pa.scalar(None, field.type)
            table = table.set_column(index, field.name, pc.if_else(bad, null, table[index]))
    return table


def _sql_list(texts: list[str]) -> str:
    return "[" + ", ".join("'" + t.replace("'", "''") + "'" for t in texts) + "]"


def _numbered(table: pa.Table, name: str) -> pa.Table:
    """The table with its row numbers: the order in which checkpoints were seen."""
    return table.append_column(name, pa.array(range(table.num_rows), pa.int64()))


# TODO(#7): a mistyped field of a job.json, run-setting.json or checkpoint file (e.g.
# "totalSteps": "many", "stepNumber": "x") is left null with no quarantine note, and the
# jobs, run_settings and checkpoints tables keep no raw copy: only the workspace's file
# still has the value. Events get both (a note naming the field, and raw).
def doc_table(rows: list[tuple[str, str]], user: str | None) -> pa.Table:
    """(source_file, text) pairs as the table the derivations read."""
    return pa.table(
        {
            "text": pa.array([text for _, text in rows], pa.large_string()),
            "source_file": pa.array([source for source, _ in rows], pa.string()),
            "user_name": pa.array([user] * len(rows), pa.string()),
        }
    )
