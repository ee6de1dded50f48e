import json
import subprocess
from pathlib import Path

from runtime.checkpoint import Checkpoint, Job
from runtime.storage import WorkspaceStore
from tests.runtime.harness import Project

DONE = {"text": "done"}


def test_events_with_the_same_millisecond_step_and_type_all_survive(tmp_path: Path) -> None:
    store = WorkspaceStore(tmp_path)
    paths = [
        store.write_event("job", "run", 1700000000123, 2, "streamRunResult", b'{"n":%d}' % n)
        for n in range(3)
    ]
    assert [p.name for p in paths] == [
        "event-1700000000123-2-streamRunResult.json",
        "event-1700000000123-2-streamRunResult-1.json",
        "event-1700000000123-2-streamRunResult-2.json",
    ]
    assert sorted(json.loads(p.read_text())["n"] for p in paths) == [0, 1, 2]
    leftovers = [p for p in paths[0].parent.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_checkpoints_and_jobs_round_trip_in_the_reference_layout(tmp_path: Path) -> None:
    store = WorkspaceStore(tmp_path)
    checkpoint = Checkpoint(
        job_id="job",
        run_id="run",
        status="proceeding",
        step_number=1,
        expert={"key": "a", "name": "a", "version": "1.0.0"},
    )
    store.write_checkpoint(checkpoint)
    assert (tmp_path / "perstack/jobs/job/checkpoints" / f"{checkpoint.id}.json").is_file()
    assert store.read_checkpoint("job", checkpoint.id) == checkpoint
    store.write_job(Job(id="job", status="running", coordinator_expert_key="a", started_at=1))
    assert store.read_job("job").status == "running"
    assert store.latest_job_id() == "job"


def test_ids_that_could_leave_the_jobs_folder_are_refused(tmp_path: Path) -> None:
    import pytest

    from runtime.errors import StorageError

    store = WorkspaceStore(tmp_path / "ws")
    for bad in ("../../escape", "/tmp/abs", "a/b", ".hidden", "", "x" * 200):
        with pytest.raises(StorageError, match="not a valid id"):
            store.job_dir(bad)
    with pytest.raises(StorageError, match="not a valid id"):
        store.read_checkpoint("job", "../job")
    assert not (tmp_path / "escape").exists()


def test_a_link_in_place_of_the_runtime_folder_is_refused(tmp_path: Path) -> None:
    import pytest

    from runtime.errors import StorageError

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "perstack").symlink_to(elsewhere)
    store = WorkspaceStore(workspace)
    with pytest.raises(StorageError, match="symbolic link"):
        store.write_job(Job(id="job", status="running", coordinator_expert_key="a", started_at=1))
    assert list(elsewhere.iterdir()) == []


def sh(command: str) -> dict[str, object]:
    args = {"command": "sh", "args": ["-c", command], "env": {}, "cwd": "."}
    return {"tool_use": [{"name": "exec", "input": {**args, "stdout": True, "stderr": True}}]}


LOOK = {"tool_use": [{"name": "listDirectory", "input": {"path": "."}}]}


def finish(process: subprocess.Popen[str], timeout: float = 30) -> tuple[str, str]:
    """Its output; a process that hangs is killed and fails the test."""
    try:
        return process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise AssertionError(f"{process.args} hung for {timeout} s") from None


def test_a_fifo_planted_among_the_checkpoints_hangs_neither_the_run_nor_continue_nor_log(
    project: Project,
) -> None:
    plant = sh("for c in perstack/jobs/*/checkpoints; do mkfifo $c/zz.json; done")
    run = project.spawn(project.args("worker", "go", project.script([LOOK, plant, DONE])))
    out, _ = finish(run)
    assert run.returncode == 0, out
    (fifo,) = project.workspace.glob("perstack/jobs/*/checkpoints/zz.json")

    # Written before the last checkpoint: skipped, with a warning naming it.
    again = project.spawn(project.args("worker", "go on", project.script([DONE]), "--continue"))
    _, err = finish(again)
    assert again.returncode == 0, err
    assert f"{fifo} is not a regular file but a FIFO" in err

    shown = project.spawn(["log", "--workspace", str(project.workspace)])
    out, err = finish(shown)
    assert shown.returncode == 0 and "completeRun" in out
    assert str(fifo) in err


def test_a_job_folder_swapped_for_a_link_mid_run_gets_nothing_written_through_it(
    project: Project, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    jobs = "perstack/jobs"
    swap = sh(f"J=$(ls {jobs}); mv {jobs}/$J {elsewhere}/ && ln -s {elsewhere}/$J {jobs}/$J")
    result = project.run([LOOK, swap, LOOK, DONE])
    assert result.code == 1
    stop = result.of("stopRunByError")[0]
    assert "is a symbolic link" in stop.error.message
    (moved,) = elsewhere.iterdir()
    late = [
        p.name
        for p in moved.rglob("*.json")
        if any(kind in p.name for kind in ("resolveToolResults", "continueToNextStep"))
        and "-2-" in p.name
    ]
    assert late == []
    steps = [
        Checkpoint.model_validate_json(p.read_bytes()).step_number
        for p in moved.glob("checkpoints/*.json")
    ]
    assert steps and max(steps) < 2
