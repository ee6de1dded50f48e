"""One job as it lies in a workspace: its events (all runs, in order), checkpoints and runs.

Reads what either runtime wrote. The reference writes no ``job.json`` and no
``run-setting.json`` and only run events; we write all of them plus runtime events. An
event of a type this version does not model is kept as it was stored; a file that is not
JSON is skipped with a warning; a file the reference overwrote with a shorter event (its
same-millisecond name collision) is read up to the end of the first JSON value.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from runtime.checkpoint import Checkpoint, Job, JobStatus, Usage
from runtime.events import Event, UnknownEventTypeError, parse_event
from runtime.log.errors import NoJobsError, UnknownIdError
from runtime.storage import RUNTIME_DIR_NAME

logger = logging.getLogger(__name__)

EVENT_FILE = re.compile(
    r"^event-(?P<ts>\d+)-(?P<step>\d+)-(?P<type>[A-Za-z0-9_]+?)(?:-(?P<n>\d+))?\.json$"
)

# Where an event type falls in one step, for events that share a millisecond and a step
# (common: one step often takes under a millisecond). Taken from the order both runtimes
# print on stdout; a type not listed sorts after the ones that are.
_LIFECYCLE = (
    "initializeRuntime",
    "skillStarting",
    "skillConnected",
    "skillStderr",
    "startRun",
    "resumeToolCalls",
    "startGeneration",
    "retry",
    "startStreamingReasoning",
    "streamReasoning",
    "completeStreamingReasoning",
    "callTools",
    "callInteractiveTool",
    "callDelegate",
    "resolveToolResults",
    "finishToolCall",
    "attemptCompletion",
    "startStreamingRunResult",
    "streamRunResult",
    "completeStreamingRunResult",
    "finishAllToolCalls",
    "continueToNextStep",
    "stopRunByInteractiveTool",
    "stopRunByDelegate",
    "stopRunByExceededMaxSteps",
    "stopRunByError",
    "completeRun",
    "skillDisconnected",
)
TYPE_RANK: dict[str, int] = {name: rank for rank, name in enumerate(_LIFECYCLE)}

_JOB_STATUS_BY_CHECKPOINT: dict[str, JobStatus] = {
    "completed": "completed",
    "stoppedByExceededMaxSteps": "stoppedByMaxSteps",
    "stoppedByInteractiveTool": "stoppedByInteractiveTool",
    "stoppedByError": "stoppedByError",
}


@dataclass(frozen=True)
class LoggedEvent:
    """One stored event: the object as written, and its model when this version has one."""

    data: dict[str, Any]
    event: Event | None
    type: str
    timestamp: int
    step: int | None
    run_id: str
    sequence: int = 0
    order_step: float = 0
    """The step this event sorts with: its own; for a runtime event (no step) the step its
    run was in; for a coordinator's events after its delegates answered, just past their
    last step (its step number is still that of the call)."""

    @property
    def id(self) -> str:
        return str(self.data.get("id", f"{self.run_id}:{self.timestamp}:{self.sequence}"))

    @property
    def expert_key(self) -> str | None:
        value = self.data.get("expertKey")
        return value if isinstance(value, str) else None

    @property
    def sort_key(self) -> tuple[int, float, int, int]:
        rank = TYPE_RANK.get(self.type, len(TYPE_RANK))
        return (self.timestamp, self.order_step, rank, self.sequence)


@dataclass(frozen=True)
class LoggedCheckpoint:
    data: dict[str, Any]
    checkpoint: Checkpoint

    @property
    def id(self) -> str:
        return self.checkpoint.id


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    expert_key: str | None
    event_count: int
    first_timestamp: int | None
    last_timestamp: int | None
    steps: tuple[int, int] | None
    status: str | None
    delegated_by: str | None


@dataclass
class JobLog:
    job: Job
    job_file_found: bool
    runs: list[RunInfo]
    events: list[LoggedEvent]
    checkpoints: list[LoggedCheckpoint]
    skipped_files: list[Path] = field(default_factory=list)

    def run(self, run_id: str) -> RunInfo:
        ids = [r.run_id for r in self.runs]
        return self.runs[ids.index(_resolve(run_id, ids, "run", f"job {self.job.id}"))]

    def checkpoint(self, checkpoint_id: str) -> LoggedCheckpoint:
        ids = [c.id for c in self.checkpoints]
        where = f"job {self.job.id}"
        return self.checkpoints[ids.index(_resolve(checkpoint_id, ids, "checkpoint", where))]

    def events_of_run(self, run_id: str) -> list[LoggedEvent]:
        return [e for e in self.events if e.run_id == run_id]

    def last_checkpoint(self, run_id: str | None = None) -> LoggedCheckpoint | None:
        chosen = [c for c in self.checkpoints if run_id is None or c.checkpoint.run_id == run_id]
        return chosen[-1] if chosen else None


def _resolve(given: str, known: list[str], kind: str, where: str) -> str:
    """The id named exactly, or the only one it is a prefix of."""
    if given in known:
        return given
    matches = [k for k in known if k.startswith(given)]
    if len(matches) == 1 and given:
        return matches[0]
    raise UnknownIdError(kind, given, known, where)


def _read_json(path: Path) -> Any:
    """The first JSON value in ``path``; None (and a warning) when there is none."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        logger.warning("skipping %s: cannot read it (%s)", path, error)
        return None
    try:
        value, end = json.JSONDecoder().raw_decode(text)
    except json.JSONDecodeError as error:
        logger.warning("skipping %s: not JSON (%s)", path, error)
        return None
    if text[end:].strip():
        logger.warning("%s: ignoring %d bytes after the first JSON value", path, len(text) - end)
    return value


