"""What one execution ended as."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path


class Outcome(StrEnum):
    COMPLETED = "completed"  # exit code 0
    FAILED = "failed"  # a non-zero exit code the launcher did not cause
    TIMED_OUT = "timedOut"  # the wall-clock limit stopped it
    OUT_OF_MEMORY = "outOfMemory"  # the kernel's OOM killer, per the engine's OOMKilled flag
    KILLED = "killed"  # SIGKILL from elsewhere (not OOM, not the launcher)
    WORKSPACE_LIMIT_EXCEEDED = "workspaceLimitExceeded"
    CANCELLED = "cancelled"  # the caller cancelled or was interrupted


@dataclass(frozen=True)
class Timings:
    """Milliseconds. ``started_ms`` and ``finished_ms`` are wall-clock (epoch) times."""

    prepare_ms: float  # network and proxy (0 without a proxy)
    create_ms: float
    start_ms: float
    run_ms: float  # container start to exit
    total_ms: float
    started_ms: int
    finished_ms: int
    first_output_ms: float | None  # container start to the first stdout line


@dataclass(frozen=True)
class Captured:
    events: Path  # events.jsonl: every stdout line of the container, and launcher events
    stderr: Path
    proxy_log: Path | None


@dataclass(frozen=True)
class LaunchResult:
    execution_id: str
    job_id: str
    run_id: str
    outcome: Outcome
    exit_code: int | None
    reason: str
    oom_killed: bool
    timings: Timings
    captured: Captured
    stdout_lines: int
    workspace_bytes: int

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.COMPLETED
