"""Tool calls are keyed within their job, and datasets of the older format are upgraded."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from analytics import Dataset, ingest

from .runs import RunBuilder, write_jsonl

Query = Callable[..., list[dict[str, Any]]]


def same_call_ids_in_two_jobs() -> list[dict[str, Any]]:
    """The scripted provider numbers tool calls from 1 in every job: ids repeat across jobs."""
    events = []
    for job, (duration, error) in (("ja", (30, False)), ("jb", (70, True))):
        builder = RunBuilder(job=job, run=f"{job}-run").start()
        builder.tool_step(1, [("@perstack/base", "exec", duration, error)])
        builder.complete(2)
        for event in builder.events:
            for call in event.get("toolCalls", []) + event.get("toolResults", []):
                call["id"] = "toolu_1"
        events += builder.events
    return events


def test_a_tool_call_id_repeated_in_another_job_is_another_call(
    tmp_path: Path, data_dir: Path, query: Query
) -> None:
    ingest([write_jsonl(tmp_path / "a.jsonl", same_call_ids_in_two_jobs())], data_dir)
    rows = query("SELECT job_id, tool_call_id, outcome, duration_ms FROM tool_calls ORDER BY 1")
    assert rows == [
        {"job_id": "ja", "tool_call_id": "toolu_1", "outcome": "ok", "duration_ms": 30},
        {"job_id": "jb", "tool_call_id": "toolu_1", "outcome": "error", "duration_ms": 70},
    ]
    live = query("SELECT job_id, outcome, duration_ms FROM tool_calls_live ORDER BY 1")
    assert [(r["job_id"], r["outcome"], r["duration_ms"]) for r in live] == [
        ("ja", "ok", 30),
        ("jb", "error", 70),
    ]
    format_file = data_dir / "_state" / "format.json"
    assert json.loads(format_file.read_text()) == {"format": 4}


def test_a_dataset_of_the_older_format_is_upgraded_without_losing_a_row(
    tmp_path: Path, data_dir: Path, query: Query
) -> None:
    stream = write_jsonl(tmp_path / "a.jsonl", same_call_ids_in_two_jobs())
    ingest([stream], data_dir)
    # Make it what format 1 wrote: no format file, tool calls keyed by their id alone (the
    # second job's call was dropped as a duplicate), views and snapshot built that way.
    dataset = Dataset(data_dir)
    (data_dir / "_state" / "format.json").unlink()
    snapshot = sorted((data_dir / "summaries" / "tool_calls").glob("part-*.parquet"))
    for file in [*dataset.files("tool_calls"), *snapshot]:
        table = pq.read_table(file, partitioning=None)
        pq.write_table(table.filter(pc.equal(table.column("job_id"), "ja")), file)
    assert [r["job_id"] for r in query("SELECT job_id FROM tool_calls")] == ["ja"]

    report = ingest([], data_dir)
    assert report.notes == [
        f"{dataset.root}: upgraded the dataset from format 1 to 2: tool_calls are now "
        "keyed by (job_id, tool_call_id) and were rebuilt from the stored events "
        "(1 row before, 2 now)",
        f"{dataset.root}: upgraded the dataset from format 2 to 3: the runs, generations "
        "and tool_calls snapshots are recomputed (token sums as BIGINT)",
        f"{dataset.root}: upgraded the dataset from format 3 to 4: the runs, generations "
        "and tool_calls snapshots are split into parts by run or job, so that an ingest "
        "rewrites only the parts it touches",
    ]
    rows = query("SELECT job_id, outcome FROM tool_calls ORDER BY job_id")
    assert rows == [{"job_id": "ja", "outcome": "ok"}, {"job_id": "jb", "outcome": "error"}]
    assert json.loads((data_dir / "_state" / "format.json").read_text()) == {"format": 4}
    assert ingest([], data_dir).notes == []
    assert not [p for p in data_dir.rglob("*") if p.name.endswith(".tmp")]


def test_a_dataset_of_a_newer_format_is_left_alone(tmp_path: Path, data_dir: Path) -> None:
    import pytest

    from analytics.errors import DatasetFormatError

    ingest([write_jsonl(tmp_path / "a.jsonl", same_call_ids_in_two_jobs())], data_dir)
    (data_dir / "_state" / "format.json").write_text('{"format": 99}')
    before = sorted(str(p) for p in data_dir.rglob("*"))
    with pytest.raises(DatasetFormatError, match="format 99.*this perstack-audit knows up to 4"):
        ingest([write_jsonl(tmp_path / "b.jsonl", [])], data_dir)
    assert sorted(str(p) for p in data_dir.rglob("*")) == before


def test_snapshots_of_format_2_with_double_token_sums_are_recomputed(
    tmp_path: Path, data_dir: Path, query: Query
) -> None:
    ingest([write_jsonl(tmp_path / "a.jsonl", same_call_ids_in_two_jobs())], data_dir)
    for part in (data_dir / "summaries" / "runs").glob("part-*.parquet"):
        table = pq.read_table(part)
        index = table.schema.get_field_index("total_tokens")
        as_double = table.column(index).cast("double")
        pq.write_table(table.set_column(index, "total_tokens", as_double), part)
    (data_dir / "_state" / "format.json").write_text('{"format": 2}')
    report = ingest([], data_dir)
    assert len(report.notes) == 2 and "from format 2 to 3" in report.notes[0]
    assert query("SELECT DISTINCT typeof(total_tokens) AS t FROM runs") == [{"t": "BIGINT"}]


def test_snapshots_of_format_3_in_one_file_each_are_split_into_parts(
    tmp_path: Path, data_dir: Path, query: Query
) -> None:
    ingest([write_jsonl(tmp_path / "a.jsonl", same_call_ids_in_two_jobs())], data_dir)
    before = query("SELECT run_id, total_tokens FROM runs ORDER BY run_id")
    # What format 3 wrote: one file per snapshot, the catalog's views reading it.
    summaries = data_dir / "summaries"
    con = duckdb.connect(str(data_dir / "catalog.duckdb"))
    try:
        for name in ("runs", "generations", "tool_calls"):
            parts = sorted((summaries / name).glob("part-*.parquet"))
            pq.write_table(
                pa.concat_tables([pq.read_table(p) for p in parts], promote_options="permissive"),
                summaries / f"{name}.parquet",
            )
            shutil.rmtree(summaries / name)
            source = str(summaries / f"{name}.parquet").replace("'", "''")
            con.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM read_parquet('{source}')")
    finally:
        con.close()
    (data_dir / "_state" / "format.json").write_text('{"format": 3}')
    assert query("SELECT run_id, total_tokens FROM runs ORDER BY run_id") == before

    # Upgraded by an ingest that leaves the catalog as it is: the old catalog still reads
    # the old files (an upgrade that removed them first failed every query until later).
    report = ingest([], data_dir, refresh=False)
    assert len(report.notes) == 1 and "from format 3 to 4" in report.notes[0]
    assert query("SELECT run_id, total_tokens FROM runs ORDER BY run_id") == before

    assert ingest([], data_dir).notes == []
    assert sorted(p.name for p in summaries.iterdir()) == ["generations", "runs", "tool_calls"]
    assert len(list((summaries / "runs").glob("part-*.parquet"))) == 16
    assert query("SELECT run_id, total_tokens FROM runs ORDER BY run_id") == before
