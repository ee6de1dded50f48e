"""End to end: a real `prefect server start` on loopback, deployments/setup.py, `prefect
deploy` from the repository as it is, a process worker, and a deployment run to
completion, checked through the Prefect client: its state, its logs and its artifact."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.flows import flow_harness as h

pytestmark = [pytest.mark.prefect_server, h.PREFECT_SOCKETS]

PREFECT = str(Path(sys.executable).parent / "prefect")
# A cold `prefect server start` (migrations on a new database) takes 15-40 s here.
SERVER_START_SECONDS = 120.0
# SIGTERM, then this long before SIGKILL, for the server and the worker.
STOP_GRACE_SECONDS = 10.0
# The deployment's run: worker poll (every few seconds), flow process start, execution.
RUN_SECONDS = 240.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(STOP_GRACE_SECONDS)


@contextlib.contextmanager
def _started(
    command: list[str], env: dict[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=h.REPO,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        _stop(process)


def _wait_healthy(api: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"prefect server exited: {log.read_text()[-2000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                return
        time.sleep(0.5)
    pytest.fail(f"prefect server not healthy after {SERVER_START_SECONDS} s")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The environment of a client of a fresh server (its own PREFECT_HOME)."""
    root = tmp_path_factory.mktemp("prefect-server")
    port = _free_port()
    env = {
        **os.environ,
        "PREFECT_HOME": str(root / "home"),
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_API_HOST": "127.0.0.1",
        "PREFECT_SERVER_API_PORT": str(port),
        "PERSTACK_DATA": str(root / "data"),
        "PERSTACK_AUDIT_DATA": str(root / "audit"),
    }
    command = [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    log = root / "server.log"
    with _started(command, env, log) as process:
        _wait_healthy(env["PREFECT_API_URL"], process, log)
        yield env


def _cli(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(args, env=env, cwd=h.REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def test_a_deployment_runs_to_completion_on_a_worker_with_logs_and_artifacts(server, tmp_path):
    _cli([sys.executable, "-m", "deployments.setup"], server)
    _cli(
        [
            PREFECT,
            "--no-prompt",
            "deploy",
            "--prefect-file",
            "deployments/prefect.yaml",
            "--name",
            "support-report-nightly",
        ],
        server,
    )
    worker_command = [PREFECT, "worker", "start", "--pool", "perstack-process", "--limit", "2"]
    with _started(worker_command, server, tmp_path / "worker.log"):
        flow_run = asyncio.run(_run_deployment(server, tmp_path))

    assert flow_run.state.is_completed(), (tmp_path / "worker.log").read_text()[-3000:]
    assert flow_run.name == "support-analyst for nightly"
    assert "expert:support-analyst" in flow_run.tags
    logs, artifacts = asyncio.run(_logs_and_artifacts(server, flow_run.id))
    assert any("calls get_current_time" in line for line in logs)
    assert any("completed (" in line for line in logs)
    # The run gave query_file; the deployment pins query: the run's own one wins.
    assert any("default query is not used" in line for line in logs), logs
    assert [a.type for a in artifacts] == ["markdown"]
    assert "support-analyst for nightly: completed" in artifacts[0].data


async def _run_deployment(env: dict[str, str], tmp_path: Path):
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    query_file = tmp_path / "query.txt"
    query_file.write_text("Triage the tickets, from a file.")
    with temporary_settings({PREFECT_API_URL: env["PREFECT_API_URL"]}):
        return await run_deployment(
            "run-expert/support-report-nightly",
            parameters={
                "mode": "process",
                "query_file": str(query_file),
                "provider": "scripted",
                "script": str(h.EXAMPLE / "script.json"),
                "workspaces": str(tmp_path / "workspaces"),
                "timeout_seconds": 120.0,
            },
            timeout=RUN_SECONDS,
        )


async def _logs_and_artifacts(env: dict[str, str], flow_run_id):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: env["PREFECT_API_URL"]}):
        return await h.flow_run_logs(flow_run_id), await h.artifacts_of(flow_run_id)


def test_a_crashed_deployed_run_leaves_no_local_runtime_behind(server, tmp_path):
    # Regression: after `kill -9` of the flow process, the on_crashed hook (which a worker
    # runs in a process of its own) could not see the runtime, which lived on as an orphan.
    from flows.process_records import start_ticks

    _cli([sys.executable, "-m", "deployments.setup"], server)
    _deploy("support-report-nightly", server)
    worker_command = [PREFECT, "worker", "start", "--pool", "perstack-process", "--limit", "2"]
    with _started(worker_command, server, tmp_path / "worker.log"):
        flow_run, runtime = asyncio.run(_run_then_kill_the_flow_process(server, tmp_path))
        records = Path(server["PERSTACK_DATA"]) / "processes" / str(flow_run.id)
        deadline = time.monotonic() + 30  # the hook runs after the state is set
        while records.exists() and time.monotonic() < deadline:
            time.sleep(0.2)

    assert flow_run.state.is_crashed(), (tmp_path / "worker.log").read_text()[-3000:]
    assert start_ticks(runtime) is None, "the runtime outlived its crashed flow run"
    assert not records.exists(), "the crash hook did not end the recorded processes"


async def _run_then_kill_the_flow_process(env: dict[str, str], tmp_path: Path):
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    workspace = tmp_path / "workspaces" / "nightly"
    with temporary_settings({PREFECT_API_URL: env["PREFECT_API_URL"]}):
        flow_run = await run_deployment(
            "run-expert/support-report-nightly",
            parameters={
                "mode": "process",
                "provider": "scripted",
                "script": str(h.slow_script(tmp_path)),
                "env": h.SLOW_ENV,
                "workspaces": str(tmp_path / "workspaces"),
                "timeout_seconds": 200.0,
            },
            timeout=0,
        )
        deadline = time.monotonic() + RUN_SECONDS
        while (runtime := _runtime_in(workspace)) is None:
            assert time.monotonic() < deadline, "the runtime never started"
            await asyncio.sleep(0.2)
        records = Path(env["PERSTACK_DATA"]) / "processes" / str(flow_run.id)
        while not list(records.glob("*.json")):
            assert time.monotonic() < deadline, "the runtime was not recorded"
            await asyncio.sleep(0.1)
        os.kill(_parent_of(runtime), signal.SIGKILL)
        async with get_client() as client:
            while True:
                flow_run = await client.read_flow_run(flow_run.id)
                if flow_run.state.is_final() or time.monotonic() > deadline:
                    return flow_run, runtime
                await asyncio.sleep(0.5)


def _runtime_in(workspace: Path) -> int | None:
    """The pid of the `perstack run` process working in ``workspace``."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"runtime.cli" in args and str(workspace).encode() in args:
            return int(entry.name)
    return None


def _parent_of(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2 :].split()[1])


def _deploy(name: str, env: dict[str, str]) -> None:
    _cli(
        [PREFECT, "--no-prompt", "deploy", "--prefect-file", "deployments/prefect.yaml"]
        + ["--name", name],
        env,
    )


@pytest.mark.docker
def test_cancelling_a_deployed_run_stops_and_removes_its_container(server, tmp_path, docker_client):
    from flows.defaults import FLOW_RUN_LABEL

    _cli([sys.executable, "-m", "deployments.setup"], server)
    _cli(
        [
            PREFECT,
            "--no-prompt",
            "deploy",
            "--prefect-file",
            "deployments/prefect.yaml",
            "--name",
            "support-report-nightly",
        ],
        server,
    )
    worker_command = [PREFECT, "worker", "start", "--pool", "perstack-process", "--limit", "2"]
    with _started(worker_command, server, tmp_path / "worker.log"):
        flow_run = asyncio.run(_run_then_cancel(server, tmp_path, docker_client))

    assert flow_run.state.is_final(), flow_run.state
    assert flow_run.state.is_cancelled(), (tmp_path / "worker.log").read_text()[-3000:]
    label = {"label": f"{FLOW_RUN_LABEL}={flow_run.id}"}
    assert docker_client.containers.list(all=True, filters=label) == []


async def _run_then_cancel(env: dict[str, str], tmp_path: Path, docker_client):
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect.states import Cancelling

    from flows.defaults import FLOW_RUN_LABEL

    with temporary_settings({PREFECT_API_URL: env["PREFECT_API_URL"]}):
        flow_run = await run_deployment(
            "run-expert/support-report-nightly",
            parameters={
                "mode": "container",
                "provider": "scripted",
                "script": str(h.slow_script(tmp_path)),
                "env": h.SLOW_ENV,
                "workspaces": str(tmp_path / "workspaces"),
                "timeout_seconds": 200.0,
            },
            timeout=0,
        )
        label = {"label": f"{FLOW_RUN_LABEL}={flow_run.id}"}
        deadline = time.monotonic() + RUN_SECONDS
        while not docker_client.containers.list(filters=label):
            assert time.monotonic() < deadline, "the execution's container never started"
            await asyncio.sleep(0.5)
        async with get_client() as client:
            await client.set_flow_run_state(flow_run.id, Cancelling(), force=True)
            while True:
                flow_run = await client.read_flow_run(flow_run.id)
                if flow_run.state.is_final() or time.monotonic() > deadline:
                    return flow_run
                await asyncio.sleep(0.5)


# deployments/build-flows-image.sh builds it under this name too.
FLOWS_IMAGE = os.environ.get("PERSTACK_FLOWS_IMAGE") or "perstack-flows:latest"


@pytest.mark.docker
def test_the_docker_pool_runs_a_deployment_in_a_flow_container(server, tmp_path, docker_client):
    """Queue, prefect-docker's worker, a flow-run container, and the execution's own
    hardened container started from it on the host's engine."""
    import docker.errors

    try:
        docker_client.images.get(FLOWS_IMAGE)
    except docker.errors.ImageNotFound:
        message = f"image {FLOWS_IMAGE} is missing (deployments/build-flows-image.sh)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    _cli([sys.executable, "-m", "deployments.setup"], server)
    _cli(
        [
            PREFECT,
            "--no-prompt",
            "deploy",
            "--prefect-file",
            "deployments/prefect.yaml",
            "--name",
            "support-report-nightly-docker",
        ],
        server,
    )
    data = tmp_path / "data"  # the same path in the flow's container and on the host
    data.mkdir()
    worker_command = [PREFECT, "worker", "start", "--pool", "perstack-docker", "--type", "docker"]
    with _started(worker_command, server, tmp_path / "worker.log"):
        flow_run = asyncio.run(_run_docker_deployment(server, data))

    assert flow_run.state.is_completed(), (tmp_path / "worker.log").read_text()[-3000:]
    report = data / "workspaces" / "nightly" / "report.md"
    assert report.read_text().startswith("# Support triage")
    # Regression: the audit dataset was written inside the flow-run container, and lost
    # with it; the pool's own settings now put it on the shared volume.
    from analytics import Dataset, open_catalog, run

    con = open_catalog(Dataset(data / "audit"))
    try:
        rows = run(con, "select user_name, count(*) from events group by all").rows
    finally:
        con.close()
    assert [user for user, _ in rows] == ["nightly"]


def _docker_pool_job_variables(data: Path) -> dict[str, object]:
    """The docker pool's job variables from prefect.yaml, with /srv/perstack at ``data``
    (the host path tests may write)."""
    import json

    import yaml

    config = yaml.safe_load((h.REPO / "deployments" / "prefect.yaml").read_text())
    variables = config["definitions"]["docker_pool"]["job_variables"]
    return {
        **json.loads(json.dumps(variables).replace(SHARED_DATA, str(data))),
        "image": FLOWS_IMAGE,
    }


SHARED_DATA = "/srv/perstack"


async def _run_docker_deployment(env: dict[str, str], data: Path):
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: env["PREFECT_API_URL"]}):
        return await run_deployment(
            "run-expert/support-report-nightly-docker",
            parameters={
                "provider": "scripted",
                "script": "/opt/perstack-py/examples/support-report/script.json",
                "timeout_seconds": 120.0,
            },
            job_variables=_docker_pool_job_variables(data),
            timeout=RUN_SECONDS,
        )