def _event_from_file(path: Path, run_id: str) -> LoggedEvent | None:
    match = EVENT_FILE.match(path.name)
    data = _read_json(path)
    if match is None or not isinstance(data, dict):
        if match is not None:
            logger.warning("skipping %s: not a JSON object", path)
        return None
    event: Event | None = None
    try:
        event = parse_event(data)
    except UnknownEventTypeError:
        logger.debug("%s: event type %r is not modelled here; kept as stored", path, data["type"])
    except ValidationError as error:
        logger.debug("%s: does not match its type's model (%s); kept as stored", path, error)
    timestamp = data.get("timestamp")
    step = data.get("stepNumber")
    return LoggedEvent(
        data=data,
        event=event,
        type=str(data.get("type", match["type"])),
        timestamp=timestamp if isinstance(timestamp, int) else int(match["ts"]),
        step=step if isinstance(step, int) else None,
        run_id=str(data.get("runId", run_id)),
        sequence=int(match["n"] or 0),
        order_step=step if isinstance(step, int) else 0,
    )


def _place_runtime_events(events: list[LoggedEvent]) -> list[LoggedEvent]:
    """One run's events in order. A runtime event sorts with the step of the run event
    before it (a skill that disconnects in the millisecond of completeRun comes after it)."""
    run_events = sorted((e for e in events if e.step is not None), key=lambda e: e.sort_key)
    placed = list(run_events)
    for event in (e for e in events if e.step is None):
        closing = event.type == "skillDisconnected"
        earlier = [
            e.order_step
            for e in run_events
            if e.timestamp < event.timestamp or (closing and e.timestamp == event.timestamp)
        ]
        first = run_events[0].order_step if run_events else 0
        placed.append(replace(event, order_step=earlier[-1] if earlier else first))
    return sorted(placed, key=lambda e: e.sort_key)


def _answered_call_ids(event: LoggedEvent) -> list[str]:
    results = event.data.get("toolResults")
    if event.type != "resolveToolResults" or not isinstance(results, list):
        return []
    return [str(r["id"]) for r in results if isinstance(r, dict) and "id" in r]


