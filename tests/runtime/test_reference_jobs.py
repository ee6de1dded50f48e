"""Continuing jobs the reference runtime started: they have checkpoints but no job.json."""

import json
import shutil
from pathlib import Path

import pytest

from runtime.checkpoint import Job
from runtime.cli import main
from runtime.jobs import derive_job
from runtime.storage import WorkspaceStore
from tests.reference import RECORDINGS

SCENARIO = RECORDINGS / "02-multi-step-files" / "perstack-cli"
JOB_ID = "rm53yztqwdjuam9uzu91vt26"


def _reference_workspace(tmp_path: Path) -> Path:
    workspace = tmp_path / "workspace"
    shutil.copytree(SCENARIO / "disk", workspace)
    assert not (workspace / "perstack" / "jobs" / JOB_ID / "job.json").exists()
    return workspace


def test_a_job_without_job_json_is_derived_from_its_checkpoints(tmp_path: Path) -> None:
    job = derive_job(WorkspaceStore(_reference_workspace(tmp_path)), JOB_ID)
    assert job is not None
    assert job.coordinator_expert_key == "file-worker"
    assert job.status == "completed"
    assert job.total_steps == 4
    assert job.usage.input_tokens > 0  # the reference's last checkpoint counts the job
    assert job.started_at < 2_000_000_000_000  # from an event file's name, in ms


def test_a_job_the_reference_started_can_be_continued(tmp_path: Path) -> None:
    # Regression (compat K4): `--continue` said ".../job.json does not exist", exit 2.
    workspace = _reference_workspace(tmp_path)
    script = tmp_path / "script.json"
    script.write_text(json.dumps([{"text": "Continued."}]))
    args = ["run", "file-worker", "go on", "--config", str(SCENARIO / "perstack.toml")]
    args += ["--workspace", str(workspace), "--provider", "scripted", "--script", str(script)]
    assert main([*args, "--continue"]) == 0
    job_file = workspace / "perstack" / "jobs" / JOB_ID / "job.json"
    job = Job.model_validate_json(job_file.read_bytes())
    assert job.status == "completed"
    assert job.coordinator_expert_key == "file-worker"
    assert job.total_steps == 5  # the reference's 4 steps, then ours


def test_a_job_folder_with_neither_job_json_nor_checkpoints_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workspace = tmp_path / "workspace"
    (workspace / "perstack" / "jobs" / "empty").mkdir(parents=True)
    config = tmp_path / "perstack.toml"
    config.write_text('[experts."w"]\ninstruction = "x"\n')
    script = tmp_path / "script.json"
    script.write_text("[]")
    args = ["run", "w", "go on", "--config", str(config), "--workspace", str(workspace)]
    args += ["--provider", "scripted", "--script", str(script), "--continue-job", "empty"]
    assert main(args) == 2
    assert "has neither a job.json nor a checkpoint" in capsys.readouterr().err
