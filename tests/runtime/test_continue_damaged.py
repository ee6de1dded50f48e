"""Continuing a Job whose files were damaged: a clear error naming the file and what to
do (exit 2), never a traceback; a bad checkpoint that cannot be the latest does not block
the Job."""

import os
from pathlib import Path

import pytest

from tests.runtime.harness import Project

LOOK = {"tool_use": [{"name": "listDirectory", "input": {"path": "."}}]}
DONE = {"text": "done"}


def checkpoint_files(project: Project) -> list[Path]:
    """The job's checkpoint files, the one written last last."""
    paths = project.workspace.glob("perstack/jobs/*/checkpoints/*.json")
    return sorted(paths, key=lambda p: p.stat().st_mtime_ns)


def damage(path: Path, content: bytes) -> None:
    """Overwrite ``path``, keeping when it was written (as a disk fault would)."""
    times = path.stat()
    path.write_bytes(content)
    os.utime(path, ns=(times.st_atime_ns, times.st_mtime_ns))


def assert_clear_usage_error(result_code: int, stderr: str) -> None:
    assert result_code == 2
    assert stderr.startswith("perstack: ") and "Traceback" not in stderr
    assert "errors.pydantic.dev" not in stderr and stderr.count("\n") == 1


def test_a_truncated_latest_checkpoint_is_named_with_the_ways_out(project: Project) -> None:
    assert project.run([LOOK, LOOK, DONE]).code == 0
    latest = checkpoint_files(project)[-1]
    damage(latest, latest.read_bytes()[:50])
    result = project.run([DONE], "--continue", query="go on")
    assert_clear_usage_error(result.code, result.stderr)
    assert f"{latest} is not a valid checkpoint (Invalid JSON" in result.stderr
    assert "remove it to continue from" in result.stderr and "--resume-from" in result.stderr


def test_the_ways_out_of_a_damaged_latest_checkpoint_work(project: Project) -> None:
    assert project.run([LOOK, LOOK, DONE]).code == 0
    latest = checkpoint_files(project)[-1]
    latest.write_text("")  # emptied now: written after every other checkpoint
    refused = project.run([DONE], "--continue", query="go on")
    resume_from = refused.stderr.rsplit("--resume-from ", 1)[1].split()[0]
    job_id = latest.parent.parent.name
    args = ("--continue-job", job_id, "--resume-from", resume_from)
    assert project.run([DONE], *args, query="go on").code == 0
    latest.unlink()
    assert project.run([DONE], "--continue", query="go on").code == 0


def test_a_damaged_older_checkpoint_does_not_block_the_job(
    project: Project, caplog: pytest.LogCaptureFixture
) -> None:
    assert project.run([LOOK, LOOK, DONE]).code == 0
    oldest = checkpoint_files(project)[0]
    oldest.write_bytes(b"\x00\xff garbage")  # even written just now: job.json says the rest
    result = project.run([{"text": "again"}], "--continue", query="go on")
    assert result.code == 0, result.stderr
    assert f"skipping a checkpoint that cannot be read: {oldest}" in caplog.text
    resumed = result.of("startRun")[0].initial_checkpoint
    assert resumed.status == "completed"


@pytest.mark.parametrize("content", [b"{", b"", b'{"id": "x"}', b"[]"])
def test_a_damaged_job_file_is_named_with_what_to_do(project: Project, content: bytes) -> None:
    assert project.run([LOOK, DONE]).code == 0
    (job_file,) = project.workspace.glob("perstack/jobs/*/job.json")
    job_file.write_bytes(content)
    result = project.run([DONE], "--continue", query="go on")
    assert_clear_usage_error(result.code, result.stderr)
    assert f"{job_file} is not a valid job file (" in result.stderr
    assert "restore the file, or start a new job" in result.stderr


def test_a_damaged_checkpoint_named_by_resume_from_is_refused_clearly(project: Project) -> None:
    first = project.run([LOOK, LOOK, DONE])
    named = first.of("continueToNextStep")[0].checkpoint
    (path,) = project.workspace.glob(f"perstack/jobs/*/checkpoints/{named.id}.json")
    path.write_text('{"id": ')
    args = ("--continue-job", named.job_id, "--resume-from", named.id)
    result = project.run([DONE], *args, query="go on")
    assert_clear_usage_error(result.code, result.stderr)
    assert f"--resume-from {named.id}: {path} is not a valid checkpoint" in result.stderr


def test_a_folder_named_like_a_checkpoint_is_skipped_and_named(
    project: Project, caplog: pytest.LogCaptureFixture
) -> None:
    assert project.run([LOOK, DONE]).code == 0
    folder = checkpoint_files(project)[0].parent / "evil.json"
    folder.mkdir()
    result = project.run([{"text": "again"}], "--continue", query="go on")
    assert result.code == 0, result.stderr
    assert f"{folder} is not a regular file but a folder" in caplog.text
