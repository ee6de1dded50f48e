"""The ``ingest`` flow: workspaces and event files into the Parquet dataset, and a task
the other flows use to ingest what a run left behind."""

from __future__ import annotations

import asyncio
import logging
import stat
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import acreate_table_artifact
from prefect.cache_policies import NO_CACHE

from analytics import IngestReport, ingest
from flows.alerts import notify_failure
from flows.defaults import dataset_root
from flows.execution import ExecutionResult

logger = logging.getLogger(__name__)


@task(name="ingest", cache_policy=NO_CACHE, persist_result=False)
async def ingest_paths(
    paths: list[Path], dataset: Path | None = None, user: str | None = None
) -> IngestReport:
    """Ingest ``paths`` into ``dataset`` (default: $PERSTACK_AUDIT_DATA, else
    ./.data/audit). Runs on a worker thread: ingestion is blocking file work."""
    logger = get_run_logger()
    root = dataset_root(dataset)
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
    an outcome decided outside the container). The same event in both lands once.

    The Expert controls its workspace: a job folder reached through a link (to another
    user's jobs, say) is left out, so that no one's trace is ingested under this user.
    """
    paths = []
    job_folder = _real_folder(Path(result.workspace), "perstack", "jobs", result.job_id)
    if job_folder is not None:
        paths.append(job_folder)
    if result.events_path and Path(result.events_path).exists():
        paths.append(Path(result.events_path))
    return paths


def _real_folder(top: Path, *parts: str) -> Path | None:
    """``top/parts...`` when each part is a folder and none is a link; else None."""
    path = top
    for part in parts:
        path = path / part
        try:
            mode = path.lstat().st_mode
        except OSError:
            return None
        if not stat.S_ISDIR(mode):
            if stat.S_ISLNK(mode):
                logger.warning("%s is a link; the run's job folder is not ingested", path)
            return None
    return path


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
