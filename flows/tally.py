"""What the flow learns from the events it follows: ids, the answer, usage, how it ended."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from runtime.checkpoint import Usage
from runtime.events import STOP_EVENT_TYPES

_USAGE_WIRE_NAMES = frozenset(f.alias or n for n, f in Usage.model_fields.items())
# The events that carry one generation's usage. callDelegate and callInteractiveTool repeat
# the usage of the callTools before them (same run and step), and count only without one.
_GENERATION_EVENTS = frozenset({"callTools", "completeRun", "retry"})
_CALL_EVENTS = frozenset({"callDelegate", "callInteractiveTool"})


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
    _usage: Usage = field(default_factory=Usage)
    _tool_steps: set[tuple[object, object]] = field(default_factory=set)

    def add(self, event: dict[str, Any]) -> None:
        self.events += 1
        if self.job_id is None and isinstance(event.get("jobId"), str):
            self.job_id = event["jobId"]
        kind = event.get("type")
        step = event.get("stepNumber")
        if isinstance(step, int):
            self.steps = max(self.steps, step)
        self._count_usage(kind, event)
        if kind in STOP_EVENT_TYPES:
            self._stopped(event)

    def _count_usage(self, kind: object, event: dict[str, Any]) -> None:
        where = (event.get("runId"), event.get("stepNumber"))
        if kind == "callTools":
            self._tool_steps.add(where)
        if kind in _GENERATION_EVENTS or (kind in _CALL_EVENTS and where not in self._tool_steps):
            usage = event.get("usage")
            if isinstance(usage, dict):
                self._usage += Usage.model_validate(
                    {k: v for k, v in usage.items() if k in _USAGE_WIRE_NAMES}
                )

    def _stopped(self, event: dict[str, Any]) -> None:
        checkpoint = event.get("checkpoint") or {}
        if event.get("expertKey") != self.expert:
            return  # a delegate's stop: the coordinator carries on
        self.stop = event.get("type")
        if event.get("type") == "completeRun":
            self.final_text = event.get("text")
        error = event.get("error") or checkpoint.get("error")
        if isinstance(error, dict):
            self.error = f"{error.get('name')}: {error.get('message')}"

    def usage(self) -> Usage:
        """Tokens of every generation of the execution, delegates' included (a checkpoint's
        usage is the job's running total, so summing checkpoints would count twice)."""
        return self._usage
