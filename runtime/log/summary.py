"""Two summaries: of the events shown (the reference's ``summary``: counts and step range)
and of the whole job (``--summary``: status, runs, steps, tokens, duration, final text)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from runtime.checkpoint import Usage
from runtime.log.filters import is_delegation_event, is_error_event, is_tool_event
from runtime.log.reader import JobLog, RunInfo
from runtime.log.stored import LoggedEvent


def event_summary(events: Sequence[LoggedEvent]) -> dict[str, Any]:
    """The reference's summary of a list of events, field for field."""
    summary: dict[str, Any] = {
        "totalEvents": len(events),
        "errorCount": sum(1 for e in events if is_error_event(e)),
        "toolCallCount": sum(1 for e in events if is_tool_event(e)),
        "delegationCount": sum(1 for e in events if is_delegation_event(e)),
    }
    steps = [e.step for e in events if e.step is not None]
    if steps:
        summary["stepRange"] = {"min": min(steps), "max": max(steps)}
    return summary


@dataclass(frozen=True)
class JobSummary:
    job_id: str
    status: str
    coordinator: str
    runs: list[RunInfo]
    total_steps: int
    usage: Usage
    started_at: int | None
    finished_at: int | None
    final_text: str | None
    error: str | None
    event_count: int
    checkpoint_count: int

    @property
    def duration_ms(self) -> int | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at

    def to_wire(self) -> dict[str, Any]:
        return {
            "jobId": self.job_id,
            "status": self.status,
            "coordinatorExpertKey": self.coordinator,
            "totalSteps": self.total_steps,
            "usage": self.usage.to_wire(),
            "startedAt": self.started_at,
            "finishedAt": self.finished_at,
            "durationMs": self.duration_ms,
            "finalText": self.final_text,
            "error": self.error,
            "eventCount": self.event_count,
            "checkpointCount": self.checkpoint_count,
            "runs": [_run_wire(r) for r in self.runs],
        }


def _run_wire(run: RunInfo) -> dict[str, Any]:
    wire: dict[str, Any] = {
        "runId": run.run_id,
        "expertKey": run.expert_key,
        "status": run.status,
        "eventCount": run.event_count,
        "startedAt": run.first_timestamp,
        "lastEventAt": run.last_timestamp,
    }
    if run.steps is not None:
        wire["stepRange"] = {"min": run.steps[0], "max": run.steps[1]}
    if run.delegated_by is not None:
        wire["delegatedBy"] = run.delegated_by
    return wire


def _final_text(log: JobLog) -> str | None:
    """The coordinator's last result: the last completeRun of a run nobody delegated."""
    delegated = {r.run_id for r in log.runs if r.delegated_by is not None}
    completions = [e for e in log.events if e.type == "completeRun"]
    own = [e for e in completions if e.run_id not in delegated] or completions
    if not own:
        return None
    text = own[-1].data.get("text")
    return text if isinstance(text, str) else None


def _last_error(log: JobLog) -> str | None:
    for event in reversed(log.events):
        if event.type != "stopRunByError":
            continue
        error = event.read().get("error")
        if isinstance(error, dict):
            return f"{error.get('name', 'Error')}: {error.get('message', '')}"
    checkpoint = log.last_checkpoint()
    if checkpoint is not None and checkpoint.head.error is not None:
        error_model = checkpoint.head.error
        return f"{error_model.name}: {error_model.message}"
    return None


def job_summary(log: JobLog) -> JobSummary:
    job = log.job
    started = job.started_at or (log.events[0].timestamp if log.events else None)
    finished = job.finished_at
    if finished is None and job.status != "running" and log.events:
        finished = log.events[-1].timestamp
    return JobSummary(
        job_id=job.id,
        status=job.status,
        coordinator=job.coordinator_expert_key,
        runs=log.runs,
        total_steps=job.total_steps,
        usage=job.usage,
        started_at=started,
        finished_at=finished,
        final_text=_final_text(log),
        error=_last_error(log),
        event_count=len(log.events),
        checkpoint_count=len(log.checkpoints),
    )
