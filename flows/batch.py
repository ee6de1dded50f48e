"""The ``batch`` flow: many (user, query) executions of one Expert, each its own
``run-expert`` flow run, at most ``concurrency`` at a time. The executions take slots of a
Prefect global concurrency limit, which also bounds them across batches and scheduled
runs (the operator's setting: a batch creates it only when missing, and never changes
it); the batch itself starts no more child runs than ``concurrency``, so that waiting
runs do not show as Running. A failed execution fails only its own run; the batch
publishes a table of all of them and ingests what they left in one go."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import acreate_table_artifact
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.client.schemas.objects import State
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
from prefect.runtime import flow_run as current_flow_run
from pydantic import BaseModel

from flows.alerts import notify_failure
from flows.artifacts import failure_row, result_row
from flows.batch_input import BatchItem, passed_by_reference, read_items
from flows.defaults import DEFAULT_CONCURRENCY, EXECUTION_LIMIT, batches_root
from flows.errors import ExecutionFailedError
from flows.execution import (
    DEFAULT_IMAGE,
    DEFAULT_TIMEOUT_SECONDS,
    ExecutionResult,
    Mode,
    choose_mode,
)
from flows.ingest import ingest_after_run, trace_paths
from flows.run_context import given_for_this_run, tag_flow_run
from flows.run_expert import run_expert

# Between the first wave's flow-run creations (see ``batch``).
LAUNCH_SPACING_SECONDS = 0.3


class BatchSummary(BaseModel):
    expert: str
    completed: int
    failed: int
    rows: list[dict[str, Any]]
    results: list[ExecutionResult]


async def ensure_concurrency_limit(name: str, concurrency: int) -> int:
    """The slots of the global concurrency limit ``name``, created when missing with the
    batch's ``concurrency`` or the default, whichever is more: a first batch run at
    concurrency 1 (a trial) must not hold every later batch to one execution at a time.
    An existing limit is the operator's (``deployments.setup --concurrency``) and is never
    changed here: a batch bounds its own fan-out with ``concurrency``, the limit bounds
    every execution, whatever started it."""
    slots = max(concurrency, DEFAULT_CONCURRENCY)
    async with get_client() as client:
        try:
            limit = await client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            limit = None
        if limit is not None:
            return limit.limit if limit.active else slots
        try:
            await client.create_global_concurrency_limit(
                GlobalConcurrencyLimitCreate(name=name, limit=slots)
            )
        except ObjectAlreadyExists:  # another batch created it in the meantime
            return (await client.read_global_concurrency_limit_by_name(name)).limit
        get_run_logger().info("created the concurrency limit %r with %d slots", name, slots)
        return slots


async def outcome_of(
    state: State[Any], item: BatchItem, expert: str
) -> tuple[dict[str, Any], ExecutionResult | None]:
    """The table row of one child run, and its result when it produced one."""
    if state.is_completed():
        result = await state.aresult()
        return result_row(result), result
    error = await state.aresult(raise_on_failure=False)
    if isinstance(error, ExecutionFailedError):
        return result_row(error.result), error.result
    return failure_row(item.user, expert, state.message or state.name or "failed"), None


@flow(name="batch", flow_run_name="batch of {expert}", on_failure=[notify_failure])
async def batch(
    expert: str,
    items: list[BatchItem] | None = None,
    items_file: Path | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    concurrency_limit: str = EXECUTION_LIMIT,
    mode: Mode = "container",
    provider: str | None = None,
    script: Path | None = None,
    config: Path | None = None,
    seed: Path | None = None,
    workspaces: Path | None = None,
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    ingest: bool = True,
    dataset: Path | None = None,
    image: str = DEFAULT_IMAGE,
    env: dict[str, str] | None = None,
) -> BatchSummary:
    """Run ``expert`` once per item (``items``, or ``items_file``: JSONL or CSV of
    ``user,query[,query_file]``). Large queries reach the runs as files, never as
    parameters; put very large batches in ``items_file`` for the same reason."""
    logger = get_run_logger()
    await tag_flow_run(expert)
    items, items_file = await given_for_this_run(("items", items), ("items_file", items_file))
    if (items is None) == (items_file is None):
        raise ValueError("give exactly one of items and items_file")
    if items is None:
        items = read_items(items_file.absolute())  # absolute: its errors name the file
    todo = passed_by_reference(items, batches_root() / str(current_flow_run.id))
    slots = await ensure_concurrency_limit(concurrency_limit, concurrency)
    _, why_not = await asyncio.to_thread(choose_mode, mode, image)
    if why_not is not None:  # each execution decides again, and says so in its own run
        logger.warning(
            "not in containers (%s): the executions run as local processes, without "
            "the container's isolation (mode auto)",
            why_not,
        )
    pace = _pace(concurrency, slots, concurrency_limit)
    logger.info("%d executions of %s, %s", len(todo), expert, pace)
    common: dict[str, Any] = {
        "mode": mode,
        "provider": provider,
        "script": script,
        "config": config,
        "seed": seed,
        "workspaces": workspaces,
        "timeout_seconds": timeout_seconds,
        "ingest": False,  # once, below, for all of them
        "concurrency_limit": concurrency_limit,
        "image": image,
        "env": env,
    }
    gate = asyncio.Semaphore(concurrency)

    async def one(index: int, item: BatchItem) -> State[Any]:
        # The first wave starts staggered: flow runs created in the same instant contend
        # for SQLite's write lock on a local server, and the losers back off for seconds.
        await asyncio.sleep(min(index, concurrency) * LAUNCH_SPACING_SECONDS)
        async with gate:
            state: State[Any] = await run_expert(
                expert,
                query=item.query,
                user=item.user,
                query_file=item.query_file,
                return_state=True,
                **common,
            )
            return state

    states = await asyncio.gather(*(one(i, item) for i, item in enumerate(todo)))
    outcomes = [await outcome_of(s, i, expert) for s, i in zip(states, todo, strict=True)]
    rows = [row for row, _ in outcomes]
    results = [r for _, r in outcomes if r is not None]
    completed = sum(1 for r in results if r.ok)
    await acreate_table_artifact(
        key=f"batch-{_slug(expert)}",
        table=rows,
        description=f"{expert}: {completed} of {len(rows)} completed",
    )
    if ingest:
        await _ingest_by_user(results, dataset)
    failed = len(rows) - completed
    if failed:
        logger.warning("%d of %d executions did not complete", failed, len(rows))
    return BatchSummary(
        expert=expert, completed=completed, failed=failed, rows=rows, results=results
    )


async def _ingest_by_user(results: list[ExecutionResult], dataset: Path | None) -> None:
    """One ingest per user, so every row carries its user (the runtime does not know it)."""
    traces: dict[str, list[Path]] = {}
    for result in results:
        traces.setdefault(result.user, []).extend(trace_paths(result))
    for user, paths in sorted(traces.items()):
        if paths:
            await ingest_after_run(paths, dataset, user)


def _pace(concurrency: int, slots: int, limit: str) -> str:
    """How many executions run at once, for the log: the fewer of the batch's own
    ``concurrency`` and the global limit's ``slots``."""
    if slots >= concurrency:
        return f"at most {concurrency} at a time"
    return (
        f"at most {slots} at a time (the concurrency limit {limit!r} has {slots} slots; "
        "deployments.setup --concurrency N changes it)"
    )


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower())[:80]
