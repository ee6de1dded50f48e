"""The reference TypeScript runtime's recorded output ingests, and adds up."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from analytics import ingest
from tests.reference import RECORDINGS

SAMPLES = RECORDINGS
Query = Callable[..., list[dict[str, Any]]]

pytestmark = pytest.mark.skipif(not SAMPLES.is_dir(), reason=f"{SAMPLES} is not here")


@pytest.fixture
def samples(tmp_path: Path, data_dir: Path) -> Path:
    copy = tmp_path / "perstack-ts"
    shutil.copytree(SAMPLES, copy)
    ingest([copy], data_dir, user="ref")
    return copy


def _event_ids(root: Path) -> set[str]:
    ids = set()
    for path in root.rglob("stdout*.jsonl"):
        ids |= {json.loads(line)["id"] for line in path.read_text().splitlines() if line}
    for path in root.rglob("event-*.json"):
        obj, _ = json.JSONDecoder().raw_decode(path.read_text())
        ids.add(obj["id"])
    return ids


def test_every_reference_event_lands_once(samples: Path, query: Query) -> None:
    expected = _event_ids(samples)
    rows = query("SELECT count(*) AS n, count(DISTINCT event_id) AS d FROM events")
    assert rows == [{"n": len(expected), "d": len(expected)}]


def test_only_the_overwritten_event_file_tail_is_quarantined(samples: Path, query: Query) -> None:
    (row,) = query("SELECT source_file, reason FROM quarantine")
    assert row["source_file"].endswith("event-1796320939946-4-streamRunResult.json")
    assert row["reason"].startswith("trailing bytes")


def test_run_tokens_match_the_final_checkpoint_of_single_runs(samples: Path, query: Query) -> None:
    rows = query(
        "SELECT r.run_id, r.total_tokens, c.total_tokens AS checkpoint_tokens FROM runs r "
        "JOIN checkpoints c ON c.run_id = r.run_id AND c.status = 'completed' "
        "WHERE r.expert_key NOT IN ('coordinator', 'helper')"
    )
    assert len(rows) >= 10
    assert all(r["total_tokens"] == r["checkpoint_tokens"] for r in rows), rows


def test_delegation_job_tokens_match_the_coordinator_final_checkpoint(
    samples: Path, query: Query
) -> None:
    rows = query(
        "SELECT j.total_tokens, max(c.total_tokens) AS final FROM jobs j "
        "JOIN checkpoints c USING (job_id) WHERE j.coordinator_expert_key = 'coordinator' "
        "GROUP BY j.job_id, j.total_tokens"
    )
    assert len(rows) == 2
    assert all(r["total_tokens"] == r["final"] == 474 for r in rows)


def test_reference_runs_by_outcome(samples: Path, query: Query) -> None:
    got = {(r["expert_key"], r["outcome"]): r["runs"] for r in query("runs_by_outcome")}
    assert got[("coordinator", "stoppedByDelegate")] == 2
    assert got[("file-worker", "completed")] == 4
    assert all(outcome != "unfinished" for _, outcome in got)


def test_reference_tool_calls_all_have_results(samples: Path, query: Query) -> None:
    rows = query("SELECT tool_name, outcome, duration_ms FROM tool_calls")
    assert {r["outcome"] for r in rows} == {"ok"}
    assert all(r["duration_ms"] >= 0 for r in rows)
    assert {"writeTextFile", "readTextFile", "listDirectory", "helper"} <= {
        r["tool_name"] for r in rows
    }


def test_the_retry_of_the_stream_error_scenario_is_counted(samples: Path, query: Query) -> None:
    rows = query("SELECT sum(retries) AS n FROM generations WHERE expert_key = 'greeter'")
    assert rows[0]["n"] >= 2
