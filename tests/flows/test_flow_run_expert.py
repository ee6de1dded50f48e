"""The run-expert flow under Prefect's test harness: a completed run with its logs,
artifact, tags and ingested rows; a run that fails on its own is not retried; an engine
that cannot be reached is; an execution that outlives its timeout ends in a final state
with nothing left running."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pytest

from tests.flows import flow_harness as h

pytestmark = h.PREFECT_SOCKETS


@pytest.fixture(scope="module", autouse=True)
def harness(request: pytest.FixtureRequest) -> None:
    h.start(request.config)


async def test_a_completed_run_logs_readable_lines_publishes_a_summary_and_is_ingested(tmp_path):
    from flows.run_expert import run_expert

    state = await run_expert(
        h.EXPERT, "Triage the tickets", user="alice", **h.options(tmp_path), return_state=True
    )

    assert state.is_completed(), state.message
    result = await state.aresult()
    assert result.outcome == "completed" and result.stop == "completeRun"
    assert result.final_text.startswith("Wrote report.md")
    assert result.usage.total_tokens > 0 and result.job_id
    assert (Path(result.workspace) / "report.md").read_text().startswith("# Support triage")
    run_id = state.state_details.flow_run_id
    flow_run = await h.read_flow_run(run_id)
    assert flow_run.name == "support-analyst for alice"
    assert "expert:support-analyst" in flow_run.tags, flow_run.tags
    logs = await h.flow_run_logs(run_id)
    assert any("calls get_current_time" in line for line in logs)
    assert any("writeTextFile ->" in line for line in logs)
    assert any("completed (" in line and "Wrote report.md" in line for line in logs)
    (artifact,) = await h.artifacts_of(run_id)
    assert artifact.type == "markdown" and "completed" in artifact.data
    assert result.job_id in artifact.data
    con = duckdb.connect()
    users = con.sql(
        f"SELECT DISTINCT user_name FROM read_parquet('{tmp_path}/audit/events/**/*.parquet')"
    ).fetchall()
    assert users == [("alice",)]


async def test_a_run_that_fails_on_its_own_fails_the_flow_once_without_retries(tmp_path):
    from flows.errors import ExecutionFailedError
    from flows.run_expert import run_expert

    h.broken_workspace(tmp_path / "workspaces", "mallory")
    state = await run_expert(
        h.EXPERT, "Triage", user="mallory", **h.options(tmp_path), return_state=True
    )

    assert state.is_failed()
    error = await state.aresult(raise_on_failure=False)
    assert isinstance(error, ExecutionFailedError)
    assert error.result.outcome == "failed" and error.result.exit_code != 0
    (execute,) = await h.task_runs_of(state.state_details.flow_run_id, "execute")
    assert execute.run_count == 1


async def test_an_unreachable_engine_is_retried_then_fails_the_flow(tmp_path, monkeypatch):
    from flows import execution
    from flows.launcher import EngineUnavailableError
    from flows.run_expert import execute_task, run_expert

    # A stand-in for the launcher: a real unreachable engine works too, but the docker
    # client's socket is then left to the collector (flows.launcher.connect does not close
    # it when the ping fails), which pytest reports at the session's end.
    attempts: list[str] = []

    async def unreachable(spec, on_event=None, client=None):
        attempts.append(spec.job_id)
        raise EngineUnavailableError("no Docker engine is reachable: connection refused")

    monkeypatch.setattr(execution, "launch_async", unreachable)
    monkeypatch.setattr(execute_task, "retry_delay_seconds", 0)
    state = await run_expert(
        h.EXPERT,
        "Triage",
        user="alice",
        **h.options(tmp_path, mode="container"),
        return_state=True,
    )

    assert state.is_failed()
    assert "no Docker engine is reachable" in state.message
    (execute,) = await h.task_runs_of(state.state_details.flow_run_id, "execute")
    assert execute.run_count == 1 + execute_task.retries == len(attempts)


async def test_a_fallback_to_a_local_process_is_loud(tmp_path, monkeypatch):
    from flows import run_expert as module
    from flows.run_expert import run_expert

    monkeypatch.setattr(
        module, "choose_mode", lambda mode, image: ("process", "no Docker engine is reachable")
    )
    state = await run_expert(
        h.EXPERT, "Triage", user="ida", **h.options(tmp_path, mode="auto"), return_state=True
    )

    assert state.is_completed(), state.message
    assert (await state.aresult()).fallback == "no Docker engine is reachable"
    run_id = state.state_details.flow_run_id
    logs = await h.flow_run_logs(run_id)
    assert any("not in a container (no Docker engine is reachable)" in line for line in logs)
    (artifact,) = await h.artifacts_of(run_id)
    assert "**Not isolated**" in artifact.data


async def test_a_local_run_that_outlives_its_timeout_ends_timed_out_and_leaves_no_process(tmp_path):
    from flows.errors import ExecutionFailedError
    from flows.run_expert import run_expert

    state = await run_expert(
        h.EXPERT,
        "Triage",
        user="slow",
        env=h.SLOW_ENV,
        **h.options(tmp_path, script=h.slow_script(tmp_path), timeout_seconds=3.0),
        return_state=True,
    )

    assert state.is_final() and state.is_failed()
    error = await state.aresult(raise_on_failure=False)
    assert isinstance(error, ExecutionFailedError)
    assert error.result.outcome == "timedOut"
    assert error.result.exit_code is not None  # reaped: the process is gone
    assert not _processes_running(f"--job-id {error.result.job_id}")


def _processes_running(marker: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if marker in cmdline and entry.name != str(os.getpid()):
            found.append(cmdline)
    return found
