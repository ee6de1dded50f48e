"""What one `perstack log` call shows: a job, optionally one run or one checkpoint of it,
and the events of that scope that pass the filters."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from runtime.log.filters import FilterOptions, FilterResult, apply_filters
from runtime.log.reader import JobLog, WorkspaceLog
from runtime.log.stored import LoggedCheckpoint


@dataclass(frozen=True)
class Selection:
    job: str | None = None
    run: str | None = None
    checkpoint: str | None = None
    messages: bool = False


@dataclass(frozen=True)
class LogView:
    log: JobLog
    storage_path: Path
    is_latest_job: bool
    run_id: str | None
    checkpoint: LoggedCheckpoint | None
    """The checkpoint asked for, or with --messages alone the scope's last one."""
    checkpoint_asked: bool
    include_checkpoints: bool
    """The reference lists every checkpoint of the job when --job alone names it."""
    result: FilterResult


def _job_id(store: WorkspaceLog, selection: Selection) -> str:
    if selection.job is not None:
        return store.resolve_job_id(selection.job)
    # Ours: a run or checkpoint id alone finds its job; the reference looks only in the
    # latest job. A checkpoint names its run, so it is looked for first.
    if selection.checkpoint is not None:
        return store.job_holding("checkpoint", selection.checkpoint)
    if selection.run is not None:
        return store.job_holding("run", selection.run)
    return store.latest_job_id()


def build_view(store: WorkspaceLog, selection: Selection, filters: FilterOptions) -> LogView:
    job_id = _job_id(store, selection)
    log = store.load(job_id)
    run_id: str | None = None
    checkpoint: LoggedCheckpoint | None = None
    if selection.checkpoint is not None:
        checkpoint = log.checkpoint(selection.checkpoint)
        run_id = checkpoint.head.run_id
    elif selection.run is not None:
        run_id = log.run(selection.run).run_id
    if checkpoint is None and selection.messages:
        checkpoint = log.last_checkpoint(run_id)
    scope = log.events if run_id is None else log.events_of_run(run_id)
    no_id = selection.run is None and selection.checkpoint is None
    return LogView(
        log=log,
        storage_path=store.jobs_dir.parent,
        is_latest_job=selection.job is None and no_id,
        run_id=run_id,
        checkpoint=checkpoint,
        checkpoint_asked=selection.checkpoint is not None,
        include_checkpoints=selection.job is not None and no_id,
        result=apply_filters(scope, filters),
    )
