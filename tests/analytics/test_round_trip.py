"""From `perstack run` on the example to an audit query answering what happened."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from analytics import ingest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "support-report"
PERSTACK = Path(sys.executable).parent / "perstack"
# The scripted model answers at once; the run takes a few seconds of MCP start-up.
RUN_TIMEOUT_S = 180

Query = Callable[..., list[dict[str, Any]]]


def test_perstack_run_of_the_example_ingests_and_answers(
    tmp_path: Path, data_dir: Path, query: Query
) -> None:
    workspace = tmp_path / "ws"
    shutil.copytree(EXAMPLE / "workspace", workspace)
    done = subprocess.run(
        [
            str(PERSTACK),
            "run",
            "support-analyst",
            "Triage the tickets",
            "--config",
            str(EXAMPLE / "perstack.toml"),
            "--workspace",
            str(workspace),
            "--provider",
            "scripted",
            "--script",
            str(EXAMPLE / "script.json"),
        ],
        capture_output=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    stdout = tmp_path / "stdout.jsonl"
    stdout.write_bytes(done.stdout)
    ids = {json.loads(line)["id"] for line in done.stdout.decode().splitlines() if line}

    ingest([stdout, workspace], data_dir, user="carol")

    assert query("SELECT count(*) AS n, count(DISTINCT event_id) AS d FROM events") == [
        {"n": len(ids), "d": len(ids)}
    ]
    (run,) = query("runs_by_outcome")
    assert (run["expert_key"], run["outcome"], run["runs"]) == ("support-analyst", "completed", 1)
    (job,) = query("SELECT status, coordinator_expert_key, user_name, runs FROM jobs")
    assert job == {
        "status": "completed",
        "coordinator_expert_key": "support-analyst",
        "user_name": "carol",
        "runs": 1,
    }
    tools = {r["tool_name"]: r for r in query("tool_stats")}
    assert "attemptCompletion" in tools
    assert all(r["pending"] == 0 for r in tools.values())
    assert query("SELECT count(*) AS n FROM quarantine") == [{"n": 0}]
    (cost,) = query("tokens_and_cost")
    assert cost["user_name"] == "carol" and cost["total_tokens"] > 0


def test_event_files_that_point_at_checkpoints_ingest_whole_checkpoints_and_messages(
    tmp_path: Path, data_dir: Path, query: Query
) -> None:
    """Our event files leave a history a checkpoint file holds to that file (elidedMessages):
    a workspace ingested alone still gives every checkpoint whole, once, and every message."""
    workspace = tmp_path / "ws"
    shutil.copytree(EXAMPLE / "workspace", workspace)
    args = ["--config", str(EXAMPLE / "perstack.toml"), "--workspace", str(workspace)]
    script = ["--provider", "scripted", "--script", str(EXAMPLE / "script.json")]
    command = [str(PERSTACK), "run", "support-analyst", "Triage the tickets", *args, *script]
    done = subprocess.run(command, capture_output=True, timeout=RUN_TIMEOUT_S, check=False)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    files = {
        json.loads(p.read_bytes())["id"]: json.loads(p.read_bytes())
        for p in workspace.glob("perstack/jobs/*/checkpoints/*.json")
    }
    assert any(b"elidedMessages" in p.read_bytes() for p in workspace.rglob("event-*.json"))

    ingest([workspace], data_dir)

    rows = query("SELECT checkpoint_id, message_ids FROM checkpoints WHERE status != 'init'")
    assert {r["checkpoint_id"]: len(r["message_ids"]) for r in rows} == {
        id_: len(c["messages"]) for id_, c in files.items()
    }
    versions = query("SELECT count(*) AS n FROM checkpoint_versions WHERE status != 'init'")
    assert versions == [{"n": len(files)}]
    last = max(files.values(), key=lambda c: len(c["messages"]))
    stored = {r["message_id"] for r in query("SELECT message_id FROM messages")}
    assert {m["id"] for m in last["messages"]} <= stored
