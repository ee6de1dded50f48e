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
from flows.execution import ExecutionResult


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


def trace_paths(result: ExecutionResult) -> list[Path]:
    """What one execution left to audit: its job folder in the workspace, and the captured
    stream, which alone holds the launcher's events (container status, proxy decisions,
    an outcome decided outside the container). The same event in both lands once."""
    paths = [Path(result.workspace) / "perstack" / "jobs" / result.job_id]
    if result.events_path:
        paths.append(Path(result.events_path))
    return [path for path in paths if path.exists()]


async def ingest_after_run(paths: list[Path], dataset: Path | None, user: str) -> None:
    """Ingest right after executions. A failure here (the catalog busy, a bad file) is
    logged, never turned into a failed execution: the scheduled ingest picks it up."""
    try:
        await ingest_paths(paths, dataset, user)
    except Exception as error:  # noqa: BLE001 - the run's own outcome must stand
        get_run_logger().error(
            "ingesting the run's trace failed (%s: %s); the next ingest will pick it up",
            type(error).__name__,
            error,
        )


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
