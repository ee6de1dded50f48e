"""The ``run-expert`` flow: one execution of an Expert for one user.

Prepare the user's workspace, run the container (mode ``container``, the default), follow
its events into the run's logs, publish a summary, ingest what the run left, and return an
``ExecutionResult``. Only infrastructure faults are retried (no engine among them); a run
that ended other than completed fails the flow run with its result attached. Mode
``auto`` runs a local process, without the container's isolation, when no engine or image
is there, and says so in a warning and in the summary; ``process`` always does.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import acreate_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State, TaskRun
from prefect.concurrency.asyncio import concurrency
from prefect.runtime import flow_run as current_flow_run

from flows.alerts import cleanup_after_abort, notify_failure
from flows.artifacts import run_summary
from flows.defaults import (
    EXECUTION_LIMIT,
    FLOW_RUN_LABEL,
    captures_root,
    process_records_root,
    workspaces_root,
)
from flows.errors import ExecutionFailedError, InfrastructureError
from flows.execution import (
    DEFAULT_IMAGE,
    DEFAULT_TIMEOUT_SECONDS,
    ExecutionPlan,
    ExecutionResult,
    Mode,
    RunMode,
    choose_mode,
    execute,
)
from flows.ingest import ingest_after_run, trace_paths
from flows.logs import log_event
from flows.query import read_query
from flows.run_context import given_for_this_run, tag_flow_run

# Retries of an execution that could not start: the engine restarting, a name clash.
INFRA_RETRIES = 2
INFRA_RETRY_DELAY_SECONDS = 5


def _only_infrastructure(task: Any, task_run: TaskRun, state: State[Any]) -> bool:
    return isinstance(state.data, InfrastructureError)


@task(
    name="execute",
    retries=INFRA_RETRIES,
    retry_delay_seconds=INFRA_RETRY_DELAY_SECONDS,
    retry_condition_fn=_only_infrastructure,
    cache_policy=NO_CACHE,
    persist_result=False,
)
async def execute_task(
    plan: ExecutionPlan, mode: RunMode, limit_name: str | None
) -> ExecutionResult:
    logger = get_run_logger()

    def on_event(event: dict[str, Any]) -> None:
        log_event(logger, event)

    if limit_name is None:
        return await execute(plan, mode, on_event)
    # TODO(#6): taking the slot costs ~2 s per execution on a SQLite-backed server
    # (benchmarks/flows_batch.py: 0.08 s of Prefect overhead without it).
    async with concurrency(limit_name, occupy=1):
        return await execute(plan, mode, on_event)


@flow(
    name="run-expert",
    flow_run_name="{expert} for {user}",
    on_failure=[notify_failure],
    on_crashed=[cleanup_after_abort, notify_failure],
    on_cancellation=[cleanup_after_abort],
    persist_result=False,
)
async def run_expert(
    expert: str,
    query: str | None = None,
    user: str = "default",
    query_file: Path | None = None,
    mode: Mode = "container",
    provider: str | None = None,
    script: Path | None = None,
    config: Path | None = None,
    seed: Path | None = None,
    workspaces: Path | None = None,
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    ingest: bool = True,
    dataset: Path | None = None,
    concurrency_limit: str | None = EXECUTION_LIMIT,
    image: str = DEFAULT_IMAGE,
    env: dict[str, str] | None = None,
) -> ExecutionResult:
    """Run ``expert`` on ``query`` (or the text of ``query_file``, for large queries) in
    ``user``'s workspace. ``mode`` container: a hardened container, an unreachable engine
    is retried then fails the run; auto: a container when an engine and the image are
    there, else a local process (with a warning); process: a local process. ``config``
    is used by local processes; containers run the image's."""
    logger = get_run_logger()
    await tag_flow_run(expert)
    query, query_file = await given_for_this_run(("query", query), ("query_file", query_file))
    text = read_query(query, query_file)
    chosen, why_not = await asyncio.to_thread(choose_mode, mode, image)
    if why_not is not None:
        logger.warning(
            "not in a container (%s): running as a local process on this host, without "
            "the container's isolation (mode auto; mode container would retry, then fail)",
            why_not,
        )
    plan = ExecutionPlan(
        expert=expert,
        query=text,
        user=user,
        workspaces=workspaces or workspaces_root(),
        captures=captures_root(),
        config=config,
        seed=seed,
        mode=chosen,
        provider=provider,
        script=script,
        timeout_seconds=timeout_seconds,
        image=image,
        labels={FLOW_RUN_LABEL: str(current_flow_run.id)},
        env=env or {},
        process_records=process_records_root() / str(current_flow_run.id),
    )
    result = await execute_task(plan, chosen, concurrency_limit)
    if why_not is not None:
        result = result.model_copy(update={"fallback": why_not})
    await acreate_markdown_artifact(
        key=_artifact_key(expert, user),
        markdown=run_summary(result),
        description=f"{expert} for {user}: {result.outcome}",
    )
    if ingest:
        await ingest_after_run(trace_paths(result), dataset, user)
    if not result.ok:
        raise ExecutionFailedError(result)
    return result


def _artifact_key(expert: str, user: str) -> str:
    """Artifact keys allow lowercase letters, digits and dashes only."""
    raw = f"run-{expert}-{user}".lower()
    return "".join(c if c.isalnum() or c == "-" else "-" for c in raw)[:100]
