"""The runs, generations and tool_calls snapshots are updated part by part at each ingest;
whatever the order in which a job's events arrive, they equal the live views."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from analytics import ingest

from .runs import RunBuilder, write_jsonl

Query = Callable[..., list[dict[str, Any]]]
LIVE = {
    "runs": "SELECT * FROM runs_live",
    "generations": "SELECT * FROM generations_live",
    "tool_calls": "SELECT * EXCLUDE (args, result, result_text) FROM tool_calls_live",
}


def job_stream(rnd: random.Random, job: str) -> list[dict[str, Any]]:
    """A lead run and two delegates (no runtime start of their own), their events by time,
    some without a jobId, tool call ids partly shared with other jobs."""
    events: list[dict[str, Any]] = []
    for number in range(3):
        run = f"{job}-r{number}"
        day = rnd.randint(0, 2) * 86_400_000
        builder = RunBuilder(job=job, run=run, ts=1_700_000_000_000 + day + number * 1000)
        builder.start(model=f"model-{job}", max_steps=10 + number)
        steps = rnd.randint(1, 3)
        for step in range(1, steps + 1):
            builder.tool_step(
                step, [("@perstack/base", "exec", rnd.randint(1, 9), rnd.random() < 0.3)]
            )
        if rnd.random() < 0.5:
            builder.complete(steps + 1)
        else:
            builder.fail(steps + 1, "boom")
        for event in builder.events:
            for call in event.get("toolCalls", []) + event.get("toolResults", []):
                call["id"] = call["id"].replace(run, "shared")
            if rnd.random() < 0.1 and event["type"] != "initializeRuntime":
                del event["jobId"]
        if number > 0:
            builder.events = [e for e in builder.events if e["type"] != "initializeRuntime"]
        events += builder.events
    return sorted(events, key=lambda e: e["timestamp"])


def differing(query: Query) -> dict[str, int]:
    counts = {}
    for name, live in LIVE.items():
        rows = query(
            f"SELECT count(*) AS n FROM ((SELECT * FROM {name} EXCEPT ALL {live}) "
            f"UNION ALL ({live} EXCEPT ALL SELECT * FROM {name}))"
        )
        counts[name] = rows[0]["n"]
    return counts


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_snapshots_equal_the_live_views_after_every_ingest_in_any_order(
    seed: int, tmp_path: Path, data_dir: Path, query: Query
) -> None:
    rnd = random.Random(seed)
    streams = {job: job_stream(rnd, job) for job in ("ja", "jb", "jc")}
    written = dict.fromkeys(streams, 0)
    equal = dict.fromkeys(LIVE, 0)
    while any(written[job] < len(events) for job, events in streams.items()):
        paths = []
        for job, events in streams.items():
            if written[job] < len(events) and rnd.random() < 0.7:
                written[job] = min(len(events), written[job] + rnd.randint(1, 12))
                paths.append(write_jsonl(tmp_path / "in" / f"{job}.jsonl", events[: written[job]]))
        if rnd.random() < 0.3:  # the workspace's event files of the same events
            for job, events in streams.items():
                for index, event in enumerate(events[: written[job]]):
                    folder = tmp_path / "ws" / "perstack" / "jobs" / job / "runs" / event["runId"]
                    folder.mkdir(parents=True, exist_ok=True)
                    name = f"event-{event['timestamp']}-{index}-{event['type']}.json"
                    (folder / name).write_text(json.dumps(event))
            paths.append(tmp_path / "ws")
        refresh = rnd.random() < 0.7
        ingest(paths, data_dir, refresh=refresh, user=rnd.choice([None, "ann", "bob"]))
        if refresh:
            assert differing(query) == equal
    ingest([], data_dir)
    assert differing(query) == equal
    assert query("SELECT count(*) AS n FROM runs") == [{"n": 9}]
