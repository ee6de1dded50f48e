"""The example Expert, run by `perstack run` inside the hardened container from the
launcher: events followed live, checkpoints left in the per-user workspace."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from flows.launcher import LaunchSpec, Limits, Outcome, launch, user_workspace

pytestmark = pytest.mark.docker

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "support-report"


def prepare_workspace(root: Path, user: str) -> Path:
    workspace = user_workspace(root, user)
    shutil.copytree(EXAMPLE / "workspace", workspace)
    # The scripted model's replies: the one file the test adds to the Expert's workspace.
    shutil.copy(EXAMPLE / "script.json", workspace / ".script.json")
    return workspace


def test_the_example_expert_runs_hardened_with_events_followed_and_checkpoints_kept(
    docker_client, session_id, tmp_path, leftovers
):
    workspace = prepare_workspace(tmp_path / "workspaces", "alice")
    received: list[dict] = []
    spec = LaunchSpec.for_expert(
        "support-analyst",
        "Triage the tickets",
        runtime_args=("--provider", "scripted", "--script", "/workspace/.script.json"),
        workspace=workspace,
        capture_dir=tmp_path / "captures",
        labels={"test.session": session_id},
        limits=Limits(wall_clock_seconds=120),
    )
    result = launch(spec, on_event=received.append, client=docker_client)

    assert result.outcome is Outcome.COMPLETED, result.captured.stderr.read_text()[-2000:]
    types = [e["type"] for e in received]
    assert types[:2] == ["dockerContainerStatus", "dockerContainerStatus"]  # starting, running
    assert "startRun" in types and "completeRun" in types
    assert types.index("startRun") < types.index("completeRun")
    assert types[-1] == "dockerContainerStatus"
    assert {e["jobId"] for e in received} == {spec.job_id}
    assert result.job_id == spec.job_id
    written = result.captured.events.read_text().splitlines()
    assert [json.loads(line)["type"] for line in written] == types

    job_dir = workspace / "perstack" / "jobs" / spec.job_id
    checkpoints = [json.loads(p.read_text()) for p in (job_dir / "checkpoints").glob("*.json")]
    assert checkpoints and {c["jobId"] for c in checkpoints} == {spec.job_id}
    assert any(c["status"] == "completed" for c in checkpoints)
    assert (workspace / "report.md").read_text().startswith("# Support triage")
    assert leftovers() == []
