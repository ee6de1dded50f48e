"""The job a workspace holds, for continuing it: its job.json, or, for a job the reference
started, what its checkpoints say.

The reference (0.0.76) writes no job.json; its jobs are only checkpoints and event files.
Continuing one of them needs what job.json would hold: the coordinator (the Expert of the
checkpoints nobody delegated), the last step, the usage so far (the reference's checkpoint
usage counts the whole job, so the last checkpoint's is the job's) and when it started
(the first event file's timestamp, which its name carries).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from runtime.checkpoint import Checkpoint, Job, JobStatus
from runtime.errors import ConfigError
from runtime.ids import now_ms
from runtime.storage import WorkspaceStore

logger = logging.getLogger(__name__)

_EVENT_TIMESTAMP = re.compile(r"^event-(\d+)-")
_STATUS_BY_CHECKPOINT: dict[str, JobStatus] = {
    "completed": "completed",
    "stoppedByExceededMaxSteps": "stoppedByMaxSteps",
    "stoppedByInteractiveTool": "stoppedByInteractiveTool",
    "stoppedByError": "stoppedByError",
}


def derived_job(store: WorkspaceStore, job_id: str, checkpoints: list[Checkpoint]) -> Job:
    """The job ``checkpoints`` (the job's readable ones) describe; ConfigError without any."""
    job = job_from_checkpoints(store, job_id, checkpoints)
    if job is None:
        raise ConfigError(
            f"job {job_id} in {store.jobs_dir} has neither a job.json nor a checkpoint to "
            "continue from; start a new job instead"
        )
    logger.info("job %s has no job.json (the reference writes none); derived it", job_id)
    return job


def derive_job(store: WorkspaceStore, job_id: str) -> Job | None:
    """What job.json would say, from the job's checkpoints; None without checkpoints."""
    return job_from_checkpoints(store, job_id, store.list_checkpoints(job_id))


def job_from_checkpoints(
    store: WorkspaceStore, job_id: str, checkpoints: list[Checkpoint]
) -> Job | None:
    if not checkpoints:
        return None
    coordinator = _coordinator(checkpoints)
    own = [c for c in checkpoints if c.expert.key == coordinator and c.delegated_by is None]
    last = own[-1] if own else checkpoints[-1]
    return Job(
        id=job_id,
        status=_STATUS_BY_CHECKPOINT.get(last.status, "running"),
        coordinator_expert_key=coordinator,
        total_steps=max(c.step_number for c in checkpoints),
        usage=last.usage,
        started_at=_first_event_timestamp(store.job_dir(job_id)) or now_ms(),
    )


def _coordinator(checkpoints: list[Checkpoint]) -> str:
    undelegated = [c for c in checkpoints if c.delegated_by is None]
    return (undelegated or checkpoints)[0].expert.key


def _first_event_timestamp(job_dir: Path) -> int | None:
    runs = job_dir / "runs"
    if not runs.is_dir():
        return None
    stamps = [
        int(match.group(1))
        for run_dir in runs.iterdir()
        if run_dir.is_dir()
        for path in run_dir.iterdir()
        if (match := _EVENT_TIMESTAMP.match(path.name)) is not None
    ]
    return min(stamps, default=None)
