"""Limits enforced from outside the container: wall clock, workspace size, cancellation.

A thread checks them while the container runs. When one is crossed it records why and
stops the container: SIGTERM (forwarded by the container's init to the process), a grace
period, then SIGKILL. What the process wrote to the workspace stays.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from pathlib import Path

import docker
import docker.errors
import requests.exceptions

from flows.launcher.limits import Limits
from flows.launcher.result import Outcome
from flows.launcher.workspace import measure_workspace

logger = logging.getLogger(__name__)

# How often the limits are checked: the overshoot of a fast workspace writer and the
# delay of a cancellation are bounded by this.
# TODO(#5): the workspace limit is polled, so a fast writer overshoots by what it writes
# between two checks (each file is capped by the fsize ulimit, but 256 fallocated files
# reserved 4 GiB in 18 ms against a 16 MiB limit), and deleted files held open are not
# seen at all; a filesystem quota (xfs project quota, or a loop-mounted image per user)
# would enforce it in the kernel.
POLL_SECONDS = 0.2


class Watchdog:
    def __init__(
        self,
        client: docker.DockerClient,
        container_id: str,
        workspace: Path,
        limits: Limits,
        cancel: threading.Event,
    ) -> None:
        self._client = client
        self._container_id = container_id
        self._workspace = workspace
        self._limits = limits
        self._cancel = cancel
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="watchdog", daemon=True)
        self.tripped: Outcome | None = None
        self.reason = ""
        self.killed_after_grace = False
        self.peak_workspace_bytes = 0

    def start(self) -> None:
        self._thread.start()

    def finish(self) -> None:
        """The container exited: stop watching (waits for a stop in progress)."""
        self._done.set()
        self._thread.join()

    def _watch(self) -> None:
        deadline = time.monotonic() + self._limits.wall_clock_seconds
        next_size_check = 0.0
        while not self._done.wait(POLL_SECONDS):
            if self._cancel.is_set():
                self._trip(Outcome.CANCELLED, "the caller cancelled the execution")
                return
            if time.monotonic() >= deadline:
                self._trip(
                    Outcome.TIMED_OUT,
                    f"wall-clock limit of {self._limits.wall_clock_seconds:g} s reached",
                )
                return
            if time.monotonic() < next_size_check:
                continue
            walk_started = time.monotonic()
            over = self._workspace_over_limit()
            # A big workspace takes a while to walk: never spend more than about a tenth
            # of the time walking it.
            next_size_check = time.monotonic() + 9 * (time.monotonic() - walk_started)
            if over:
                self._trip(Outcome.WORKSPACE_LIMIT_EXCEEDED, over)
                return

    def _workspace_over_limit(self) -> str:
        """Why the workspace is over one of its limits, or "" when it is not.

        Whatever the container made of its workspace, a failed measurement must not end
        the thread that also enforces the wall clock and cancellation: it is logged and
        the next check tries again.
        """
        limits = self._limits
        try:
            usage = measure_workspace(self._workspace, limits.workspace_depth)
        except Exception:  # the top of this thread: the wall clock must outlive any fault
            logger.exception("measuring workspace %s failed", self._workspace)
            return ""
        self.peak_workspace_bytes = max(self.peak_workspace_bytes, usage.bytes)
        if usage.bytes > limits.workspace_bytes:
            return f"workspace uses {usage.bytes} bytes, over its limit of {limits.workspace_bytes}"
        if usage.entries > limits.workspace_entries:
            return (
                f"workspace holds {usage.entries} files and folders, over its limit of "
                f"{limits.workspace_entries}"
            )
        if usage.too_deep:
            return f"workspace has folders nested over {limits.workspace_depth} levels deep"
        return ""

    def _trip(self, outcome: Outcome, reason: str) -> None:
        self.tripped = outcome
        self.reason = reason
        logger.info("stopping container %s: %s", self._container_id[:12], reason)
        self.killed_after_grace = stop_container(
            self._client, self._container_id, self._limits.grace_seconds
        )


def stop_container(client: docker.DockerClient, container_id: str, grace: float) -> bool:
    """SIGTERM, wait up to ``grace`` seconds, then SIGKILL; True when SIGKILL was needed."""
    api = client.api
    try:
        api.kill(container_id, signal="SIGTERM")
    except docker.errors.APIError:
        return False  # already gone
    try:
        api.wait(container_id, timeout=max(grace, 0.01))
        return False
    except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
        pass
    with contextlib.suppress(docker.errors.APIError):
        api.kill(container_id, signal="SIGKILL")
    return True
