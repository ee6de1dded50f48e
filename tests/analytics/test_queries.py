"""Each named audit query answers correctly on a handmade dataset in real DuckDB files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from analytics import ingest, named_queries
from analytics.errors import PricesFileError, UnknownQueryError

from .runs import RunBuilder, write_jsonl

Query = Callable[..., list[dict[str, Any]]]


@pytest.fixture
def audited(tmp_path: Path, data_dir: Path) -> Path:
    """Four runs: two completed (writer, reviewer), one failed, one stopped by maxSteps."""
    ok = RunBuilder(job="j1", run="ok", expert="writer").start()
    ok.tool_step(
        1,
        [("@perstack/base", "readTextFile", 30, False), ("@perstack/base", "exec", 400, True)],
        llm_ms=120,
        tokens=(1000, 100),
    )
    ok.complete(2, llm_ms=80, tokens=(2000, 200))
    failed = RunBuilder(job="j2", run="failed", expert="writer", ts=ok.ts + 1000).start()
    failed.fail(1, "model overloaded, gave up")
    capped = RunBuilder(job="j3", run="capped", expert="reviewer", ts=ok.ts + 5000)
    capped.start(model="claude-haiku-4-5", max_steps=2)
    capped.tool_step(1, [("@perstack/base", "readTextFile", 10, False)], tokens=(500, 50))
    capped.tool_step(2, [("@perstack/base", "readTextFile", 20, False)], tokens=(500, 50))
    capped.max_steps(2)
    other = RunBuilder(job="j4", run="other", expert="reviewer", ts=ok.ts + 9000).start()
    other.complete(1, tokens=(10, 10))
    ingest([write_jsonl(tmp_path / "u1.jsonl", ok.events + failed.events)], data_dir, user="u1")
    ingest([write_jsonl(tmp_path / "u2.jsonl", capped.events + other.events)], data_dir, user="u2")
    return data_dir


def test_runs_by_outcome_per_expert(audited: Path, query: Query) -> None:
    rows = query("runs_by_outcome")
    got = {(r["expert_key"], r["outcome"]): r["runs"] for r in rows}
    assert got == {
        ("writer", "completed"): 1,
        ("writer", "stoppedByError"): 1,
        ("reviewer", "stoppedByExceededMaxSteps"): 1,
        ("reviewer", "completed"): 1,
    }


def test_failures_show_the_error_and_the_last_retry_reason(audited: Path, query: Query) -> None:
    (row,) = query("failures")
    assert (row["run_id"], row["user_name"], row["error_name"]) == ("failed", "u1", "APIError")
    assert row["error_message"] == "model overloaded, gave up"
    assert row["last_retry_reason"] == "overloaded"


def test_tokens_and_cost_use_the_configured_prices(
    audited: Path, query: Query, tmp_path: Path
) -> None:
    prices = tmp_path / "prices.csv"
    prices.write_text(
        "model,input_usd_per_mtok,output_usd_per_mtok,cached_input_usd_per_mtok\n"
        "claude-sonnet,1,10,0.1\nclaude-haiku-4-5,2,20,0.2\n"
    )
    rows = {
        (r["user_name"], r["expert_key"]): r
        for r in query("tokens_and_cost", prices)
        if r["model"] == "claude-sonnet-4-5"
    }
    writer = rows[("u1", "writer")]
    assert (writer["input_tokens"], writer["output_tokens"]) == (3000, 300)
    assert writer["cost_usd"] == pytest.approx((3000 * 1 + 300 * 10) / 1e6)
    assert str(writer["day"]) == "2023-11-14"
    by_model = {(r["expert_key"], r["model"]): r for r in query("tokens_and_cost", prices)}
    haiku = by_model[("reviewer", "claude-haiku-4-5")]
    assert haiku["cost_usd"] == pytest.approx((1000 * 2 + 100 * 20) / 1e6)
    default = {(r["user_name"], r["expert_key"]): r for r in query("tokens_and_cost")}
    assert default[("u1", "writer")]["cost_usd"] == pytest.approx((3000 * 3 + 300 * 15) / 1e6)


def test_tool_stats_count_errors_and_latency_percentiles(audited: Path, query: Query) -> None:
    rows = {r["tool_name"]: r for r in query("tool_stats")}
    assert (rows["exec"]["calls"], rows["exec"]["errors"], rows["exec"]["error_rate"]) == (
        1,
        1,
        1.0,
    )
    read = rows["readTextFile"]
    assert (read["calls"], read["errors"]) == (3, 0)
    assert read["p50_ms"] == 20
    assert read["max_ms"] == 30


def test_slowest_steps_come_first(audited: Path, query: Query) -> None:
    rows = query("slowest_steps")
    durations = [r["step_ms"] for r in rows]
    assert durations == sorted(durations, reverse=True)
    assert rows[0]["run_id"] == "ok" and rows[0]["step_number"] == 1
    assert rows[0]["step_ms"] == 120 + 30 + 400  # generation, then both tools


def test_runs_stopped_by_max_steps(audited: Path, query: Query) -> None:
    (row,) = query("max_steps_stops")
    assert (row["run_id"], row["steps"], row["max_steps"], row["user_name"]) == (
        "capped",
        2,
        2,
        "u2",
    )


def test_time_to_first_llm_call_per_run(audited: Path, query: Query) -> None:
    rows = {r["run_id"]: r for r in query("time_to_first_llm_call")}
    assert set(rows) == {"ok", "failed", "capped", "other"}
    # startRun is 10 ms after initializeRuntime, startGeneration 5 ms after startRun.
    assert rows["ok"]["ms_to_first_llm_call"] == 5
    assert rows["ok"]["ms_from_runtime_start_to_first_llm_call"] == 15


def test_generations_have_latency_retries_and_usage(audited: Path, query: Query) -> None:
    rows = query(
        "SELECT run_id, step_number, latency_ms, retries, input_tokens "
        "FROM generations ORDER BY run_id, step_number"
    )
    got = {(r["run_id"], r["step_number"]): r for r in rows}
    assert got[("ok", 1)]["latency_ms"] == 120
    assert got[("ok", 2)]["input_tokens"] == 2000
    assert got[("failed", 1)]["retries"] == 1


def test_every_named_query_runs_on_an_empty_dataset(query: Query) -> None:
    for name in named_queries():
        assert query(name) == [], name


def test_an_unknown_query_name_is_refused_with_the_known_names(query: Query) -> None:
    with pytest.raises(UnknownQueryError, match="runs_by_outcome"):
        query("runs_by_outcom")


def test_a_prices_file_without_the_columns_is_refused(audited: Path, tmp_path: Path) -> None:
    from analytics import Dataset, open_catalog

    bad = tmp_path / "bad.csv"
    bad.write_text("model,price\nx,1\n")
    with pytest.raises(PricesFileError, match="missing columns"):
        open_catalog(Dataset(audited), bad)


def test_the_dataset_own_prices_file_is_used_from_the_next_query_on(
    audited: Path, query: Query, tmp_path: Path
) -> None:
    (audited / "prices.csv").write_text(
        "model,input_usd_per_mtok,output_usd_per_mtok,cached_input_usd_per_mtok\n"
        "claude-sonnet-4-5,0,1000000,0\n"
    )
    rows = [r for r in query("tokens_and_cost") if r["expert_key"] == "writer"]
    assert rows[0]["cost_usd"] == pytest.approx(300.0)
    # A prices file the catalog could not load is refused before the ingest writes a row.
    (audited / "prices.csv").write_text(HEADER + "claude-x,-1,15,0.3\n")
    stream = write_jsonl(
        tmp_path / "more.jsonl", [{"type": "startRun", "id": "new", "timestamp": 1}]
    )
    with pytest.raises(PricesFileError, match="below 0"):
        ingest([stream], audited)
    (audited / "prices.csv").unlink()
    assert query("SELECT count(*) AS n FROM events WHERE event_id = 'new'") == [{"n": 0}]


HEADER = "model,input_usd_per_mtok,output_usd_per_mtok,cached_input_usd_per_mtok\n"


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (
            "p.csv",
            HEADER + "claude-x,3,abc,0.3\n",
            "p.csv: line 2 (model 'claude-x'): output_usd_per_mtok is 'abc', not a number;",
        ),
        (
            "p.csv",
            HEADER + "claude-x,-3,15,0.3\n",
            "p.csv: line 2 (model 'claude-x'): input_usd_per_mtok is -3, below 0;",
        ),
        (
            "p.csv",
            HEADER + "claude-x,nan,15,0.3\n",
            "p.csv: line 2 (model 'claude-x'): input_usd_per_mtok is 'nan', not a number;",
        ),
        (
            "p.csv",
            HEADER.rstrip() + ",input_usd\nclaude-x,3,15,0.3,1\n",
            "p.csv: unknown column 'input_usd' (did you mean 'input_usd_per_mtok'?);",
        ),
        (
            "p.json",
            '[{"model": "claude-x", "input_usd_per_mtok": null, "output_usd_per_mtok": 1}]',
            "p.json: item 1 (model 'claude-x'): input_usd_per_mtok is null, not a number;",
        ),
        (
            "p.json",
            '[{"model": "claude-x", "input_usd_per_mtok": 3, "output_usd_per_mtok": 15, '
            '"cached_input_usd_per_mtok": 0.3, "output_usd": 1}]',
            "p.json: item 1 (model 'claude-x'): unknown key 'output_usd' "
            "(did you mean 'output_usd_per_mtok'?);",
        ),
        (
            "p.json",
            '[{"model": "claude-x", "input_usd_per_mtok": "3", "output_usd_per_mtok": 15, '
            '"cached_input_usd_per_mtok": 0.3}]',
            "p.json: item 1 (model 'claude-x'): input_usd_per_mtok is '3', not a number;",
        ),
        (
            "p.json",
            '[{"model": "claude-x", "input_usd_per_mtok": true, "output_usd_per_mtok": 15, '
            '"cached_input_usd_per_mtok": 0.3}]',
            "p.json: item 1 (model 'claude-x'): input_usd_per_mtok is true, not a number;",
        ),
        ("p.json", '[{"model": "claude-x",', "p.json: invalid JSON at line 1 column"),
        ("p.json", '{"model": "x"}', "p.json: not a JSON list of objects"),
        ("p.json", '["claude-x"]', "p.json: item 1 is str, not an object"),
        (
            "p.json",
            '[{"model": 7, "input_usd_per_mtok": 1, "output_usd_per_mtok": 1, '
            '"cached_input_usd_per_mtok": 1}]',
            "p.json: item 1: model is 7, not a model name",
        ),
    ],
)
def test_a_bad_prices_file_names_the_file_the_place_and_the_fix(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    from analytics.catalog import read_prices
    from analytics.errors import PricesFileError

    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(PricesFileError) as raised:
        read_prices(path)
    assert str(raised.value).startswith(f"{tmp_path}/{message}"), str(raised.value)
    assert "expected" in str(raised.value)


def test_an_empty_cached_input_price_counts_as_zero(tmp_path: Path) -> None:
    from analytics.catalog import read_prices

    path = tmp_path / "p.csv"
    path.write_text(HEADER + "claude-x,3,15,\n")
    assert read_prices(path) == [("claude-x", 3.0, 15.0, 0.0)]


def test_token_sums_are_exact_64_bit_integers_past_32_bits(
    tmp_path: Path, data_dir: Path, query: Query
) -> None:
    big = 3_000_000_123  # past INT32, and a sum past 2**33
    builder = RunBuilder(job="j", run="r").start(model="claude-sonnet-4-5")
    builder.tool_step(1, [("s", "t", 1, False)], tokens=(big, big))
    builder.tool_step(2, [("s", "t", 1, False)], tokens=(big, big))
    builder.complete(3, tokens=(big, 1))
    ingest([write_jsonl(tmp_path / "a.jsonl", builder.events)], data_dir)
    expected_input = 3 * big
    for view in ("runs", "runs_live"):
        (row,) = query(
            f"SELECT input_tokens, total_tokens, typeof(input_tokens) AS t, "
            f"typeof(total_tokens) AS tt FROM {view}"
        )
        assert row == {
            "input_tokens": expected_input,
            "total_tokens": 2 * (2 * big) + (big + 1),
            "t": "BIGINT",
            "tt": "BIGINT",
        }, view
    for view in ("generations", "generations_live"):
        types = query(
            f"SELECT DISTINCT typeof(input_tokens) AS t, typeof(total_tokens) AS tt FROM {view}"
        )
        assert types == [{"t": "BIGINT", "tt": "BIGINT"}], view
    (job,) = query("SELECT total_tokens, typeof(total_tokens) AS t FROM jobs")
    assert job["t"] == "BIGINT"
    (cost,) = query("tokens_and_cost")
    for column in ("input_tokens", "output_tokens", "total_tokens"):
        assert isinstance(cost[column], int), column  # a float prints as 9.00000e+09
    assert cost["input_tokens"] == expected_input


def test_a_price_model_prefix_matches_literally(
    audited: Path, query: Query, tmp_path: Path
) -> None:
    # Regression: prefixes were matched with LIKE, so `_` matched any character and a
    # longer prefix meant for another model priced this one at 1000 USD per million.
    prices = tmp_path / "prices.csv"
    prices.write_text(HEADER + "claude-sonnet,1,10,0.1\nclaude_sonnet_4_,1000,1000,1000\n")
    rows = {
        (r["user_name"], r["expert_key"]): r
        for r in query("tokens_and_cost", prices)
        if r["model"] == "claude-sonnet-4-5"
    }
    assert rows[("u1", "writer")]["cost_usd"] == pytest.approx((3000 * 1 + 300 * 10) / 1e6)


def test_a_model_priced_twice_is_refused_and_a_byte_order_mark_is_not(tmp_path: Path) -> None:
    from analytics.catalog import read_prices
    from analytics.errors import PricesFileError

    twice = tmp_path / "p.csv"
    twice.write_text(HEADER + "claude-x,1,1,1\nclaude-y,2,2,2\nclaude-x,3,15,0.3\n")
    twice_given = "model 'claude-x' is given twice .price entries 1 and 3"
    with pytest.raises(PricesFileError, match=twice_given):
        read_prices(twice)
    marked = tmp_path / "excel.csv"
    marked.write_text("\ufeff" + HEADER + "claude-x,3,15,0.3\n", encoding="utf-8")
    assert read_prices(marked) == [("claude-x", 3.0, 15.0, 0.3)]
