"""perstack-audit as a user runs it: a real process, real files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .runs import RunBuilder, write_jsonl

# A cold start imports pyarrow and duckdb; far more than enough on a loaded CI machine.
CLI_TIMEOUT_S = 120


def audit(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "analytics", *args],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        check=False,
    )


def test_ingest_then_query_in_every_format(tmp_path: Path) -> None:
    builder = RunBuilder(job="j", run="r").start()
    builder.tool_step(1, [("@perstack/base", "exec", 5, False)])
    builder.complete(2)
    stream = write_jsonl(tmp_path / "stdout.jsonl", builder.events)
    data = str(tmp_path / "data")
    done = audit("--data", data, "ingest", str(stream), "--user", "bob")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rows"]["events"] == len(builder.events)

    as_json = audit("--data", data, "query", "runs_by_outcome", "--format", "json")
    (row,) = [json.loads(x) for x in as_json.stdout.splitlines()]
    assert (row["expert_key"], row["outcome"], row["runs"], row["avg_steps"]) == (
        "writer",
        "completed",
        1,
        2.0,
    )
    as_csv = audit(
        "--data",
        data,
        "query",
        "SELECT user_name, count(*) AS n FROM events GROUP BY 1",
        "--format",
        "csv",
    )
    assert as_csv.stdout == f"user_name,n\nbob,{len(builder.events)}\n"
    # Strict JSON: no NaN or Infinity (null instead), bytes as hex.
    odd = audit(
        "--data",
        data,
        "query",
        "SELECT 'nan'::DOUBLE AS n, 'inf'::DOUBLE AS i, [1.5, 'nan'::DOUBLE] AS l, "
        "'\\xAA'::BLOB AS b",
        "--format",
        "json",
    )
    assert odd.returncode == 0, odd.stderr
    strict = json.loads(odd.stdout, parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    assert strict == {"n": None, "i": None, "l": [1.5, None], "b": "aa"}
    nested = audit(
        "--data",
        data,
        "query",
        "SELECT {'a': 1, 'b': [TIMESTAMPTZ '2024-01-02 03:04:05.678+00']} AS s, "
        "'\\xAA'::BLOB AS b",
        "--format",
        "csv",
    )
    assert nested.stdout == 's,b\n"{""a"": 1, ""b"": [""2024-01-02T03:04:05.678Z""]}",aa\n'
    table = audit("--data", data, "query", "tool_stats")
    assert table.returncode == 0
    assert table.stdout.splitlines()[0].split()[:3] == ["skill_name", "tool_name", "calls"]
    assert table.stdout.rstrip().endswith("(1 row)")


def test_dataset_folder_comes_from_the_environment(tmp_path: Path) -> None:
    stream = write_jsonl(tmp_path / "s.jsonl", RunBuilder(job="j", run="r").start().events)
    env = {"PERSTACK_AUDIT_DATA": str(tmp_path / "from-env")}
    assert audit("ingest", str(stream), env=env).returncode == 0
    assert (tmp_path / "from-env" / "catalog.duckdb").exists()


def test_unknown_query_and_bad_sql_exit_2_with_a_message(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    unknown = audit("--data", data, "query", "runs_by_outcom")
    assert unknown.returncode == 2
    assert "runs_by_outcome" in unknown.stderr
    stream = write_jsonl(tmp_path / "s.jsonl", RunBuilder(job="j", run="r").start().events)
    assert audit("--data", data, "ingest", str(stream)).returncode == 0
    bad = audit("--data", data, "query", "SELECT nope FROM events")
    assert bad.returncode == 2
    assert "perstack-audit: the SQL failed:" in bad.stderr and "nope" in bad.stderr


def test_a_bad_option_value_shows_the_command_usage_alone(tmp_path: Path) -> None:
    result = audit("--data", str(tmp_path), "query", "x", "--format", "xml")
    assert result.returncode == 2
    assert result.stderr.startswith("usage: perstack-audit query [-h]")
    assert "invalid choice: 'xml'" in result.stderr


def test_the_quarantine_hint_names_the_dataset_it_was_given(tmp_path: Path) -> None:
    stream = tmp_path / "s.jsonl"
    stream.write_text("not json\n")
    data = tmp_path / "my data"
    result = audit("--data", str(data), "ingest", str(stream))
    assert result.returncode == 0
    hint = f"perstack-audit --data '{data}' query 'SELECT * FROM quarantine'"
    assert hint in result.stderr
    shown = audit("--data", str(data), "query", "SELECT count(*) AS n FROM quarantine")
    assert shown.returncode == 0 and "1" in shown.stdout


def test_list_names_every_query(tmp_path: Path) -> None:
    listed = audit("list")
    queries = listed.stdout.split("\n\n")[0]
    names = [line.split()[0] for line in queries.splitlines()]
    assert {
        "runs_by_outcome",
        "failures",
        "tokens_and_cost",
        "tool_stats",
        "slowest_steps",
        "max_steps_stops",
        "time_to_first_llm_call",
    } <= set(names)


def test_missing_path_is_reported(tmp_path: Path) -> None:
    missing = audit("--data", str(tmp_path / "d"), "ingest", str(tmp_path / "nope.jsonl"))
    assert missing.returncode == 2
    assert "nope.jsonl" in missing.stderr


def test_data_option_may_follow_the_command(tmp_path: Path) -> None:
    stream = write_jsonl(tmp_path / "s.jsonl", RunBuilder(job="j", run="r").start().events)
    data = str(tmp_path / "d")
    assert audit("ingest", str(stream), "--data", data).returncode == 0
    counted = audit("query", "SELECT count(*) AS n FROM events", "--format", "csv", "--data", data)
    assert counted.stdout == "n\n2\n"


def test_ad_hoc_sql_reads_the_dataset_and_nothing_else(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    stream = write_jsonl(tmp_path / "s.jsonl", RunBuilder(job="j", run="r").start().events)
    assert audit("--data", data, "ingest", str(stream)).returncode == 0
    assert audit("--data", data, "query", "SELECT count(*) FROM events").returncode == 0
    secret = tmp_path / "secret.txt"
    secret.write_text("do not read me")
    read = audit("--data", data, "query", f"SELECT * FROM read_text('{secret}')")
    assert read.returncode == 2 and "do not read me" not in read.stdout
    target = tmp_path / "written.csv"
    write = audit("--data", data, "query", f"COPY (SELECT 1) TO '{target}'")
    assert write.returncode == 2 and not target.exists()
    # DuckDB allows its spill folder, .tmp under the working directory, unless told not to.
    (tmp_path / ".tmp").mkdir()
    (tmp_path / ".tmp" / "secret.csv").write_text("do not,read me\n")
    spill = audit(
        "--data", data, "query", "SELECT * FROM read_csv('.tmp/secret.csv')", cwd=tmp_path
    )
    assert spill.returncode == 2 and "read me" not in spill.stdout


def test_ad_hoc_sql_that_would_write_or_change_anything_is_refused_naming_it(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    stream = write_jsonl(tmp_path / "s.jsonl", RunBuilder(job="j", run="r").start().events)
    assert audit("--data", str(data), "ingest", str(stream)).returncode == 0
    before = sorted(p.relative_to(data) for p in data.rglob("*"))
    catalog = (data / "catalog.duckdb").read_bytes()
    refused = {
        f"COPY (SELECT 1) TO '{data / 'events' / 'x.parquet'}'": "COPY",
        f"SELECT 1; COPY (SELECT 1) TO '{data / 'evil.csv'}'": "COPY",
        f"EXPORT DATABASE '{data / 'exported'}'": "EXPORT",
        f"ATTACH '{data / 'other.duckdb'}' AS other": "ATTACH",
        "CREATE VIEW v AS SELECT 1": "CREATE",
        "CREATE TEMP TABLE t AS SELECT 1": "CREATE",
        "DROP VIEW runs": "DROP",
        "WITH a AS (SELECT 1) INSERT INTO prices SELECT 'x', 1, 1, 1": "INSERT",
        "INSTALL httpfs": "INSTALL",
        "LOAD json": "LOAD",
        "SET enable_external_access = true": "SET",
        "CHECKPOINT": "CHECKPOINT",
        f"EXPLAIN ANALYZE COPY (SELECT 1) TO '{data / 'e.csv'}'": "COPY",
    }
    for sql, what in refused.items():
        result = audit("--data", str(data), "query", sql)
        assert result.returncode == 2, sql
        assert result.stderr.startswith(f"perstack-audit: the SQL was refused: {what} "), (
            sql,
            result.stderr,
        )
        assert "read-only" in result.stderr and "Traceback" not in result.stderr
    assert sorted(p.relative_to(data) for p in data.rglob("*")) == before
    assert (data / "catalog.duckdb").read_bytes() == catalog
    for sql in (
        "WITH n AS (SELECT count(*) AS c FROM events) SELECT c FROM n",
        "FROM runs SELECT outcome",
        "DESCRIBE events",
        "EXPLAIN SELECT * FROM runs",
        "SELECT 1 AS a UNION ALL SELECT 2",
    ):
        assert audit("--data", str(data), "query", sql).returncode == 0, sql


def test_ad_hoc_sql_is_one_statement(tmp_path: Path) -> None:
    # Regression: an empty or comment-only text was an internal error (exit 1), and of
    # several statements all but the last were run with their rows never shown.
    data = str(tmp_path / "data")
    stream = write_jsonl(tmp_path / "s.jsonl", RunBuilder(job="j", run="r").start().events)
    assert audit("--data", data, "ingest", str(stream)).returncode == 0
    for sql in ("", "   ", "-- just a comment", ";"):
        result = audit("--data", data, "query", sql)
        assert result.returncode == 2, (sql, result.stderr)
        assert "holds no SQL statement" in result.stderr and "internal" not in result.stderr
    several = audit("--data", data, "query", "SELECT 1; SELECT 2")
    assert several.returncode == 2 and several.stdout == ""
    assert "the SQL was refused: it holds 2 statements; give one at a time" in several.stderr
    one = audit("--data", data, "query", "SELECT 1 AS n;", "--format", "csv", "-v")
    assert (one.returncode, one.stdout) == (0, "n\n1\n")


def test_a_query_on_a_dataset_that_does_not_exist_says_so(tmp_path: Path) -> None:
    missing = audit("--data", str(tmp_path / "typo"), "query", "runs_by_outcome")
    assert missing.returncode == 2
    assert missing.stderr.startswith(f"perstack-audit: there is no dataset at {tmp_path / 'typo'}")
    assert f"perstack-audit --data {tmp_path / 'typo'} ingest PATH" in missing.stderr
    assert "Traceback" not in missing.stderr
    assert not (tmp_path / "typo").exists()


def test_a_query_on_a_folder_that_is_not_a_dataset_writes_nothing_into_it(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "somewhere"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    for args in (("query", "runs_by_outcome"), ("query", "SELECT 1")):
        result = audit("--data", str(folder), *args)
        assert result.returncode == 2
        assert result.stderr.startswith(f"perstack-audit: there is no dataset at {folder}")
        assert "ingest" in result.stderr and "Traceback" not in result.stderr
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]


def test_data_pointing_at_a_file_exits_2_naming_it(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "data.txt"
    not_a_folder.write_text("")
    stream = write_jsonl(tmp_path / "a.jsonl", [{"type": "startRun", "id": "e", "timestamp": 1}])
    for args in (("ingest", str(stream)), ("query", "runs_by_outcome")):
        result = audit("--data", str(not_a_folder), *args)
        assert result.returncode == 2
        assert result.stderr.startswith(f"perstack-audit: {not_a_folder}: ")
        assert "Traceback" not in result.stderr


def test_skipped_files_are_named_on_stderr(tmp_path: Path) -> None:
    folder = tmp_path / "captured"
    folder.mkdir()
    write_jsonl(folder / "a.jsonl", [{"type": "startRun", "id": "e", "timestamp": 1}])
    os.mkfifo(folder / "pipe.jsonl")
    result = audit("--data", str(tmp_path / "d"), "ingest", str(folder))
    assert result.returncode == 0
    assert f"perstack-audit: skipped {folder / 'pipe.jsonl'}: not a regular file" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_bad_prices_file_is_described_in_its_own_format(tmp_path: Path) -> None:
    from analytics.catalog import read_prices
    from analytics.errors import PricesFileError

    for name, text, shape in (
        ("p.json", '[{"model": "x"}]', "a JSON list of objects with the keys model, "),
        ("p.csv", "model,input_usd_per_mtok\n", "a CSV with the columns model, "),
    ):
        path = tmp_path / name
        path.write_text(text)
        with pytest.raises(PricesFileError, match=shape):
            read_prices(path)


def test_a_bad_prices_option_exits_2_naming_file_item_and_key(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    stream = write_jsonl(tmp_path / "s.jsonl", RunBuilder(job="j", run="r").start().events)
    assert audit("--data", data, "ingest", str(stream)).returncode == 0
    prices = tmp_path / "prices.json"
    prices.write_text('[{"model": "claude-", "input_usd_per_mtok": -1, "output_usd_per_mtok": 1}]')
    result = audit("--data", data, "query", "tokens_and_cost", "--prices", str(prices))
    assert result.returncode == 2
    assert result.stderr.startswith(
        f"perstack-audit: {prices}: item 1 (model 'claude-'): input_usd_per_mtok is -1, below 0"
    )
    assert "Traceback" not in result.stderr


SLOW_SQL = (
    "SELECT count(*) FROM range(100000) AS a, range(100000) AS b "
    "WHERE (a.range * 7 + b.range) % 1000003 = 5"
)


def test_a_query_past_its_timeout_is_stopped_with_a_clear_error(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    stream = write_jsonl(tmp_path / "s.jsonl", RunBuilder(job="j", run="r").start().events)
    assert audit("--data", data, "ingest", str(stream)).returncode == 0
    started = time.monotonic()
    stopped = audit("--data", data, "query", SLOW_SQL, "--timeout", "1")
    assert time.monotonic() - started < 30
    assert stopped.returncode == 2
    assert stopped.stderr.startswith("perstack-audit: the SQL was stopped after 1 s (--timeout)")
    assert "Traceback" not in stopped.stderr and stopped.stdout == ""
    quick = audit("--data", data, "query", "runs_by_outcome", "--timeout", "60")
    assert quick.returncode == 0
    for bad in ("0", "-1", "soon"):
        refused = audit("--data", data, "query", "runs_by_outcome", "--timeout", bad)
        assert refused.returncode == 2
        assert "--timeout" in refused.stderr and "a number of seconds above 0" in refused.stderr


def test_an_internal_error_exits_1_with_one_line_and_the_traceback_only_with_v(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    stream = write_jsonl(tmp_path / "s.jsonl", RunBuilder(job="j", run="r").start().events)
    assert audit("--data", str(data), "ingest", str(stream)).returncode == 0
    (damaged,) = (data / "events").glob("*/*.parquet")
    damaged.write_bytes(b"not parquet")  # a damaged dataset: not the user's input
    stream.touch()
    result = audit("--data", str(data), "ingest", str(stream))
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith("perstack-audit: internal error: ")
    assert str(damaged) in line and line.endswith("(rerun with -v for the traceback)")
    verbose = audit("-v", "--data", str(data), "ingest", str(stream))
    assert verbose.returncode == 1 and "Traceback" in verbose.stderr


def test_files_and_folders_passed_over_are_named_in_the_ingest_output(tmp_path: Path) -> None:
    captured = tmp_path / "captured"
    write_jsonl(captured / "events.jsonl", [{"type": "startRun", "id": "e", "timestamp": 1}])
    write_jsonl(captured / "metrics.jsonl", [{"cpu": 0.5}])  # JSONL, but not events
    empty = tmp_path / "not-a-workspace"
    (empty / "src").mkdir(parents=True)
    (empty / "src" / "main.py").write_text("print('hi')\n")
    data = str(tmp_path / "d")
    result = audit("--data", data, "ingest", str(captured), str(empty))
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["rows"]["events"] == 1
    metrics = f"{captured / 'metrics.jsonl'}: not an event stream (its first line is an object "
    nothing = f"{empty}: nothing to ingest (no *.jsonl event stream and no perstack/jobs "
    assert [s[: len(metrics)] for s in summary["skipped"] if "metrics" in s] == [metrics]
    assert [s[: len(nothing)] for s in summary["skipped"] if "not-a-workspace" in s] == [nothing]
    assert f"perstack-audit: skipped {metrics}" in result.stderr
    assert f"perstack-audit: skipped {nothing}" in result.stderr
    assert "quarantined" not in result.stderr  # passed over on purpose, not a failure


def test_an_empty_data_option_or_one_under_a_file_is_refused_and_writes_nothing(
    tmp_path: Path,
) -> None:
    stream = write_jsonl(tmp_path / "in" / "s.jsonl", RunBuilder(job="j", run="r").start().events)
    work = tmp_path / "work"
    work.mkdir()
    # An unset shell variable: `--data "$AUDIT"` would have made the working folder a dataset.
    empty = audit("--data", "", "ingest", str(stream), cwd=work)
    assert empty.returncode == 2 and "--data: is empty" in empty.stderr
    assert list(work.iterdir()) == []
    afile = tmp_path / "afile"
    afile.write_text("x")
    under = audit("--data", str(afile / "sub"), "ingest", str(stream))
    assert under.returncode == 2, under.stderr
    assert f"{afile} is a file, not a folder" in under.stderr and "Errno" not in under.stderr


def test_the_python_api_takes_paths_as_text(tmp_path: Path) -> None:
    from analytics import ingest, open_catalog, run

    stream = write_jsonl(tmp_path / "s.jsonl", RunBuilder(job="j", run="r").start().events)
    report = ingest([str(stream)], str(tmp_path / "data"))
    assert report.rows["events"] == 2
    con = open_catalog(str(tmp_path / "data"))
    try:
        assert run(con, "SELECT count(*) FROM events").rows == [(2,)]
    finally:
        con.close()
