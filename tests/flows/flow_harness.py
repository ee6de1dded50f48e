"""Shared by the flow tests: one Prefect test harness (a temporary API server on a
temporary SQLite database) for the whole session, and helpers to read what a flow run
left in Prefect (logs, artifacts, task runs).

Each flow-test module asks for it with a module fixture calling ``start``; the first call
starts the server and registers its stop with pytest's config cleanup, so the server is
started once per session and stopped at its end whatever happened.
"""

from __future__ import annotations

import os

# No network here: Prefect's telemetry must be off before Prefect is imported.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")

import asyncio  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
from contextlib import AbstractContextManager  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402
from uuid import UUID  # noqa: E402

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "support-report"
EXPERT = "support-analyst"
# A run that waits out a long retry backoff: the model's first reply breaks off, and the
# runtime waits (30 to 60 s) before retrying. Executions with a short timeout outlive it.
SLOW_SCRIPT = [{"stream_error": {"type": "overloaded_error", "message": "Overloaded"}}]
SLOW_ENV = {"PERSTACK_RETRY_BASE_DELAY_MS": "60000"}

# Prefect's clients keep pooled connections to the test server per event loop; when a
# test's loop closes, the pool's sockets (and their transports) are collected unclosed.
# Those warnings, and only those, are Prefect's and not ours.
PREFECT_SOCKETS = pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <socket.socket:pytest.PytestUnraisableExceptionWarning",
    "ignore:unclosed <socket.socket:ResourceWarning",
    "ignore:Exception ignored in. <function _SelectorTransport.__del__"
    ":pytest.PytestUnraisableExceptionWarning",
    "ignore:unclosed transport <_SelectorSocketTransport:ResourceWarning",
)

_harness: AbstractContextManager[Any] | None = None


def start(config: pytest.Config) -> None:
    """Start the session's harness once; it stops when the session ends."""
    global _harness
    if _harness is not None:
        return
    from prefect.testing.utilities import prefect_test_harness

    harness = prefect_test_harness(server_startup_timeout=120)
    harness.__enter__()
    _harness = harness

    def stop() -> None:
        global _harness
        if _harness is not None:
            _harness.__exit__(None, None, None)
            _harness = None

    config.add_cleanup(stop)


def options(root: Path, **overrides: Any) -> dict[str, Any]:
    """run-expert/batch parameters for the example with the scripted model, as a local
    process, everything under ``root``."""
    values: dict[str, Any] = {
        "mode": "process",
        "provider": "scripted",
        "script": EXAMPLE / "script.json",
        "config": EXAMPLE / "perstack.toml",
        "seed": EXAMPLE / "workspace",
        "workspaces": root / "workspaces",
        "dataset": root / "audit",
        "timeout_seconds": 120.0,
    }
    values.update(overrides)
    return values


def slow_script(folder: Path) -> Path:
    path = folder / "slow-script.json"
    path.write_text(json.dumps(SLOW_SCRIPT))
    return path


def broken_workspace(workspaces: Path, user: str) -> None:
    """A workspace where the runtime cannot keep its files: the run fails on its own."""
    workspace = workspaces / user
    shutil.copytree(EXAMPLE / "workspace", workspace)
    (workspace / "perstack").write_text("not a folder")


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


async def flow_run_logs(flow_run_id: UUID) -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogHandler

    await APILogHandler.aflush()  # logs are sent in batches, every few seconds
    found: list[str] = []
    async with get_client() as client:
        while True:
            page = await client.read_logs(
                LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])),
                limit=200,
                offset=len(found),
            )
            found += [log.message for log in page]
            if len(page) < 200:
                return found


async def artifacts_of(flow_run_id: UUID) -> list[Any]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    async with get_client() as client:
        return await client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )


async def read_flow_run(flow_run_id: UUID) -> Any:
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        return await client.read_flow_run(flow_run_id)


async def task_runs_of(flow_run_id: UUID, task: str) -> list[Any]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    async with get_client() as client:
        runs = await client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
    return [r for r in runs if r.task_key.startswith(task) or r.name.startswith(task)]


async def child_flow_runs(parent_id: UUID) -> list[Any]:
    """The flow runs started by ``parent_id`` (through their parent task runs)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    async with get_client() as client:
        return await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[parent_id])
            ),
            limit=200,
        )