def _after_delegates(
    by_run: dict[str, list[LoggedEvent]], checkpoints: list[LoggedCheckpoint]
) -> list[LoggedEvent]:
    """All runs' events in one order. Within a millisecond, a delegate's events come
    after the call that started it and before the result its coordinator gets back."""
    run_of_call = {
        c.checkpoint.delegated_by.tool_call_id: c.checkpoint.run_id
        for c in checkpoints
        if c.checkpoint.delegated_by is not None
    }
    settled: dict[str, list[LoggedEvent]] = {}

    def settle(run_id: str, visiting: frozenset[str]) -> list[LoggedEvent]:
        if run_id not in settled:
            floor = 0.0
            placed = []
            for event in by_run[run_id]:
                for call_id in _answered_call_ids(event):
                    child = run_of_call.get(call_id)
                    if child in by_run and child not in visiting | {run_id}:
                        child_events = settle(child, visiting | {run_id})
                        last = max((e.order_step for e in child_events), default=0)
                        floor = max(floor, last + 0.5)
                floor = max(floor, event.order_step)
                placed.append(replace(event, order_step=floor))
            settled[run_id] = placed
        return settled[run_id]

    events = [e for run_id in by_run for e in settle(run_id, frozenset())]
    return sorted(events, key=lambda e: e.sort_key)


def _checkpoint_from_file(path: Path) -> LoggedCheckpoint | None:
    data = _read_json(path)
    if not isinstance(data, dict):
        return None
    try:
        return LoggedCheckpoint(data, Checkpoint.model_validate(data))
    except ValidationError as error:
        logger.warning("skipping checkpoint %s: %s", path, error)
        return None


def _run_info(run_dir: Path, events: list[LoggedEvent], checkpoints: list[Checkpoint]) -> RunInfo:
    expert_key = next((e.expert_key for e in events if e.expert_key), None)
    setting = (
        _read_json(run_dir / "run-setting.json")
        if (run_dir / "run-setting.json").is_file()
        else None
    )
    if isinstance(setting, dict) and isinstance(setting.get("expertKey"), str):
        expert_key = setting["expertKey"]
    steps = [e.step for e in events if e.step is not None]
    last = checkpoints[-1] if checkpoints else None
    if expert_key is None and last is not None:
        expert_key = last.expert.key
    delegated_by = next(
        (c.delegated_by.expert.key for c in checkpoints if c.delegated_by is not None), None
    )
    return RunInfo(
        run_id=run_dir.name,
        expert_key=expert_key,
        event_count=len(events),
        first_timestamp=events[0].timestamp if events else None,
        last_timestamp=events[-1].timestamp if events else None,
        steps=(min(steps), max(steps)) if steps else None,
        status=last.status if last is not None else None,
        delegated_by=delegated_by,
    )


def _checkpoint_order(checkpoint: LoggedCheckpoint) -> tuple[int, bool]:
    return (checkpoint.checkpoint.step_number, checkpoint.checkpoint.status != "init")


def _synthesize_job(
    job_id: str, runs: list[RunInfo], events: list[LoggedEvent], checkpoints: list[Checkpoint]
) -> Job:
    """What ``job.json`` would say, for a job the reference wrote (it writes none)."""
    coordinator = next((r for r in runs if r.delegated_by is None and r.expert_key), None)
    key = (
        coordinator.expert_key
        if coordinator
        else next((r.expert_key for r in runs if r.expert_key), "unknown")
    )
    last = checkpoints[-1] if checkpoints else None
    status: JobStatus = "running"
    if last is not None:
        status = _JOB_STATUS_BY_CHECKPOINT.get(last.status, "running")
    steps = [e.step for e in events if e.step is not None]
    steps += [c.step_number for c in checkpoints]
    return Job(
        id=job_id,
        status=status,
        coordinator_expert_key=key or "unknown",
        total_steps=max(steps, default=0),
        usage=last.usage if last is not None else Usage(),
        started_at=events[0].timestamp if events else 0,
        finished_at=events[-1].timestamp if events and status != "running" else None,
    )


