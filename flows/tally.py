"""What the flow learns from the events it follows: ids, the answer, usage, how it ended."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from runtime.checkpoint import Usage
from runtime.events import STOP_EVENT_TYPES

_USAGE_WIRE_NAMES = frozenset(f.alias or n for n, f in Usage.model_fields.items())


@dataclass
class Tally:
    """Fed every event of one execution, in order (one caller at a time)."""

    expert: str
    job_id: str | None = None
    final_text: str | None = None
    stop: str | None = None  # the coordinator's last stop event type
    error: str | None = None
    steps: int = 0
    events: int = 0
    _usage_by_run: dict[str, dict[str, int]] = field(default_factory=dict)

    def add(self, event: dict[str, Any]) -> None:
        self.events += 1
        if self.job_id is None and isinstance(event.get("jobId"), str):
            self.job_id = event["jobId"]
        kind = event.get("type")
        step = event.get("stepNumber")
        if isinstance(step, int):
            self.steps = max(self.steps, step)
        if kind in STOP_EVENT_TYPES:
            self._stopped(event)

    def _stopped(self, event: dict[str, Any]) -> None:
        checkpoint = event.get("checkpoint") or {}
        run_id = event.get("runId")
        if isinstance(run_id, str) and isinstance(checkpoint.get("usage"), dict):
            self._usage_by_run[run_id] = checkpoint["usage"]
        if event.get("expertKey") != self.expert:
            return  # a delegate's stop: the coordinator carries on
        self.stop = event.get("type")
        if event.get("type") == "completeRun":
            self.final_text = event.get("text")
        error = event.get("error") or checkpoint.get("error")
        if isinstance(error, dict):
            self.error = f"{error.get('name')}: {error.get('message')}"

    def usage(self) -> Usage:
        """Tokens of every run of the job (each run's last checkpoint), summed."""
        total = Usage()
        for usage in self._usage_by_run.values():
            total += Usage.model_validate(
                {k: v for k, v in usage.items() if k in _USAGE_WIRE_NAMES}
            )
        return total
