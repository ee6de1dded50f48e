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
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from runtime.checkpoint import Checkpoint, Job
from runtime.errors import StorageError
from runtime.histories import StoredHistories
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


@dataclass(frozen=True)
class StoredCheckpoint:
    checkpoint: Checkpoint
    mtime_ns: int


@dataclass(frozen=True)
class Unreadable:
    path: Path
    reason: str
    mtime_ns: int


@dataclass
class CheckpointScan:
    """A job's checkpoints, oldest step first, and the files that could not be read."""

    stored: list[StoredCheckpoint] = field(default_factory=list)
    unreadable: list[Unreadable] = field(default_factory=list)

    @property
    def checkpoints(self) -> list[Checkpoint]:
        return [s.checkpoint for s in self.stored]


class WorkspaceStore:
    """Jobs, checkpoints, run settings and event files under ``{workspace}/perstack``,
    read and written through ``runtime.safefiles`` (no link followed, nothing but regular
    files read)."""

    def __init__(self, workspace: Path) -> None:
        self.workspace = workspace
        self.jobs_dir = workspace / RUNTIME_DIR_NAME / "jobs"
        self._tree = FolderTree(workspace)
        # The checkpoints on disk, for event files to point at (see runtime.histories).
        self.histories = StoredHistories()

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
        self.histories.add(checkpoint)

    def write_run_setting(self, setting: RunSetting) -> None:
        parts = self._job_parts(setting.job_id, "runs", check_id("run id", setting.run_id))
        self._tree.write_atomic(parts, "run-setting.json", setting.to_json().encode())

    def write_event(
        self, job_id: str, run_id: str, timestamp: int, step: int, event_type: str, data: bytes
    ) -> Path:
        parts = self._job_parts(job_id, "runs", check_id("run id", run_id))
        return self._tree.write_new(parts, f"event-{timestamp}-{step}-{event_type}", data)

    def open_job_file_for_lock(self, job_id: str, name: str, *, create: bool) -> int:
        """A descriptor of the job folder's ``name`` to lock (see runtime.joblock)."""
        return self._tree.open_for_lock(self._job_parts(job_id), name, create=create)

    # --- reading ----------------------------------------------------------------------

    def has_job(self, job_id: str) -> bool:
        return self._tree.exists(self._job_parts(job_id), JOB_FILE)

    def read_job(self, job_id: str) -> Job:
        """job.json; a StorageError naming it when it is missing or not a valid job."""
        parts = self._job_parts(job_id)
        data, _ = self._tree.read(parts, JOB_FILE)
        try:
            return Job.model_validate_json(data)
        except ValidationError as error:
            path = self._tree.root.joinpath(*parts, JOB_FILE)
            raise StorageError(f"{path} is not a valid job file ({invalid(error)})") from error

    def read_checkpoint(self, job_id: str, checkpoint_id: str) -> Checkpoint:
        """One checkpoint; a StorageError naming its file when it is missing or invalid."""
        name = check_id("checkpoint id", checkpoint_id)
        return self._read_checkpoint(self._job_parts(job_id, "checkpoints"), f"{name}.json")[0]

    def _read_checkpoint(self, parts: tuple[str, ...], name: str) -> tuple[Checkpoint, int]:
        data, mtime_ns = self._tree.read(parts, name)
        try:
            checkpoint = Checkpoint.model_validate_json(data)
        except ValidationError as error:
            path = self._tree.root.joinpath(*parts, name)
            raise StorageError(f"{path} is not a valid checkpoint ({invalid(error)})") from error
        self.histories.add(checkpoint)
        return checkpoint, mtime_ns

    def scan_checkpoints(self, job_id: str) -> CheckpointScan:
        """Every checkpoint of a job, and the files among them that cannot be read."""
        parts = self._job_parts(job_id, "checkpoints")
        scan = CheckpointScan()
        for name in self._tree.names(parts):
            if not name.endswith(".json") or name.startswith("."):
                continue
            try:
                checkpoint, mtime_ns = self._read_checkpoint(parts, name)
            except StorageError as error:
                path = self._tree.root.joinpath(*parts, name)
                scan.unreadable.append(Unreadable(path, str(error), _mtime_ns(path)))
                continue
            scan.stored.append(StoredCheckpoint(checkpoint, mtime_ns))
        # Within a step, the checkpoint written last comes last (a continued Job with no
        # step left stops at the step it had reached).
        scan.stored.sort(
            key=lambda s: (s.checkpoint.step_number, s.checkpoint.status != "init", s.mtime_ns)
        )
        return scan

    def list_checkpoints(self, job_id: str) -> list[Checkpoint]:
        """All checkpoints of a job, oldest step first; a StorageError for the first file
        that cannot be read."""
        scan = self.scan_checkpoints(job_id)
        if scan.unreadable:
            raise StorageError(scan.unreadable[0].reason)
        return scan.checkpoints

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


def invalid(error: ValidationError) -> str:
    """The first thing wrong, in a line (pydantic's own message is a page)."""
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    more = f"; and {error.error_count() - 1} more" if error.error_count() > 1 else ""
    return (f"{where}: " if where else "") + first["msg"] + more


def _mtime_ns(path: Path) -> int:
    try:
        return os.stat(path, follow_symlinks=False).st_mtime_ns
    except OSError:
        return 0


def _job_mtime(job_dir: Path) -> float:
    try:
        return (job_dir / "job.json").stat().st_mtime
    except OSError as error:
        if error.errno != errno.ENOENT:
            logger.warning("cannot stat %s: %s", job_dir, error.strerror)
        return job_dir.stat().st_mtime