class WorkspaceLog:
    """The jobs under ``{workspace}/perstack/jobs``."""

    def __init__(self, workspace: Path) -> None:
        self.workspace = workspace
        self.jobs_dir = workspace / RUNTIME_DIR_NAME / "jobs"

    def job_ids(self) -> list[str]:
        """Every job, the most recently active first."""
        if not self.jobs_dir.is_dir():
            return []
        jobs = [p for p in self.jobs_dir.iterdir() if p.is_dir()]
        return [p.name for p in sorted(jobs, key=_last_activity, reverse=True)]

    def latest_job_id(self) -> str:
        ids = self.job_ids()
        if not ids:
            raise NoJobsError(str(self.jobs_dir))
        return ids[0]

    def resolve_job_id(self, given: str) -> str:
        ids = self.job_ids()
        if not ids:
            raise NoJobsError(str(self.jobs_dir))
        return _resolve(given, ids, "job", str(self.jobs_dir))

    def job_holding(self, *, run_id: str | None, checkpoint_id: str | None) -> str | None:
        """The job with this run folder or checkpoint file (exact ids only), if any."""
        if run_id is None and checkpoint_id is None:
            return None
        for job_id in self.job_ids():
            job_dir = self.jobs_dir / job_id
            if run_id is not None and (job_dir / "runs" / run_id).is_dir():
                return job_id
            if (
                checkpoint_id is not None
                and (job_dir / "checkpoints" / f"{checkpoint_id}.json").is_file()
            ):
                return job_id
        return None

    def load(self, job_id: str) -> JobLog:
        job_dir = self.jobs_dir / job_id
        skipped: list[Path] = []
        checkpoints = self._checkpoints(job_dir / "checkpoints", skipped)
        by_run: dict[str, list[LoggedEvent]] = {}
        runs: list[RunInfo] = []
        runs_dir = job_dir / "runs"
        for run_dir in sorted(p for p in _children(runs_dir) if p.is_dir()):
            run_events = self._events(run_dir, skipped)
            run_checkpoints = [
                c.checkpoint for c in checkpoints if c.checkpoint.run_id == run_dir.name
            ]
            runs.append(_run_info(run_dir, run_events, run_checkpoints))
            by_run[run_dir.name] = run_events
        events = _after_delegates(by_run, checkpoints)
        runs.sort(key=lambda r: (r.first_timestamp or 0, r.run_id))
        job_file = job_dir / "job.json"
        job = self._job(job_file)
        if job is None:
            plain = [c.checkpoint for c in checkpoints]
            job = _synthesize_job(job_id, runs, events, plain)
        return JobLog(job, job_file.is_file(), runs, events, checkpoints, skipped)

    @staticmethod
    def _job(path: Path) -> Job | None:
        if not path.is_file():
            return None
        data = _read_json(path)
        try:
            return Job.model_validate(data)
        except ValidationError as error:
            logger.warning(
                "%s does not describe a job (%s); rebuilding it from the events", path, error
            )
            return None

    @staticmethod
    def _checkpoints(folder: Path, skipped: list[Path]) -> list[LoggedCheckpoint]:
        found: list[LoggedCheckpoint] = []
        for path in sorted(_children(folder)):
            if path.suffix != ".json" or path.name.startswith("."):
                continue
            checkpoint = _checkpoint_from_file(path)
            if checkpoint is None:
                skipped.append(path)
            else:
                found.append(checkpoint)
        return sorted(found, key=_checkpoint_order)

    @staticmethod
    def _events(run_dir: Path, skipped: list[Path]) -> list[LoggedEvent]:
        events: list[LoggedEvent] = []
        for path in _children(run_dir):
            if not EVENT_FILE.match(path.name):
                continue
            event = _event_from_file(path, run_dir.name)
            if event is None:
                skipped.append(path)
            else:
                events.append(event)
        return _place_runtime_events(events)


def _children(folder: Path) -> list[Path]:
    try:
        return list(folder.iterdir())
    except FileNotFoundError:
        return []


def _last_activity(job_dir: Path) -> tuple[int, float]:
    """The newest event timestamp in the job's file names (copies keep those, unlike
    mtimes), then the folder's mtime."""
    newest = 0
    for run_dir in _children(job_dir / "runs"):
        for path in _children(run_dir):
            match = EVENT_FILE.match(path.name)
            if match is not None:
                newest = max(newest, int(match["ts"]))
    try:
        mtime = job_dir.stat().st_mtime
    except OSError:
        mtime = 0.0
    return (newest, mtime)
