"""Reading a job back from a workspace, as the reference or we wrote it."""

import json
import shutil
from pathlib import Path

import pytest

from runtime.log import NoJobsError, UnknownIdError, WorkspaceLog
from tests.reference import RECORDINGS
from tests.runtime.harness import WORKER_TOML, Project, make_project

SHARED = RECORDINGS
REFERENCE_DISKS = sorted(SHARED.glob("*/perstack-cli/disk"))
LOOK = {"tool_use": [{"name": "listDirectory", "input": {"path": "."}}]}
DONE = [{"tool_use": [{"name": "attemptCompletion", "input": {}}]}, {"text": "All done."}]


def reference(name: str) -> Path:
    return SHARED / name / "perstack-cli" / "disk"


def stdout_events(name: str) -> list[dict[str, object]]:
    lines = (SHARED / name / "perstack-cli" / "stdout.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_reference_workspaces_are_found() -> None:
    assert len(REFERENCE_DISKS) >= 5


@pytest.mark.parametrize("disk", REFERENCE_DISKS, ids=lambda p: p.parents[1].name)
def test_every_reference_job_loads_without_a_job_file(disk: Path) -> None:
    store = WorkspaceLog(disk)
    log = store.load(store.latest_job_id())
    assert not log.job_file_found
    assert log.events and log.checkpoints
    assert all(e.event is not None for e in log.events)
    keys = [e.sort_key for e in log.events]
    assert keys == sorted(keys)


def test_a_reference_job_is_rebuilt_from_its_checkpoints_and_events() -> None:
    store = WorkspaceLog(reference("07-delegation"))
    log = store.load(store.latest_job_id())
    job = log.job
    assert job.status == "completed"
    assert job.coordinator_expert_key == "coordinator"
    assert job.total_steps == 4
    assert job.usage.total_tokens == 474  # the last checkpoint's usage, as the reference does
    assert job.started_at == log.events[0].timestamp
    assert job.finished_at == log.events[-1].timestamp


def test_events_of_all_runs_of_a_job_come_in_the_order_they_happened() -> None:
    store = WorkspaceLog(reference("07-delegation"))
    log = store.load(store.latest_job_id())
    assert [r.expert_key for r in log.runs] == ["coordinator", "helper", "coordinator"]
    assert [r.delegated_by for r in log.runs] == [None, "coordinator", None]
    steps = [e.step for e in log.events]
    assert steps == sorted(steps)
    run_changes = [
        e.run_id for i, e in enumerate(log.events) if i == 0 or e.run_id != log.events[i - 1].run_id
    ]
    assert run_changes == [r.run_id for r in log.runs]
    # Same events as the reference printed (minus its runtime events, which it does not
    # store, and the file it overwrote itself: same millisecond, step and type).
    printed = [e for e in stdout_events("07-delegation") if "stepNumber" in e]
    assert len(log.events) == len(printed) - 1


def test_a_file_the_reference_overwrote_with_a_shorter_event_is_read_to_its_first_value(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = WorkspaceLog(reference("02-multi-step-files"))
    log = store.load(store.latest_job_id())
    deltas = [e.data["delta"] for e in log.events if e.type == "streamRunResult"]
    assert "." in deltas
    assert not log.unreadable_files
    assert any("ignoring 15 bytes" in r.getMessage() for r in caplog.records)


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return make_project(tmp_path, WORKER_TOML)


def test_our_job_file_and_runtime_events_are_read(project: Project) -> None:
    result = project.run([LOOK, *DONE])
    assert result.code == 0
    store = WorkspaceLog(project.workspace)
    log = store.load(store.latest_job_id())
    assert log.job_file_found
    assert log.job.status == "completed" and log.job.total_steps == 2
    assert [e.type for e in log.events] == result.types()
    assert [e.data["id"] for e in log.events] == [e.id for e in result.events]
    runtime_events = [e for e in log.events if e.type in ("initializeRuntime", "skillConnected")]
    assert runtime_events and all(e.step is None for e in runtime_events)


def test_an_unknown_event_type_is_kept_as_stored(project: Project) -> None:
    project.run(DONE)
    store = WorkspaceLog(project.workspace)
    job_id = store.latest_job_id()
    run_dir = next((store.jobs_dir / job_id / "runs").iterdir())
    newer = {
        "type": "somethingNewer",
        "id": "x1",
        "timestamp": 9_999_999_999_999,
        "jobId": job_id,
        "runId": run_dir.name,
        "stepNumber": 7,
        "detail": {"a": 1},
    }
    (run_dir / "event-9999999999999-7-somethingNewer.json").write_text(json.dumps(newer))
    log = store.load(job_id)
    last = log.events[-1]
    assert last.type == "somethingNewer" and last.event is None
    assert last.data == newer and last.step == 7


def test_a_file_that_is_not_json_stands_in_as_its_name_says(project: Project) -> None:
    project.run(DONE)
    store = WorkspaceLog(project.workspace)
    job_id = store.latest_job_id()
    run_dir = next((store.jobs_dir / job_id / "runs").iterdir())
    broken = run_dir / "event-1-1-callTools.json"
    broken.write_text("{not json")
    log = store.load(job_id)
    first = log.events[0]
    assert first.type == "callTools" and first.step == 1 and first.timestamp == 1
    assert first.event is None
    assert first.data["unreadableFile"] == str(broken)
    assert log.unreadable_files == [broken]


def test_event_bodies_are_read_only_when_needed(project: Project) -> None:
    project.run(DONE)
    store = WorkspaceLog(project.workspace)
    log = store.load(store.latest_job_id())
    for path in store.jobs_dir.glob("*/runs/*/event-*-startGeneration.json"):
        path.write_text("{not json")
    # Listing and ordering did not need those bodies; showing one does.
    generation = next(e for e in log.events if e.type == "startGeneration")
    assert not generation.unreadable
    assert generation.data["unreadableFile"]
    assert generation.unreadable


def test_the_latest_job_is_the_one_with_the_newest_event_even_after_a_copy(
    project: Project, tmp_path: Path
) -> None:
    first = project.run(DONE, query="first").events[0].job_id
    second = project.run(DONE, query="second").events[0].job_id
    copy = tmp_path / "copy"
    # A plain copy gives every folder a new mtime, in no particular order.
    shutil.copytree(project.workspace, copy)
    store = WorkspaceLog(copy)
    assert store.job_ids() == [second, first]
    assert store.latest_job_id() == second


def test_a_job_id_prefix_names_the_job_and_an_unknown_id_lists_the_known(
    project: Project,
) -> None:
    job_id = project.run(DONE).events[0].job_id
    store = WorkspaceLog(project.workspace)
    assert store.resolve_job_id(job_id[:6]) == job_id
    with pytest.raises(UnknownIdError) as raised:
        store.resolve_job_id("nope")
    assert job_id in str(raised.value)


def test_a_workspace_without_jobs_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(NoJobsError) as raised:
        WorkspaceLog(tmp_path).latest_job_id()
    assert str(tmp_path / "perstack" / "jobs") in str(raised.value)
