"""The workspace layout the reference writes, read and written atomically.

    perstack/jobs/{jobId}/job.json
    perstack/jobs/{jobId}/checkpoints/{checkpointId}.json
    perstack/jobs/{jobId}/runs/{runId}/run-setting.json
    perstack/jobs/{jobId}/runs/{runId}/event-{timestamp}-{step}-{type}.json

Every file is written to a temporary name and renamed into place, so a reader never sees
half of one. Event files are never overwritten: two events with the same millisecond, step
and type (which overwrite each other in the reference) get ``-1``, ``-2``… before ``.json``.
"""

from __future__ import annotations

import errno
import logging
import re
from pathlib import Path

from runtime.checkpoint import Checkpoint, Job
from runtime.errors import StorageError
from runtime.safefiles import FolderTree
from runtime.setting import RunSetting

logger = logging.getLogger(__name__)

RUNTIME_DIR_NAME = "perstack"
JOB_FILE = "job.json"


# Job, run and checkpoint ids become folder and file names: nothing that could leave the
# folder (separators, `..`), nothing hidden, nothing overlong.
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")


def check_id(kind: str, value: str) -> str:
    """``value`` if it is a safe id, else a StorageError saying what an id may hold."""
    if not _ID.fullmatch(value):
        raise StorageError(
            f"{kind} {value!r} is not a valid id: use 1 to 128 letters, digits, '-' or '_', "
            "starting with a letter or digit"
        )
    return value


class WorkspaceStore:
    """Jobs, checkpoints, run settings and event files under ``{workspace}/perstack``,
    read and written through ``runtime.safefiles`` (no link followed, nothing but regular
    files read)."""

    def __init__(self, workspace: Path) -> None:
        self.workspace = workspace
        self.jobs_dir = workspace / RUNTIME_DIR_NAME / "jobs"
        self._tree = FolderTree(workspace)

    def job_dir(self, job_id: str) -> Path:
        return self.jobs_dir / check_id("job id", job_id)

    def run_dir(self, job_id: str, run_id: str) -> Path:
        return self.job_dir(job_id) / "runs" / check_id("run id", run_id)

    @staticmethod
    def _job_parts(job_id: str, *more: str) -> tuple[str, ...]:
        return (RUNTIME_DIR_NAME, "jobs", check_id("job id", job_id), *more)

    # --- writing ----------------------------------------------------------------------

    def write_job(self, job: Job) -> None:
        self._tree.write_atomic(self._job_parts(job.id), JOB_FILE, job.to_json().encode())

    def write_checkpoint(self, checkpoint: Checkpoint) -> None:
        name = check_id("checkpoint id", checkpoint.id)
        parts = self._job_parts(checkpoint.job_id, "checkpoints")
        self._tree.write_atomic(parts, f"{name}.json", checkpoint.to_json().encode())

    def write_run_setting(self, setting: RunSetting) -> None:
        parts = self._job_parts(setting.job_id, "runs", check_id("run id", setting.run_id))
        self._tree.write_atomic(parts, "run-setting.json", setting.to_json().encode())

    def write_event(
        self, job_id: str, run_id: str, timestamp: int, step: int, event_type: str, data: bytes
    ) -> Path:
        parts = self._job_parts(job_id, "runs", check_id("run id", run_id))
        return self._tree.write_new(parts, f"event-{timestamp}-{step}-{event_type}", data)

    # --- reading ----------------------------------------------------------------------

    def has_job(self, job_id: str) -> bool:
        return self._tree.exists(self._job_parts(job_id), JOB_FILE)

    def read_job(self, job_id: str) -> Job:
        data, _ = self._tree.read(self._job_parts(job_id), JOB_FILE)
        return Job.model_validate_json(data)

    def read_checkpoint(self, job_id: str, checkpoint_id: str) -> Checkpoint:
        name = check_id("checkpoint id", checkpoint_id)
        data, _ = self._tree.read(self._job_parts(job_id, "checkpoints"), f"{name}.json")
        return Checkpoint.model_validate_json(data)

    def list_checkpoints(self, job_id: str) -> list[Checkpoint]:
        """All checkpoints of a job, oldest step first."""
        parts = self._job_parts(job_id, "checkpoints")
        read = []
        for name in self._tree.names(parts):
            if name.endswith(".json") and not name.startswith("."):
                data, mtime_ns = self._tree.read(parts, name)
                read.append((Checkpoint.model_validate_json(data), mtime_ns))
        # Within a step, the checkpoint written last comes last (a continued Job with no
        # step left stops at the step it had reached).
        read.sort(key=lambda pair: (pair[0].step_number, pair[0].status != "init", pair[1]))
        return [checkpoint for checkpoint, _ in read]

    def job_ids(self) -> list[str]:
        """The jobs of the workspace, the one changed last first."""
        if not self.jobs_dir.is_dir():
            return []
        jobs = [p for p in self.jobs_dir.iterdir() if p.is_dir()]
        return [p.name for p in sorted(jobs, key=_job_mtime, reverse=True)]

    def latest_job_id(self) -> str | None:
        """The job whose folder changed last (what ``--continue`` picks)."""
        jobs = self.job_ids()
        return jobs[0] if jobs else None


def _job_mtime(job_dir: Path) -> float:
    try:
        return (job_dir / "job.json").stat().st_mtime
    except OSError as error:
        if error.errno != errno.ENOENT:
            logger.warning("cannot stat %s: %s", job_dir, error.strerror)
        return job_dir.stat().st_mtime
