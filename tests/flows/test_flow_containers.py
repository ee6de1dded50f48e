"""run-expert in the hardened container, under Prefect's test harness: a run to
completion, and a run that outlives its timeout, which ends in a final state and leaves
no container behind. Needs a Docker engine and the project image (.ci/setup-docker.sh)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.flows import flow_harness as h

pytestmark = [pytest.mark.docker, h.PREFECT_SOCKETS]


@pytest.fixture(scope="module", autouse=True)
def harness(request: pytest.FixtureRequest) -> None:
    h.start(request.config)


def _containers_of(docker_client, flow_run_id) -> list[str]:
    from flows.defaults import FLOW_RUN_LABEL

    found = docker_client.containers.list(
        all=True, filters={"label": f"{FLOW_RUN_LABEL}={flow_run_id}"}
    )
    return [c.name for c in found]


async def test_a_run_in_a_container_completes_and_its_container_is_gone(docker_client, tmp_path):
    from flows.run_expert import run_expert

    state = await run_expert(
        h.EXPERT,
        "Triage the tickets",
        user="alice",
        **h.options(tmp_path, mode="container"),
        return_state=True,
    )

    assert state.is_completed(), state.message
    result = await state.aresult()
    assert result.mode == "container" and result.outcome == "completed"
    assert (Path(result.workspace) / "report.md").read_text().startswith("# Support triage")
    logs = await h.flow_run_logs(state.state_details.flow_run_id)
    assert any("container runtime running" in line for line in logs)
    assert _containers_of(docker_client, state.state_details.flow_run_id) == []
    # The audit holds the launcher's events too (they exist only in the captured stream).
    from analytics import Dataset, open_catalog, run

    con = open_catalog(Dataset(tmp_path / "audit"))
    try:
        (count,) = run(
            con,
            "select count(*) from events "
            "where type = 'dockerContainerStatus' and user_name = 'alice'",
        ).rows[0]
    finally:
        con.close()
    assert count >= 2  # starting, running, stopped…


async def test_a_container_that_outlives_its_timeout_ends_the_flow_and_is_removed(
    docker_client, tmp_path, monkeypatch
):
    from flows.errors import ExecutionFailedError
    from flows.ingest import ingest_flow
    from flows.run_expert import run_expert

    monkeypatch.setenv("PERSTACK_DATA", str(tmp_path / "data"))
    script = h.slow_script(tmp_path)
    options = h.options(tmp_path, mode="container", script=script, timeout_seconds=3.0)
    options["workspaces"] = tmp_path / "data" / "workspaces"
    state = await run_expert(
        h.EXPERT, "Triage", user="slow", env=h.SLOW_ENV, **options, return_state=True
    )

    assert state.is_final() and state.is_failed()
    error = await state.aresult(raise_on_failure=False)
    assert isinstance(error, ExecutionFailedError)
    assert error.result.outcome == "timedOut"
    assert _containers_of(docker_client, state.state_details.flow_run_id) == []
    # The runtime's last checkpoint says only "interrupted", as for a cancel; the
    # launcher's last event says why, in the run's own ingest and in the scheduled one.
    await ingest_flow(dataset=tmp_path / "hourly")
    for dataset in (tmp_path / "audit", tmp_path / "hourly"):
        assert _stops_in(dataset) == [("slow", "timedOut: wall-clock limit of 3 s reached")]


def _stops_in(dataset: Path) -> list[tuple[str, str]]:
    from analytics import Dataset, open_catalog, run

    con = open_catalog(Dataset(dataset))
    try:
        rows = run(
            con,
            "select user_name, message from events "
            "where type = 'dockerContainerStatus' and status = 'stopped'",
        ).rows
    finally:
        con.close()
    return [tuple(row) for row in rows]
