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
from pathlib import Path

from runtime.checkpoint import Checkpoint, Job
from runtime.errors import StorageError
from runtime.ids import new_id
from runtime.setting import RunSetting

logger = logging.getLogger(__name__)

RUNTIME_DIR_NAME = "perstack"
# Bounds the search for a free event file name; more than this many same-millisecond,
# same-type events in one step would mean something is badly wrong.
MAX_EVENT_NAME_SUFFIX = 10_000


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


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{new_id()}.tmp")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except OSError as error:
        tmp.unlink(missing_ok=True)
        raise StorageError(f"cannot write {path}: {error.strerror}") from error


def _write_new(folder: Path, stem: str, data: bytes) -> Path:
    """Write ``stem.json`` in ``folder`` without ever replacing an existing file."""
    tmp = folder / f".{stem}.{new_id()}.tmp"
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
        for suffix in range(MAX_EVENT_NAME_SUFFIX):
            target = folder / (f"{stem}.json" if suffix == 0 else f"{stem}-{suffix}.json")
            try:
                os.link(tmp, target)
                return target
            except FileExistsError:
                continue
        raise StorageError(f"no free file name for {stem} in {folder}")
    except OSError as error:
        raise StorageError(f"cannot write {stem} in {folder}: {error.strerror}") from error
    finally:
        tmp.unlink(missing_ok=True)


class WorkspaceStore:
    """Jobs, checkpoints, run settings and event files under ``{workspace}/perstack``."""

    def __init__(self, workspace: Path) -> None:
        self.workspace = workspace
        self.jobs_dir = workspace / RUNTIME_DIR_NAME / "jobs"
        self._made: set[Path] = set()

    def _folder(self, path: Path) -> Path:
        if path not in self._made:
            self._refuse_links(path)
            try:
                path.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise StorageError(f"cannot create {path}: {error.strerror}") from error
            self._made.add(path)
        return path

    def _refuse_links(self, path: Path) -> None:
        """The runtime's folders are real folders inside the workspace: a link planted in
        their place (by a tool, say) would send checkpoints elsewhere."""
        current = self.workspace
        for part in path.relative_to(self.workspace).parts:
            current = current / part
            if current.is_symlink():
                raise StorageError(
                    f"{current} is a symbolic link; the runtime's folder must be a real "
                    "folder inside the workspace: remove the link"
                )

    def job_dir(self, job_id: str) -> Path:
        return self.jobs_dir / check_id("job id", job_id)

    def run_dir(self, job_id: str, run_id: str) -> Path:
        return self.job_dir(job_id) / "runs" / check_id("run id", run_id)

    # --- writing ----------------------------------------------------------------------

    def write_job(self, job: Job) -> None:
        folder = self._folder(self.job_dir(job.id))
        _write_atomic(folder / "job.json", job.to_json().encode())

    def write_checkpoint(self, checkpoint: Checkpoint) -> None:
        folder = self._folder(self.job_dir(checkpoint.job_id) / "checkpoints")
        name = check_id("checkpoint id", checkpoint.id)
        _write_atomic(folder / f"{name}.json", checkpoint.to_json().encode())

    def write_run_setting(self, setting: RunSetting) -> None:
        folder = self._folder(self.run_dir(setting.job_id, setting.run_id))
        _write_atomic(folder / "run-setting.json", setting.to_json().encode())

    def write_event(
        self, job_id: str, run_id: str, timestamp: int, step: int, event_type: str, data: bytes
    ) -> Path:
        folder = self._folder(self.run_dir(job_id, run_id))
        return _write_new(folder, f"event-{timestamp}-{step}-{event_type}", data)

    # --- reading ----------------------------------------------------------------------

    def read_job(self, job_id: str) -> Job:
        return Job.model_validate_json(self._read(self.job_dir(job_id) / "job.json"))

    def read_checkpoint(self, job_id: str, checkpoint_id: str) -> Checkpoint:
        name = check_id("checkpoint id", checkpoint_id)
        path = self.job_dir(job_id) / "checkpoints" / f"{name}.json"
        return Checkpoint.model_validate_json(self._read(path))

    def list_checkpoints(self, job_id: str) -> list[Checkpoint]:
        """All checkpoints of a job, oldest step first."""
        folder = self.job_dir(job_id) / "checkpoints"
        if not folder.is_dir():
            return []
        read = [
            (Checkpoint.model_validate_json(self._read(path)), _mtime_ns(path))
            for path in folder.glob("*.json")
        ]
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
        if not self.jobs_dir.is_dir():
            return None
        jobs = [p for p in self.jobs_dir.iterdir() if p.is_dir()]
        if not jobs:
            return None
        return max(jobs, key=lambda p: _job_mtime(p)).name

    @staticmethod
    def _read(path: Path) -> bytes:
        try:
            return path.read_bytes()
        except FileNotFoundError as error:
            raise StorageError(f"{path} does not exist") from error
        except OSError as error:
            raise StorageError(f"cannot read {path}: {error.strerror}") from error


def _mtime_ns(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0


def _job_mtime(job_dir: Path) -> float:
    try:
        return (job_dir / "job.json").stat().st_mtime
    except OSError as error:
        if error.errno != errno.ENOENT:
            logger.warning("cannot stat %s: %s", job_dir, error.strerror)
        return job_dir.stat().st_mtime
