"""The ``pipeline`` flow: the whole production path on one config.

perstack.lock (install) -> the executions (a batch) -> ingestion -> an audit table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow
from prefect.artifacts import acreate_table_artifact
from pydantic import BaseModel

from flows.alerts import notify_failure
from flows.audit import audit_task
from flows.batch import BatchSummary, batch
from flows.batch_input import BatchItem
from flows.defaults import DEFAULT_CONCURRENCY
from flows.execution import DEFAULT_TIMEOUT_SECONDS, Mode
from flows.install import install_flow
from flows.run_context import tag_flow_run

DEFAULT_AUDIT = "tokens_and_cost"


class PipelineSummary(BaseModel):
    lockfile: str
    batch: BatchSummary
    audit_query: str
    audit: list[dict[str, Any]]


@flow(name="pipeline", flow_run_name="pipeline of {expert}", on_failure=[notify_failure])
async def pipeline(
    config: Path,
    expert: str,
    items: list[BatchItem] | None = None,
    items_file: Path | None = None,
    mode: Mode = "container",
    provider: str | None = None,
    script: Path | None = None,
    seed: Path | None = None,
    workspaces: Path | None = None,
    dataset: Path | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    audit_query: str = DEFAULT_AUDIT,
) -> PipelineSummary:
    """Install ``config``, run ``expert`` for every item, ingest, and audit."""
    await tag_flow_run(expert)
    lockfile = await install_flow(config)
    summary = await batch(
        expert,
        items=items,
        items_file=items_file,
        concurrency=concurrency,
        mode=mode,
        provider=provider,
        script=script,
        config=config,
        seed=seed,
        workspaces=workspaces,
        timeout_seconds=timeout_seconds,
        dataset=dataset,
    )
    rows = await audit_task(dataset, audit_query)
    if rows:
        await acreate_table_artifact(key="audit", table=rows, description=audit_query)
    return PipelineSummary(
        lockfile=str(lockfile), batch=summary, audit_query=audit_query, audit=rows
    )
