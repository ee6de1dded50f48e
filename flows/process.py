"""`perstack run` as a local process, for machines without a Docker engine: stdout
followed line by line, the wall clock enforced, the process group ended on every path.

No isolation beyond a process of its own: this is the fallback, and the flows say so.

A runtime never outlives the process that started it: it gets SIGTERM when that process
dies (PR_SET_PDEATHSIG; it then writes its last checkpoint and stops its skills), and
while it runs it is recorded in a file (``flows.process_records``) where a clean-up hook
in another process finds it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flows.launcher import Outcome
from flows.process_records import forget, record

logger = logging.getLogger(__name__)

# Event lines can be large (a checkpoint with the whole history); the launcher allows the
# same for containers.
LINE_LIMIT_BYTES = 64 * 1024 * 1024
# After SIGKILL the kernel reaps at once; waiting longer means something else is wrong.
REAP_SECONDS = 5.0
_SIGKILL_EXIT = -signal.SIGKILL

# prctl(2): the signal a process gets when the thread that started it ends.
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class ProcessResult:
    outcome: Outcome
    reason: str
    exit_code: int | None
    job_id: str
    events_path: Path
    stderr_path: Path
    run_ms: float


async def run_process(
    perstack_args: list[str],
    *,
    capture: Path,
    on_event: Callable[[dict[str, Any]], None],
    timeout_seconds: float,
    grace_seconds: float,
    env: dict[str, str],
    job_id: str,
    records: Path | None = None,
) -> ProcessResult:
    """Run ``perstack PERSTACK_ARGS...`` with ``--job-id JOB_ID``; stdout lines go to
    ``capture/events.jsonl`` and, when JSON objects, to ``on_event``. While it runs, the
    process is recorded in ``records`` (see ``flows.process_records``)."""
    os.makedirs(capture, exist_ok=True)
    events_path, stderr_path = capture / "events.jsonl", capture / "stderr.log"
    command = [sys.executable, "-m", "runtime.cli", *perstack_args, "--job-id", job_id]
    with stderr_path.open("wb") as stderr:
        began = time.monotonic()
        process = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
            env=env,
            start_new_session=True,
            limit=LINE_LIMIT_BYTES,
            preexec_fn=_dies_with_parent(),
        )
        recorded = record(records, job_id, process.pid) if records is not None else None
        try:
            outcome, reason = await _follow(
                process, events_path, on_event, timeout_seconds, grace_seconds
            )
        finally:
            await _end(process, grace_seconds)
            forget(recorded)
    run_ms = round((time.monotonic() - began) * 1000, 1)
    if outcome is None:
        outcome, reason = _classify(process.returncode)
    return ProcessResult(
        outcome, reason, process.returncode, job_id, events_path, stderr_path, run_ms
    )


async def _follow(
    process: asyncio.subprocess.Process,
    events_path: Path,
    on_event: Callable[[dict[str, Any]], None],
    timeout_seconds: float,
    grace_seconds: float,
) -> tuple[Outcome | None, str]:
    assert process.stdout is not None
    try:
        async with asyncio.timeout(timeout_seconds):
            with events_path.open("ab") as events:
                async for line in process.stdout:
                    events.write(line)
                    events.flush()
                    _hand_over(line, on_event)
            await process.wait()
    except TimeoutError:
        await _end(process, grace_seconds)
        return Outcome.TIMED_OUT, f"still running after the wall clock of {timeout_seconds} s"
    return None, ""


def _hand_over(line: bytes, on_event: Callable[[dict[str, Any]], None]) -> None:
    try:
        event = json.loads(line)
    except ValueError:
        return
    if isinstance(event, dict):
        on_event(event)


# TODO(#6): how a local run ended as decided here (timedOut, killed) reaches the flow's
# result, not the captured stream: the audit cannot tell a timed-out local run from a
# cancelled one (a container's launcher writes a `dockerContainerStatus` event for that;
# no event type of the reference fits a local process).
def _classify(code: int | None) -> tuple[Outcome, str]:
    if code == 0:
        return Outcome.COMPLETED, "exited with code 0"
    if code == _SIGKILL_EXIT:
        return Outcome.KILLED, "killed by SIGKILL"
    return Outcome.FAILED, f"exited with code {code}"


async def _end(process: asyncio.subprocess.Process, grace_seconds: float) -> None:
    """SIGTERM to the group, ``grace_seconds`` for the last checkpoint, then SIGKILL.
    Shielded: a cancelled caller still waits for the group to be gone."""
    if process.returncode is not None:
        return
    await asyncio.shield(_terminate(process, grace_seconds))


async def _terminate(process: asyncio.subprocess.Process, grace_seconds: float) -> None:
    kill_group(process.pid, signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), grace_seconds)
    except TimeoutError:
        kill_group(process.pid, signal.SIGKILL)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), REAP_SECONDS)


def kill_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


def _dies_with_parent() -> Callable[[], None] | None:
    """What the child runs before exec: SIGTERM to it when its parent dies (a flow process
    killed by SIGKILL or the OOM killer runs no clean-up of its own). Linux only."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)  # loaded here: the child only calls it
    parent = os.getpid()

    def preexec() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the call
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec
