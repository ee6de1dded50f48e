import json
from pathlib import Path

from runtime.checkpoint import Checkpoint, Job
from runtime.storage import WorkspaceStore


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
