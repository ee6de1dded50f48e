"""One process at a time per Job: an exclusive ``flock`` on ``perstack/jobs/{jobId}/job.lock``
for as long as a run of the Job goes on.

Two ``--continue`` of the same Job at once would each take the same next step numbers
and fork its history; two new runs with the same ``--job-id`` would both write it. The
second one now stops at once with a message naming the process that holds the Job. The
lock goes with its process (closing the descriptor, or the process dying, releases it),
so a killed run never leaves the Job locked; the file itself stays.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os

from runtime.errors import ConfigError
from runtime.storage import WorkspaceStore

logger = logging.getLogger(__name__)

LOCK_FILE = "job.lock"


class JobBusyError(ConfigError):
    """Another process is running the Job."""


class JobLock:
    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # releases the flock
            self._fd = None


def lock_job(store: WorkspaceStore, job_id: str, *, new: bool) -> JobLock:
    """Hold ``job_id`` for this process; JobBusyError when another one holds it. A ``new``
    job's folder is created for its lock file; a continued one's must exist."""
    try:
        fd = store.open_job_file_for_lock(job_id, LOCK_FILE, create=new)
    except FileNotFoundError:
        raise ConfigError(f"job {job_id} not found in {store.jobs_dir}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(fd)
        os.close(fd)
        raise JobBusyError(
            f"job {job_id} is being run by another perstack process{holder}; wait until it "
            "ends, or start a new job"
        ) from None
    except OSError:
        os.close(fd)
        raise
    _write_holder(fd)
    return JobLock(fd)


def _holder(fd: int) -> str:
    with contextlib.suppress(OSError, ValueError):
        pid = int(os.pread(fd, 32, 0).decode().strip())
        return f" (pid {pid})"
    return ""


def _write_holder(fd: int) -> None:
    """Our pid in the file, for the message another process would show."""
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    except OSError as error:  # the lock holds without it
        logger.debug("cannot write the pid into the job's lock file: %s", error)
