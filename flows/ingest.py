"""The ``ingest`` flow: workspaces and event files into the Parquet dataset, and a task
the other flows use to ingest what a run left behind."""

from __future__ import annotations

import asyncio
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import acreate_table_artifact
from prefect.cache_policies import NO_CACHE

from analytics import IngestReport, default_root, ingest
from flows.alerts import notify_failure


@task(name="ingest", cache_policy=NO_CACHE, persist_result=False)
async def ingest_paths(
    paths: list[Path], dataset: Path | None = None, user: str | None = None
) -> IngestReport:
    """Ingest ``paths`` into ``dataset`` (default: $PERSTACK_AUDIT_DATA, else
    ./.data/audit). Runs on a worker thread: ingestion is blocking file work."""
    logger = get_run_logger()
    root = dataset or default_root()
    if not paths:
        logger.info("nothing to ingest")
        return IngestReport()
    report = await asyncio.to_thread(ingest, paths, root, user=user)
    logger.info(
        "ingested %d files (%d unchanged) into %s in %.2f s: %s",
        report.files_read,
        report.files_skipped,
        root,
        report.seconds,
        report.rows,
    )
    return report


@flow(name="ingest", on_failure=[notify_failure], persist_result=False)
async def ingest_flow(
    paths: list[Path], dataset: Path | None = None, user: str | None = None
) -> dict[str, int]:
    """Ingest workspaces (folders with perstack/jobs/...) and JSONL event files; returns
    the rows written per table, also published as a table artifact."""
    report = await ingest_paths(paths, dataset, user)
    await acreate_table_artifact(
        key="ingest",
        table=[{"table": t, "rows": n} for t, n in sorted(report.rows.items())],
        description=f"{report.files_read} files read, {report.files_skipped} unchanged",
    )
    return dict(report.rows)
