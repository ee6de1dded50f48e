"""Ingestion rules on handmade inputs, checked through the real DuckDB catalog file."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from analytics import Dataset, ingest

from .runs import RunBuilder, write_jsonl

Query = Callable[..., list[dict[str, Any]]]


def one_run(run: str = "r1", job: str = "j1") -> RunBuilder:
    builder = RunBuilder(job=job, run=run).start()
    builder.tool_step(1, [("@perstack/base", "readTextFile", 30, False)])
    builder.complete(2)
    return builder


def test_null_in_every_row_of_one_file_and_text_in_another_is_one_column(
    tmp_path: Path, data_dir: Path, query: Query
) -> None:
    nulls = [
        {"type": "streamRunResult", "id": f"n{i}", "timestamp": 1, "text": None} for i in range(3)
    ]
    texts = [
        {"type": "streamRunResult", "id": f"t{i}", "timestamp": 2, "text": f"hi {i}"}
        for i in range(3)
    ]
    ingest([write_jsonl(tmp_path / "a.jsonl", nulls)], data_dir)
    ingest([write_jsonl(tmp_path / "b.jsonl", texts)], data_dir)
    rows = query("SELECT event_id, text, typeof(text) AS t FROM events ORDER BY event_id")
    assert [r["text"] for r in rows] == [None, None, None, "hi 0", "hi 1", "hi 2"]
    assert {r["t"] for r in rows} == {"VARCHAR"}


def test_timestamp_reads_back_exact_from_parquet_and_duckdb(
    tmp_path: Path, data_dir: Path, query: Query
) -> None:
    event = {"type": "startRun", "id": "e1", "timestamp": 1700000000123}
    ingest([write_jsonl(tmp_path / "a.jsonl", [event])], data_dir)
    rows = query(
        "SELECT strftime(ts, '%Y-%m-%dT%H:%M:%S.%gZ') AS iso, epoch_ms(ts) AS ms, day FROM events"
    )
    assert rows == [{"iso": "2023-11-14T22:13:20.123Z", "ms": 1700000000123, "day": rows[0]["day"]}]
    assert str(rows[0]["day"]) == "2023-11-14"
    (file,) = Dataset(data_dir).files("events")
    assert file.parent.name == "day=2023-11-14"
    assert pq.read_table(file).column("ts")[0].value == 1700000000123


def test_unknown_event_type_is_kept_raw(tmp_path: Path, data_dir: Path, query: Query) -> None:
    event = {"type": "brandNewEvent", "id": "x1", "timestamp": 5, "jobId": "j", "payload": [1]}
    ingest([write_jsonl(tmp_path / "a.jsonl", [event])], data_dir)
    (row,) = query("SELECT type, raw FROM events")
    assert row["type"] == "brandNewEvent"
    assert json.loads(row["raw"]) == event


def test_malformed_and_truncated_lines_go_to_quarantine_with_file_and_line(
    tmp_path: Path, data_dir: Path, query: Query
) -> None:
    events = one_run().events
    path = write_jsonl(tmp_path / "stdout.jsonl", events[:3], extra='not json\n{"type": "cal')
    ingest([path], data_dir)
    rows = query(
        "SELECT source_file, line_number, reason, raw FROM quarantine ORDER BY line_number"
    )
    assert [(r["source_file"], r["line_number"]) for r in rows] == [(str(path), 4), (str(path), 5)]
    assert rows[1]["raw"] == '{"type": "cal'
    assert query("SELECT count(*) AS n FROM events") == [{"n": 3}]


def test_event_without_an_id_is_quarantined(tmp_path: Path, data_dir: Path, query: Query) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", [{"type": "startRun", "timestamp": 1}])
    ingest([path], data_dir)
    assert query("SELECT line_number, reason FROM quarantine") == [
        {"line_number": 1, "reason": "event has no id"}
    ]


def test_ingesting_the_same_files_again_adds_nothing(
    tmp_path: Path, data_dir: Path, query: Query
) -> None:
    path = write_jsonl(tmp_path / "stdout.jsonl", one_run().events, extra="broken\n")
    first = ingest([path], data_dir)
    counts = query(
        "SELECT (SELECT count(*) FROM events) e, (SELECT count(*) FROM tool_calls) t, "
        "(SELECT count(*) FROM messages) m, (SELECT count(*) FROM quarantine) q, "
        "(SELECT count(*) FROM checkpoint_versions) c"
    )
    assert first.rows["events"] == counts[0]["e"] > 0
    os.utime(path, ns=(1, 1))  # looks changed: read again, every row recognised by key
    again = ingest([path], data_dir)
    assert again.files_read == 1
    assert sum(again.rows.values()) == 0
    assert (
        query(
            "SELECT (SELECT count(*) FROM events) e, (SELECT count(*) FROM tool_calls) t, "
            "(SELECT count(*) FROM messages) m, (SELECT count(*) FROM quarantine) q, "
            "(SELECT count(*) FROM checkpoint_versions) c"
        )
        == counts
    )
    unchanged = ingest([path], data_dir)
    assert (unchanged.files_read, unchanged.files_skipped) == (0, 1)


def test_new_files_and_appended_lines_are_picked_up(
    tmp_path: Path, data_dir: Path, query: Query
) -> None:
    run = one_run().events
    path = write_jsonl(tmp_path / "r1.jsonl", run[:4])
    ingest([tmp_path], data_dir)
    write_jsonl(path, run)  # the stream grew
    write_jsonl(tmp_path / "r2.jsonl", one_run("r2").events)
    report = ingest([tmp_path], data_dir)
    assert report.files_read == 2
    assert query("SELECT count(*) AS n FROM events") == [{"n": 2 * len(run)}]
    assert query("SELECT count(DISTINCT event_id) AS n FROM events") == [{"n": 2 * len(run)}]


def test_a_last_line_read_half_written_leaves_quarantine_once_ingested_whole(
    tmp_path: Path, data_dir: Path, query: Query
) -> None:
    run = one_run().events
    whole = json.dumps(run[3])
    path = write_jsonl(tmp_path / "r1.jsonl", run[:3], extra=whole[:25])  # still being written
    ingest([path], data_dir)
    (row,) = query("SELECT line_number, reason, raw FROM quarantine")
    assert (row["line_number"], row["raw"]) == (4, whole[:25])
    assert row["reason"].startswith("last line without a newline, perhaps still being written")
    write_jsonl(path, run, extra="not json\n")  # the line was finished, more followed
    ingest([path], data_dir)
    # The half line is not counted as lost any more; a line that never parses still is.
    assert query("SELECT line_number, raw FROM quarantine") == [
        {"line_number": len(run) + 1, "raw": "not json"}
    ]
    assert query("SELECT count(*) AS n FROM events") == [{"n": len(run)}]


def test_a_half_written_last_line_whose_event_is_stored_from_its_event_file_leaves_quarantine(
    tmp_path: Path, data_dir: Path, query: Query
) -> None:
    events = one_run().events
    whole = json.dumps(events[-1])
    cut = whole[: whole.index('"id"') + len(events[-1]["id"]) + 10]  # past its whole id
    stream = write_jsonl(tmp_path / "stdout.jsonl", events[:-1], extra=cut)
    ingest([stream], data_dir)
    assert query("SELECT line_number FROM quarantine") == [{"line_number": len(events)}]
    runs_dir = tmp_path / "ws" / "perstack" / "jobs" / "j1" / "runs" / "r1"
    runs_dir.mkdir(parents=True)
    (runs_dir / "event-9-completeRun.json").write_text(whole)
    ingest([tmp_path / "ws"], data_dir)
    assert query("SELECT count(*) AS n FROM quarantine") == [{"n": 0}]
    assert query("SELECT count(*) AS n FROM events") == [{"n": len(events)}]


def test_same_event_from_stdout_and_workspace_file_lands_once(
    tmp_path: Path, data_dir: Path, query: Query
) -> None:
    events = one_run().events
    stdout = write_jsonl(tmp_path / "stdout.jsonl", events)
    runs_dir = tmp_path / "ws" / "perstack" / "jobs" / "j1" / "runs" / "r1"
    runs_dir.mkdir(parents=True)
    for e in events:
        # Same name for two events: ours adds a suffix; the type comes from the body.
        name = f"event-{e['timestamp']}-{e.get('stepNumber', 0)}-{e['type']}"
        target = runs_dir / f"{name}.json"
        if target.exists():
            target = runs_dir / f"{name}-1.json"
        target.write_text(json.dumps(e))
    ingest([stdout, tmp_path / "ws"], data_dir, user="alice")
    rows = query(
        "SELECT count(*) AS n, count(DISTINCT event_id) AS d, "
        "count(*) FILTER (WHERE user_name = 'alice') AS a FROM events"
    )
    assert rows == [{"n": len(events), "d": len(events), "a": len(events)}]


def test_files_are_written_whole_and_no_temporary_file_remains(
    tmp_path: Path, data_dir: Path
) -> None:
    ingest([write_jsonl(tmp_path / "a.jsonl", one_run().events)], data_dir)
    leftovers = [p for p in data_dir.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []
    for table in ("events", "tool_calls", "tool_results", "checkpoints", "messages"):
        for file in Dataset(data_dir).files(table):
            assert pq.ParquetFile(file).metadata.num_rows > 0


def test_messages_are_stored_once_per_id(tmp_path: Path, data_dir: Path, query: Query) -> None:
    builder = RunBuilder(job="j", run="r").start()
    for step in (1, 2, 3):
        builder.tool_step(step, [("s", "t", 1, False)])
    ingest([write_jsonl(tmp_path / "a.jsonl", builder.events)], data_dir)
    rows = query("SELECT message_id, count(*) AS n FROM messages GROUP BY 1 HAVING n > 1")
    assert rows == []
    (ckpt,) = query("SELECT message_ids FROM checkpoints WHERE checkpoint_id = 'r-ckpt-3'")
    assert ckpt["message_ids"] == ["r-m-3"]


def test_workspace_job_and_run_setting_files(tmp_path: Path, data_dir: Path, query: Query) -> None:
    job_dir = tmp_path / "perstack" / "jobs" / "j1"
    (job_dir / "runs" / "r1").mkdir(parents=True)
    job = {
        "id": "j1",
        "status": "running",
        "coordinatorExpertKey": "writer",
        "totalSteps": 1,
        "usage": {
            "inputTokens": 1,
            "outputTokens": 1,
            "reasoningTokens": 0,
            "totalTokens": 2,
            "cachedInputTokens": 0,
        },
        "startedAt": 1000,
    }
    (job_dir / "job.json").write_text(json.dumps(job))
    setting = {
        "model": "claude-haiku-4-5",
        "providerConfig": {"providerName": "anthropic"},
        "jobId": "j1",
        "runId": "r1",
        "expertKey": "writer",
        "input": {"text": "hi"},
        "maxSteps": 7,
        "maxRetries": 5,
        "timeout": 1,
        "startedAt": 1000,
        "updatedAt": 2000,
        "env": {"SECRET": "do-not-store"},
    }
    (job_dir / "runs" / "r1" / "run-setting.json").write_text(json.dumps(setting))
    ingest([tmp_path], data_dir)
    job.update(status="completed", totalSteps=3, finishedAt=5000)
    (job_dir / "job.json").write_text(json.dumps(job))
    ingest([tmp_path], data_dir)
    (row,) = query("SELECT status, total_steps, epoch_ms(finished_at) AS f FROM jobs")
    assert row == {"status": "completed", "total_steps": 3, "f": 5000}
    (s,) = query("SELECT model, max_steps, input_text FROM run_settings")
    assert s == {"model": "claude-haiku-4-5", "max_steps": 7, "input_text": "hi"}
    stored = b"".join(p.read_bytes() for p in data_dir.rglob("*.parquet"))
    assert b"do-not-store" not in stored


def test_reference_event_file_overwritten_by_a_shorter_one_keeps_its_event(
    tmp_path: Path, data_dir: Path, query: Query
) -> None:
    runs = tmp_path / "perstack" / "jobs" / "j" / "runs" / "r"
    runs.mkdir(parents=True)
    event = {"type": "streamRunResult", "id": "short", "timestamp": 1, "delta": "."}
    (runs / "event-1-4-streamRunResult.json").write_text(json.dumps(event) + 'd verified it"}')
    ingest([tmp_path], data_dir)
    assert query("SELECT event_id, delta FROM events") == [{"event_id": "short", "delta": "."}]
    (q,) = query("SELECT line_number, raw FROM quarantine")
    assert q == {"line_number": 1, "raw": 'd verified it"}'}


def test_copied_dataset_queries_where_it_now_is(tmp_path: Path, data_dir: Path) -> None:
    ingest([write_jsonl(tmp_path / "a.jsonl", one_run().events)], data_dir)
    moved = tmp_path / "moved"
    shutil.copytree(data_dir, moved)
    shutil.rmtree(data_dir)
    ingest([], moved)  # an ingest (even of nothing) rebuilds the catalog's views
    from analytics import open_catalog, run

    con = open_catalog(Dataset(moved))
    try:
        assert run(con, "SELECT count(*) FROM events").rows[0][0] > 0
    finally:
        con.close()


def test_snapshots_follow_ingests_made_without_a_catalog_refresh(
    tmp_path: Path, data_dir: Path, query: Query
) -> None:
    ingest([write_jsonl(tmp_path / "a.jsonl", one_run("r1").events)], data_dir)
    ingest([write_jsonl(tmp_path / "b.jsonl", one_run("r2").events)], data_dir, refresh=False)
    ingest([], data_dir)
    assert query("SELECT count(*) AS n FROM runs") == [{"n": 2}]
    assert query("SELECT count(*) AS n FROM runs_live") == [{"n": 2}]


def test_an_ingest_rewrites_only_the_snapshot_parts_of_the_runs_it_touched(
    tmp_path: Path, data_dir: Path, query: Query
) -> None:
    ingest([write_jsonl(tmp_path / "a.jsonl", one_run("r1", "j1").events)], data_dir)
    summaries = data_dir / "summaries"

    def parts() -> dict[str, int]:
        return {f"{p.parent.name}/{p.name}": p.stat().st_ino for p in summaries.glob("*/*.parquet")}

    before = parts()
    assert len(before) == 3 * 16
    ingest([write_jsonl(tmp_path / "b.jsonl", one_run("r2", "j2").events)], data_dir)
    after = parts()
    changed = sorted(name for name in before if after[name] != before[name])

    def part(owner: str) -> str:
        return f"part-{hashlib.md5(owner.encode()).hexdigest()[0]}.parquet"

    assert changed == sorted(
        [f"runs/{part('r2')}", f"generations/{part('r2')}", f"tool_calls/{part('j2')}"]
    )
    assert query("SELECT run_id, outcome FROM runs ORDER BY run_id") == [
        {"run_id": "r1", "outcome": "completed"},
        {"run_id": "r2", "outcome": "completed"},
    ]
    assert query("SELECT count(*) AS n FROM tool_calls") == [{"n": 2}]


def test_snapshots_updated_run_by_run_equal_the_live_views(
    tmp_path: Path, data_dir: Path, query: Query
) -> None:
    first = RunBuilder(job="j1", run="r1").start(model="model-a", max_steps=7)
    first.tool_step(1, [("@perstack/base", "exec", 5, False)])
    first.complete(2)
    del first.events[-1]["jobId"]  # the run's rows must still count it when recomputed
    ingest([write_jsonl(tmp_path / "1.jsonl", first.events)], data_dir)
    # A second run of the job without a runtime start of its own (as a delegate's): its
    # model and step limit come from the job's, stored in an earlier ingest.
    delegate = RunBuilder(job="j1", run="r2").start()
    delegate.tool_step(1, [("@perstack/base", "exec", 9, True)])
    delegate.fail(2, "boom")
    other = one_run("r3", "j2").events
    events = [e for e in delegate.events if e["type"] != "initializeRuntime"] + other[:4]
    ingest([write_jsonl(tmp_path / "2.jsonl", events)], data_dir)
    ingest([write_jsonl(tmp_path / "3.jsonl", other[4:])], data_dir)

    runs = query("SELECT run_id, outcome, model, max_steps FROM runs ORDER BY run_id")
    assert runs == [
        {"run_id": "r1", "outcome": "completed", "model": "model-a", "max_steps": 7},
        {"run_id": "r2", "outcome": "stoppedByError", "model": "model-a", "max_steps": 7},
        {"run_id": "r3", "outcome": "completed", "model": "claude-sonnet-4-5", "max_steps": 100},
    ]
    for name, live in (
        ("runs", "SELECT * FROM runs_live"),
        ("generations", "SELECT * FROM generations_live"),
        ("tool_calls", "SELECT * EXCLUDE (args, result, result_text) FROM tool_calls_live"),
    ):
        differ = query(
            f"SELECT count(*) AS n FROM ((SELECT * FROM {name} EXCEPT {live}) "
            f"UNION ALL ({live} EXCEPT SELECT * FROM {name}))"
        )
        assert differ == [{"n": 0}], name
        assert query(f"SELECT count(*) AS n FROM {name}") == query(
            f"SELECT count(*) AS n FROM ({live})"
        )


def test_a_run_ingested_before_its_jobs_runtime_start_gets_the_jobs_model_after(
    tmp_path: Path, data_dir: Path, query: Query
) -> None:
    delegate = RunBuilder(job="j1", run="del").start()
    delegate.complete(1)
    no_runtime = [e for e in delegate.events if e["type"] != "initializeRuntime"]
    ingest([write_jsonl(tmp_path / "1.jsonl", no_runtime)], data_dir)
    # The lead run's events carry the job's runtime start; only the lead has new rows.
    lead = RunBuilder(job="j1", run="lead").start(model="model-a", max_steps=7)
    lead.complete(1)
    ingest([write_jsonl(tmp_path / "2.jsonl", lead.events)], data_dir)
    rows = query("SELECT run_id, model, max_steps FROM runs ORDER BY run_id")
    assert rows == query("SELECT run_id, model, max_steps FROM runs_live ORDER BY run_id")
    assert rows[0] == {"run_id": "del", "model": "model-a", "max_steps": 7}


def test_a_run_ingested_under_two_users_shows_one_of_them_every_time(
    tmp_path: Path, data_dir: Path, query: Query
) -> None:
    events = one_run("r1").events
    ingest([write_jsonl(tmp_path / "a.jsonl", events[:3])], data_dir, user="bob")
    ingest([write_jsonl(tmp_path / "a.jsonl", events)], data_dir, user="ann")
    seen = {query("SELECT user_name FROM runs_live")[0]["user_name"] for _ in range(20)}
    assert seen == {"ann"}
    assert query("SELECT user_name FROM runs") == [{"user_name": "ann"}]


def test_a_last_line_cut_inside_a_character_leaves_quarantine_once_ingested_whole(
    tmp_path: Path, data_dir: Path, query: Query
) -> None:
    run = one_run().events
    run[2]["text"] = "日本語"
    whole = json.dumps(run[2], ensure_ascii=False).encode()
    cut = whole[: whole.index("本".encode()) + 1]  # one byte of a three-byte character
    path = tmp_path / "r1.jsonl"
    path.write_bytes(b"".join(json.dumps(e).encode() + b"\n" for e in run[:2]) + cut)
    ingest([path], data_dir)
    (row,) = query("SELECT reason FROM quarantine")
    assert row["reason"].startswith("last line without a newline, perhaps still being written")
    assert "not valid UTF-8" in row["reason"]
    path.write_bytes(b"".join(json.dumps(e).encode() + b"\n" for e in run[:2]) + whole + b"\n")
    ingest([path], data_dir)
    assert query("SELECT count(*) AS n FROM quarantine") == [{"n": 0}]
    assert query("SELECT count(*) AS n FROM events") == [{"n": 3}]


def test_event_file_with_a_field_of_unexpected_type_lands_once(
    tmp_path: Path, data_dir: Path, query: Query
) -> None:
    runs = tmp_path / "perstack" / "jobs" / "j" / "runs" / "r"
    runs.mkdir(parents=True)
    event = {"type": "callTools", "id": "odd", "timestamp": 1, "usage": "lots"}
    (runs / "event-1-1-callTools.json").write_text(json.dumps(event))
    ingest([tmp_path], data_dir)
    assert query("SELECT event_id, input_tokens FROM events") == [
        {"event_id": "odd", "input_tokens": None}
    ]
    (q,) = query("SELECT reason FROM quarantine")
    assert q["reason"] == "kept with usage left null: not of the column's type"


def test_empty_and_pretty_printed_event_files(tmp_path: Path, data_dir: Path, query: Query) -> None:
    runs = tmp_path / "perstack" / "jobs" / "j" / "runs" / "r"
    runs.mkdir(parents=True)
    (runs / "event-1-1-startRun.json").write_text("")
    event = {"type": "startRun", "id": "pretty", "timestamp": 2, "runId": "r"}
    (runs / "event-2-1-startRun.json").write_text(json.dumps(event, indent=2))
    ingest([tmp_path], data_dir)
    assert query("SELECT event_id, run_id FROM events") == [{"event_id": "pretty", "run_id": "r"}]
    (q,) = query("SELECT source_file, reason FROM quarantine")
    assert q["source_file"].endswith("event-1-1-startRun.json")
    assert q["reason"] == "empty event file"


def test_snapshots_are_updated_for_what_each_ingest_touched(
    tmp_path: Path, data_dir: Path, query: Query
) -> None:
    first = one_run("r1")
    call_at = next(i for i, e in enumerate(first.events) if e["type"] == "callTools")
    # The first file stops right after the tool call: the call is pending, the run unfinished.
    ingest([write_jsonl(tmp_path / "a.jsonl", first.events[: call_at + 1])], data_dir)
    assert query("SELECT outcome FROM tool_calls") == [{"outcome": "pending"}]
    assert query("SELECT outcome FROM runs") == [{"outcome": "unfinished"}]
    ingest([write_jsonl(tmp_path / "b.jsonl", first.events[call_at + 1 :])], data_dir)
    ingest([write_jsonl(tmp_path / "c.jsonl", one_run("r2").events)], data_dir)
    assert query("SELECT outcome FROM tool_calls ORDER BY run_id") == [
        {"outcome": "ok"},
        {"outcome": "ok"},
    ]
    assert query("SELECT run_id, outcome FROM runs ORDER BY run_id") == [
        {"run_id": "r1", "outcome": "completed"},
        {"run_id": "r2", "outcome": "completed"},
    ]
    for name in ("runs", "generations"):
        differ = query(
            f"SELECT count(*) AS n FROM ((SELECT * FROM {name} EXCEPT "
            f"SELECT * FROM {name}_live) UNION ALL (SELECT * FROM {name}_live "
            f"EXCEPT SELECT * FROM {name}))"
        )
        assert differ == [{"n": 0}], name
    assert not (data_dir / "_state" / "touched.json").exists()


def test_out_of_range_timestamps_are_quarantined_and_the_dataset_stays_usable(
    tmp_path: Path, data_dir: Path, query: Query
) -> None:
    good = {"type": "startRun", "id": "ok", "timestamp": 1700000000123}
    bad = [
        {"type": "startRun", "id": "us", "timestamp": 1700000000123 * 1000},
        {"type": "startRun", "id": "huge", "timestamp": 10**18},
        {"type": "startRun", "id": "neg", "timestamp": -5},
    ]
    ingest([write_jsonl(tmp_path / "a.jsonl", [good, *bad])], data_dir)
    later = {"type": "startRun", "id": "later", "timestamp": 1700000000999}
    ingest([write_jsonl(tmp_path / "b.jsonl", [later])], data_dir)
    assert query("SELECT event_id FROM events ORDER BY event_id") == [
        {"event_id": "later"},
        {"event_id": "ok"},
    ]
    rows = query("SELECT line_number, reason FROM quarantine ORDER BY line_number")
    assert [r["line_number"] for r in rows] == [2, 3, 4]
    assert all(r["reason"].startswith("timestamp out of range") for r in rows)
    folders = {p.name for p in (data_dir / "events").iterdir()}
    assert folders == {"day=2023-11-14"}


def test_a_line_nested_thousands_deep_is_quarantined_and_the_rest_ingested(
    tmp_path: Path, data_dir: Path, query: Query
) -> None:
    good = {"type": "startRun", "id": "ok", "timestamp": 1700000000123}
    # A string timestamp sends the line down the slow path, where json.loads recurses.
    deep = '{"type": "x", "id": "d", "timestamp": "5", "a": ' + "[" * 100_000 + "]" * 100_000
    path = write_jsonl(tmp_path / "a.jsonl", [good], extra=deep + "}\n")
    ingest([path], data_dir)
    assert query("SELECT event_id FROM events") == [{"event_id": "ok"}]
    assert query("SELECT line_number, reason FROM quarantine") == [
        {"line_number": 2, "reason": "invalid JSON: nested too deeply to read"}
    ]


def test_fifo_and_symlink_loop_in_a_folder_are_skipped_and_named(
    tmp_path: Path, data_dir: Path, query: Query
) -> None:
    folder = tmp_path / "captured"
    folder.mkdir()
    write_jsonl(folder / "good.jsonl", [{"type": "startRun", "id": "ok", "timestamp": 1}])
    os.mkfifo(folder / "pipe.jsonl")  # reading it would block the ingest forever
    (folder / "loop1.jsonl").symlink_to("loop2.jsonl")
    (folder / "loop2.jsonl").symlink_to("loop1.jsonl")
    report = ingest([folder], data_dir)
    assert query("SELECT event_id FROM events") == [{"event_id": "ok"}]
    skipped = {Path(s.split(": ")[0]).name for s in report.skipped}
    assert skipped == {"pipe.jsonl", "loop1.jsonl", "loop2.jsonl"}
    rows = query("SELECT source_file, line_number, reason FROM quarantine")
    assert {(Path(r["source_file"]).name, r["line_number"]) for r in rows} == {
        ("pipe.jsonl", 0),
        ("loop1.jsonl", 0),
        ("loop2.jsonl", 0),
    }
    assert all(r["reason"].startswith("file skipped: ") for r in rows)


def test_a_file_that_fails_to_read_is_quarantined_and_read_again_next_time(
    tmp_path: Path, data_dir: Path, query: Query
) -> None:
    good = write_jsonl(tmp_path / "a.jsonl", [{"type": "startRun", "id": "ok", "timestamp": 1}])
    # A regular file whose read fails with EIO, even for root.
    unreadable = Path("/proc/self/mem").resolve()
    report = ingest([unreadable, good], data_dir)
    assert report.files_read == 1
    assert query("SELECT event_id FROM events") == [{"event_id": "ok"}]
    (row,) = query("SELECT source_file, line_number, reason FROM quarantine")
    assert (row["source_file"], row["line_number"]) == (str(unreadable), 0)
    assert row["reason"].startswith("file skipped: cannot read it")
    assert report.skipped == [f"{unreadable}: {row['reason']}"]
    assert str(unreadable) not in Dataset(data_dir).load_seen_files()


def test_jsonl_an_expert_wrote_in_its_workspace_is_not_ingested_from_a_folder(
    tmp_path: Path, data_dir: Path, query: Query
) -> None:
    forged = [{"type": "startRun", "id": "forged", "timestamp": 1, "jobId": "j1"}]
    real = {"type": "startRun", "id": "real", "timestamp": 2, "jobId": "j1", "runId": "r1"}
    captured = tmp_path / "captured"
    for ws in ("ws1", "ws2"):
        runs_dir = captured / ws / "perstack" / "jobs" / "j1" / "runs" / "r1"
        runs_dir.mkdir(parents=True)
        (runs_dir / f"event-2-0-startRun-{ws}.json").write_text(json.dumps(real | {"id": ws}))
        write_jsonl(runs_dir / "forged.jsonl", forged)  # inside the jobs tree: not a stream
        write_jsonl(captured / ws / "out.jsonl", forged)  # the Expert's own files
        write_jsonl(captured / ws / "notes" / "log.jsonl", forged)
        write_jsonl(captured / ws / "perstack" / "other.jsonl", forged)
    write_jsonl(captured / "stdout.jsonl", [real])  # a captured stream beside the workspaces
    ingest([captured], data_dir)
    assert query("SELECT event_id FROM events ORDER BY event_id") == [
        {"event_id": "real"},
        {"event_id": "ws1"},
        {"event_id": "ws2"},
    ]
    # Named explicitly, a stream is read wherever it is.
    ingest([captured / "ws1" / "out.jsonl"], data_dir)
    assert {"event_id": "forged"} in query("SELECT event_id FROM events")


def test_a_workspace_folder_given_directly_is_read_only_in_its_jobs_tree(
    tmp_path: Path, data_dir: Path, query: Query
) -> None:
    ws = tmp_path / "ws"
    job = ws / "perstack" / "jobs" / "j1"
    (job / "runs" / "r1").mkdir(parents=True)
    event = {"type": "startRun", "id": "e", "timestamp": 2, "jobId": "j1", "runId": "r1"}
    (job / "runs" / "r1" / "event-2-0-startRun.json").write_text(json.dumps(event))
    write_jsonl(ws / "fake.jsonl", [{"type": "startRun", "id": "fake", "timestamp": 1}])
    write_jsonl(job / "fake.jsonl", [{"type": "startRun", "id": "fake2", "timestamp": 1}])
    ingest([ws], data_dir)
    ingest([job], data_dir)  # what the flows pass: the job folder itself
    assert query("SELECT event_id FROM events") == [{"event_id": "e"}]


def test_events_dropped_for_a_wrongly_typed_id_type_or_timestamp_say_dropped_not_kept(
    tmp_path: Path, data_dir: Path, query: Query
) -> None:
    odd = [
        {"type": "startRun", "id": "s", "timestamp": "1700000000123"},
        {"type": "startRun", "id": "f", "timestamp": 1700000000123.5},
        {"type": 7, "id": "t", "timestamp": 1},
        {"type": "startRun", "id": 8, "timestamp": 1},
    ]
    ingest([write_jsonl(tmp_path / "a.jsonl", odd)], data_dir)
    runs = tmp_path / "perstack" / "jobs" / "j" / "runs" / "r"
    runs.mkdir(parents=True)
    (runs / "event-1-1-startRun.json").write_text(json.dumps(odd[0]))
    ingest([runs], data_dir)
    assert query("SELECT count(*) AS n FROM events") == [{"n": 0}]
    rows = query("SELECT source_file, line_number, reason FROM quarantine ORDER BY source_file, 2")
    assert [(Path(r["source_file"]).name, r["line_number"], r["reason"]) for r in rows] == [
        ("a.jsonl", 1, "event dropped: timestamp is str, not an integer (epoch milliseconds)"),
        ("a.jsonl", 2, "event dropped: timestamp is float, not an integer (epoch milliseconds)"),
        ("a.jsonl", 3, "event dropped: type is int, not a string"),
        ("a.jsonl", 4, "event dropped: id is int, not a string"),
        (
            "event-1-1-startRun.json",
            1,
            "event dropped: timestamp is str, not an integer (epoch milliseconds)",
        ),
    ]


def test_a_duplicate_event_id_on_another_utc_day_is_stored_once(
    tmp_path: Path, data_dir: Path, query: Query
) -> None:
    day_ms = 86_400_000
    first = {"type": "startRun", "id": "same", "timestamp": 1700000000123}
    again = first | {"timestamp": 1700000000123 + 3 * day_ms}
    other = {"type": "startRun", "id": "other", "timestamp": 1700000000123 + 3 * day_ms}
    ingest([write_jsonl(tmp_path / "a.jsonl", [first])], data_dir)
    report = ingest([write_jsonl(tmp_path / "b.jsonl", [again, other])], data_dir)
    assert report.rows["events"] == 1
    assert query("SELECT event_id, epoch_ms(ts) AS ms FROM events ORDER BY event_id") == [
        {"event_id": "other", "ms": other["timestamp"]},
        {"event_id": "same", "ms": first["timestamp"]},
    ]


def test_runs_come_from_run_events_and_run_settings_not_from_mentions_of_a_run_id(
    tmp_path: Path, data_dir: Path, query: Query
) -> None:
    child = RunBuilder(job="j1", run="child", expert="helper")
    child.event(
        "startRun",
        1,
        initialCheckpoint=child.checkpoint(
            1, "init", [], delegatedBy={"expert": {"key": "lead"}, "runId": "parent"}
        ),
        inputMessages=[],
    )
    child.complete(1)
    # The runtime's own events of a run that never started: they mention its id only.
    ghost = RunBuilder(job="j1", run="ghost")
    ghost.runtime("initializeRuntime", model="m", expertName="x")
    ghost.runtime("skillConnected", skillName="@perstack/base")
    ingest([write_jsonl(tmp_path / "a.jsonl", child.events + ghost.events)], data_dir)
    setting_dir = tmp_path / "ws" / "perstack" / "jobs" / "j1" / "runs" / "set-up"
    setting_dir.mkdir(parents=True)
    setting = {"jobId": "j1", "runId": "set-up", "expertKey": "writer", "model": "m2"}
    (setting_dir / "run-setting.json").write_text(json.dumps(setting | {"startedAt": 1000}))
    ingest([tmp_path / "ws"], data_dir)
    for view in ("runs", "runs_live"):
        rows = query(f"SELECT run_id, expert_key, outcome, model, events FROM {view} ORDER BY 1")
        assert rows == [
            {
                "run_id": "child",
                "expert_key": "helper",
                "outcome": "completed",
                "model": "m",  # the job's initializeRuntime says so
                "events": 3,
            },
            {
                "run_id": "set-up",
                "expert_key": "writer",
                "outcome": "unfinished",
                "model": "m2",
                "events": 0,
            },
        ], view
    assert query("SELECT runs FROM jobs") == [{"runs": 2}]


def test_timestamps_no_calendar_holds_are_quarantined_or_left_null_never_stored(
    tmp_path: Path, data_dir: Path, query: Query
) -> None:
    year_300000 = 9_404_975_404_800_000
    good = 1700000000123
    lines = [
        {"type": "startRun", "id": "ok", "timestamp": good},
        {"type": "startRun", "id": "y300000", "timestamp": year_300000},
        {"type": "startRun", "id": "very-negative", "timestamp": -(10**17)},
        {"type": "startRun", "id": "past-int64", "timestamp": 10**20},
        {"type": "startRun", "id": "float-huge", "timestamp": 1e30},
        # A step time out of range in an event otherwise fine: the event is kept, the
        # column is null and the raw payload keeps the value.
        {
            "type": "completeRun",
            "id": "bad-step",
            "timestamp": good,
            "runId": "r",
            "expertKey": "x",
            "stepNumber": 1,
            "step": {"startedAt": year_300000, "finishedAt": -(10**17)},
        },
    ]
    ingest([write_jsonl(tmp_path / "a.jsonl", lines)], data_dir)
    job = tmp_path / "ws" / "perstack" / "jobs" / "j"
    (job / "runs" / "r").mkdir(parents=True)
    (job / "job.json").write_text(
        json.dumps({"id": "j", "status": "completed", "startedAt": year_300000})
    )
    (job / "runs" / "r" / "run-setting.json").write_text(
        json.dumps({"jobId": "j", "runId": "r", "expertKey": "x", "updatedAt": -(10**17)})
    )
    ingest([tmp_path / "ws"], data_dir)
    assert query("SELECT event_id FROM events ORDER BY 1") == [
        {"event_id": "bad-step"},
        {"event_id": "ok"},
    ]
    (step,) = query(
        "SELECT step_started_at, step_finished_at, raw FROM events WHERE event_id = 'bad-step'"
    )
    assert (step["step_started_at"], step["step_finished_at"]) == (None, None)
    assert str(year_300000) in step["raw"]
    rows = query("SELECT line_number, reason FROM quarantine ORDER BY line_number")
    assert [r["line_number"] for r in rows] == [2, 3, 4, 5, 6]
    assert all("timestamp" in r["reason"] for r in rows[:4]), rows
    assert rows[4]["reason"].startswith(
        "kept with step.startedAt and step.finishedAt left null: out of range (accepted: "
    )
    assert query("SELECT started_at FROM jobs WHERE job_id = 'j'") == [{"started_at": None}]
    assert query("SELECT updated_at FROM run_settings") == [{"updated_at": None}]
    for view in ("runs", "generations", "tool_calls", "jobs", "checkpoints", "messages"):
        query(f"SELECT * FROM {view}")
    assert {p.name for p in (data_dir / "events").iterdir()} == {"day=2023-11-14"}


def test_temporary_files_an_interrupted_ingest_left_are_never_read_and_removed_next_time(
    tmp_path: Path, data_dir: Path, query: Query
) -> None:
    ingest([write_jsonl(tmp_path / "a.jsonl", one_run().events)], data_dir)
    counts = query("SELECT (SELECT count(*) FROM events) AS e, (SELECT count(*) FROM runs) AS r")
    (part,) = Dataset(data_dir).files("events")
    leftovers = [
        part.with_name(".part-20990101T000000-dead.parquet.tmp"),
        data_dir / "tool_calls" / "day=2023-11-14" / ".part-x.parquet.tmp",
        data_dir / "summaries" / "runs" / ".part-0.parquet.tmp",
        data_dir / "summaries" / ".runs.parts.tmp" / "part_=0" / "data_0.parquet",
        data_dir / "_state" / ".files.json.0badc0de.tmp",
        data_dir / ".catalog.duckdb.0badc0de.tmp",
        data_dir / ".catalog.duckdb.0badc0de.tmp.wal",
    ]
    for leftover in leftovers:
        leftover.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(part, leftover)  # whole, valid Parquet: still not data
    assert (
        query("SELECT (SELECT count(*) FROM events) AS e, (SELECT count(*) FROM runs) AS r")
        == counts
    )
    mine = tmp_path / "notes.tmp"  # not the dataset's: left alone
    mine.write_text("x")
    ingest([], data_dir)
    assert [p for p in leftovers if p.exists()] == []
    assert mine.exists()
    assert (
        query("SELECT (SELECT count(*) FROM events) AS e, (SELECT count(*) FROM runs) AS r")
        == counts
    )


def test_an_event_id_repeated_with_other_content_is_quarantined_naming_the_id(
    tmp_path: Path, data_dir: Path, query: Query
) -> None:
    first = {"type": "startRun", "id": "e1", "timestamp": 1700000000123, "runId": "r"}
    same_again = dict(reversed(list(first.items())))  # same content, other key order
    other = first | {"runId": "someone-else"}
    ingest([write_jsonl(tmp_path / "a.jsonl", [first, same_again, other])], data_dir)
    later = first | {"timestamp": 1700000000999}
    # The differing copy first: the same event after it is not held against it.
    ingest([write_jsonl(tmp_path / "b.jsonl", [later, first])], data_dir)
    assert query("SELECT event_id, run_id, epoch_ms(ts) AS ms FROM events") == [
        {"event_id": "e1", "run_id": "r", "ms": 1700000000123}
    ]
    rows = query("SELECT source_file, line_number, reason FROM quarantine ORDER BY 1, 2")
    assert [(Path(r["source_file"]).name, r["line_number"], r["reason"]) for r in rows] == [
        (
            "a.jsonl",
            3,
            f"duplicate event id 'e1' with other content than its first copy "
            f"({tmp_path / 'a.jsonl'} line 1); this copy was not ingested",
        ),
        (
            "b.jsonl",
            1,
            "duplicate event id 'e1' with other content than the event already stored "
            "under that id; this copy was not ingested",
        ),
    ]


def test_an_event_file_that_leaves_its_history_to_a_checkpoint_is_no_conflict(
    tmp_path: Path, data_dir: Path, query: Query
) -> None:
    builder = one_run()
    stdout = write_jsonl(tmp_path / "stdout.jsonl", builder.events)
    runs_dir = tmp_path / "ws" / "perstack" / "jobs" / "j1" / "runs" / "r1"
    runs_dir.mkdir(parents=True)
    for n, event in enumerate(builder.events):
        if "checkpoint" in event:
            elided = dict(event["checkpoint"])
            count = len(elided.pop("messages"))
            elided |= {"messages": [], "elidedMessages": {"checkpointId": "c0", "count": count}}
            event = event | {"checkpoint": elided}
        (runs_dir / f"event-{n}.json").write_text(json.dumps(event, indent=2))
    ingest([runs_dir.parents[3]], data_dir)
    ingest([stdout], data_dir)
    assert query("SELECT count(*) AS n FROM quarantine") == [{"n": 0}]
    assert query("SELECT count(*) AS n FROM events") == [{"n": len(builder.events)}]


def test_a_value_of_the_wrong_type_nulls_its_column_only_and_raw_keeps_it(
    tmp_path: Path, data_dir: Path, query: Query
) -> None:
    odd = {
        "type": "callTools",
        "id": "odd",
        "timestamp": 1700000000123,
        "jobId": "j",
        "runId": "r",
        "expertKey": "x",
        "stepNumber": "3",
        "usage": {"inputTokens": "many", "outputTokens": 5},
        "text": "still here",
        "step": {"startedAt": "noon", "finishedAt": 1700000000200},
        "toolCalls": [{"id": "c1", "skillName": "s", "toolName": "t", "args": {}}],
    }
    ingest([write_jsonl(tmp_path / "a.jsonl", [odd])], data_dir)
    (row,) = query(
        "SELECT event_id, run_id, step_number, input_tokens, output_tokens, text, "
        "step_started_at, epoch_ms(step_finished_at) AS finished, raw FROM events"
    )
    assert {k: v for k, v in row.items() if k != "raw"} == {
        "event_id": "odd",
        "run_id": "r",
        "step_number": None,
        "input_tokens": None,
        "output_tokens": 5,
        "text": "still here",
        "step_started_at": None,
        "finished": 1700000000200,
    }
    assert json.loads(row["raw"]) == odd
    (q,) = query("SELECT line_number, reason FROM quarantine")
    assert q == {
        "line_number": 1,
        "reason": "kept with stepNumber, usage.inputTokens and step.startedAt left null: "
        "not of the column's type",
    }
    assert query("SELECT tool_call_id FROM tool_calls") == [{"tool_call_id": "c1"}]


def test_a_checkpoint_file_with_fields_of_the_wrong_type_is_kept(
    tmp_path: Path, data_dir: Path, query: Query
) -> None:
    folder = tmp_path / "perstack" / "jobs" / "j" / "checkpoints"
    folder.mkdir(parents=True)
    checkpoint = {
        "id": "c",
        "jobId": "j",
        "runId": "r",
        "status": "completed",
        "stepNumber": "two",
        "usage": {"inputTokens": "lots", "outputTokens": 4},
        "messages": "none",
        "expert": {"key": "x", "name": "x", "version": 1},
    }
    (folder / "c.json").write_text(json.dumps(checkpoint))
    ingest([tmp_path], data_dir)
    assert query(
        "SELECT checkpoint_id, step_number, input_tokens, output_tokens, expert_version "
        "FROM checkpoints"
    ) == [
        {
            "checkpoint_id": "c",
            "step_number": None,
            "input_tokens": None,
            "output_tokens": 4,
            "expert_version": "1",
        }
    ]


def test_event_files_with_elided_histories_take_checkpoints_from_their_files(
    tmp_path: Path, data_dir: Path, query: Query
) -> None:
    builder = RunBuilder(job="j1", run="r1")
    whole = builder.checkpoint(2, "completed", ["m1", "m2", "m3"])
    job = tmp_path / "perstack" / "jobs" / "j1"
    (job / "checkpoints").mkdir(parents=True)
    (job / "checkpoints" / f"{whole['id']}.json").write_text(json.dumps(whole))
    elided = whole | {
        "messages": whole["messages"][2:],
        "elidedMessages": {"checkpointId": "r1-ckpt-1", "count": 2},
    }
    event = builder.event("completeRun", 2, text="done", checkpoint=elided)
    (job / "runs" / "r1").mkdir(parents=True)
    (job / "runs" / "r1" / "event-1-2-completeRun.json").write_text(json.dumps(event))
    ingest([tmp_path], data_dir)
    assert query("SELECT checkpoint_id, message_ids, seen_in FROM checkpoint_versions") == [
        {"checkpoint_id": whole["id"], "message_ids": ["m1", "m2", "m3"], "seen_in": "file"}
    ]
    assert query("SELECT message_id FROM messages ORDER BY 1") == [
        {"message_id": "m1"},
        {"message_id": "m2"},
        {"message_id": "m3"},
    ]
    assert query("SELECT count(*) AS n FROM quarantine") == [{"n": 0}]


def test_events_of_days_out_of_order_land_in_their_day_in_stream_order(
    tmp_path: Path, data_dir: Path, monkeypatch: Any
) -> None:
    # Gathered two rows at a time, so that a day's file is written in several pieces.
    monkeypatch.setattr("analytics.dataset._TAKE_ROWS", 2)
    day_ms = 86_400_000
    days = [3, 1, 3, 2, 1, 3, 1, 1, 2, 3, 1]
    events = [
        {"type": "startRun", "id": f"e{i:02}", "timestamp": 1700000000123 + d * day_ms}
        for i, d in enumerate(days)
    ]
    ingest([write_jsonl(tmp_path / "a.jsonl", events)], data_dir)
    stored = {}
    for file in Dataset(data_dir).files("events"):
        table = pq.read_table(file, partitioning=None)
        stored[file.parent.name] = table.column("event_id").to_pylist()
        assert pq.ParquetFile(file).metadata.num_row_groups == (table.num_rows + 1) // 2
    expected = {}
    for i, d in enumerate(days):
        expected.setdefault(f"day=2023-11-{14 + d}", []).append(f"e{i:02}")
    assert stored == expected


def test_a_stream_is_read_in_batches_of_at_most_chunk_bytes(
    tmp_path: Path, data_dir: Path, query: Query
) -> None:
    events = [{"type": "startRun", "id": f"e{i:02}", "timestamp": 1700000000123} for i in range(10)]
    path = write_jsonl(tmp_path / "a.jsonl", events)
    line = len(path.read_bytes()) // 10
    # Three lines and part of a fourth per read: each batch takes the three whole lines
    # (one file of events each), never two reads' worth.
    report = ingest([path], data_dir, chunk_bytes=3 * line + 1)
    assert report.rows["events"] == 10
    files = Dataset(data_dir).files("events")
    sizes = sorted(pq.read_metadata(f).num_rows for f in files)
    assert sizes == [1, 3, 3, 3]
    assert len(query("SELECT DISTINCT event_id FROM events")) == 10
