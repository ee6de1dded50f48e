"""One job as it lies in a workspace: its events (all runs, in order), checkpoints and runs.

Reads what either runtime wrote. The reference writes no ``job.json`` and no
``run-setting.json`` and only run events; we write all of them plus runtime events. An
event of a type this version does not model is kept as it was stored; a file that is not
JSON shows as unreadable.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import ValidationError

from runtime.checkpoint import Job, JobStatus, Usage
from runtime.log.errors import (
    NoJobsError,
    NotInWorkspaceError,
    UnknownIdError,
    UnreadableFileError,
)
from runtime.log.stored import EVENT_FILE, LoggedCheckpoint, LoggedEvent, read_json
from runtime.storage import RUNTIME_DIR_NAME

logger = logging.getLogger(__name__)

# What a run or checkpoint id names, when it is looked for in every job.
HeldKind = Literal["run", "checkpoint"]

_JOB_STATUS_BY_CHECKPOINT: dict[str, JobStatus] = {
    "completed": "completed",
    "stoppedByExceededMaxSteps": "stoppedByMaxSteps",
    "stoppedByInteractiveTool": "stoppedByInteractiveTool",
    "stoppedByError": "stoppedByError",
}


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
    unreadable_checkpoints: dict[str, UnreadableFileError] = field(default_factory=dict)
    """Why each checkpoint file that could not be read was not, by its id."""

    @property
    def unreadable_files(self) -> list[Path]:
        """Event files found unreadable so far (events are read when needed)."""
        return [e.path for e in self.events if e.unreadable and e.path is not None]

    def run(self, run_id: str) -> RunInfo:
        ids = [r.run_id for r in self.runs]
        return self.runs[ids.index(_resolve(run_id, ids, "run", f"job {self.job.id}"))]

    def checkpoint(self, checkpoint_id: str) -> LoggedCheckpoint:
        """The checkpoint an id or unique prefix names; UnreadableFileError (exit 1) when it
        names a file that cannot be read, UnknownIdError (exit 2) when it names none."""
        ids = [c.id for c in self.checkpoints]
        where = f"job {self.job.id}"
        chosen = _resolve(checkpoint_id, [*ids, *self.unreadable_checkpoints], "checkpoint", where)
        failure = self.unreadable_checkpoints.get(chosen)
        if failure is not None:
            raise UnreadableFileError(
                failure.path,
                failure.reason,
                f"checkpoint {chosen} could not be read: {failure.path}: {failure.reason}",
            )
        return self.checkpoints[ids.index(chosen)]

    def events_of_run(self, run_id: str) -> list[LoggedEvent]:
        return [e for e in self.events if e.run_id == run_id]

    def last_checkpoint(self, run_id: str | None = None) -> LoggedCheckpoint | None:
        chosen = [c for c in self.checkpoints if run_id is None or c.head.run_id == run_id]
        return chosen[-1] if chosen else None


def _resolve(given: str, known: list[str], kind: str, where: str) -> str:
    """The id named exactly, or the only one it is a prefix of."""
    if given in known:
        return given
    matches = [k for k in known if k.startswith(given)]
    if len(matches) == 1 and given:
        return matches[0]
    raise UnknownIdError(kind, given, known, where)


def _children(folder: Path) -> list[Path]:
    try:
        return list(folder.iterdir())
    except FileNotFoundError:
        return []


# --- order ----------------------------------------------------------------------------


def _place_runtime_events(events: list[LoggedEvent]) -> list[LoggedEvent]:
    """One run's events in order. A runtime event sorts with the step of the run event
    before it (a skill that disconnects in the millisecond of completeRun comes after it;
    one that connects before the first step sorts with that step)."""
    run_events = sorted((e for e in events if e.is_run_event), key=lambda e: e.sort_key)
    first = run_events[0].order_step if run_events else 0
    for event in (e for e in events if not e.is_run_event):
        closing = event.type == "skillDisconnected"
        earlier = [
            e.order_step
            for e in run_events
            if e.timestamp < event.timestamp or (closing and e.timestamp == event.timestamp)
        ]
        event.order_step = earlier[-1] if earlier else first
    return sorted(events, key=lambda e: e.sort_key)


def _answered_call_ids(event: LoggedEvent) -> list[str]:
    if event.type != "resolveToolResults":
        return []
    results = event.read().get("toolResults")
    if not isinstance(results, list):
        return []
    return [str(r["id"]) for r in results if isinstance(r, dict) and "id" in r]


# TODO(#4): events of sibling delegates (parallel calls) that share a millisecond are
# ordered by step and lifecycle, not by when they happened: neither runtime stores more.
def _after_delegates(
    by_run: dict[str, list[LoggedEvent]], checkpoints: list[LoggedCheckpoint]
) -> list[LoggedEvent]:
    """All runs' events in one order. Within a millisecond, a delegate's events come
    after the call that started it and before the result its coordinator gets back."""
    run_of_call = {
        c.head.delegated_by.tool_call_id: c.head.run_id
        for c in checkpoints
        if c.head.delegated_by is not None
    }
    settled: set[str] = set()

    def settle(run_id: str, visiting: frozenset[str]) -> float:
        """Raise the run's order steps past its delegates'; its last order step."""
        events = by_run[run_id]
        if run_id not in settled:
            settled.add(run_id)
            floor = 0.0
            for event in events:
                for call_id in _answered_call_ids(event) if run_of_call else []:
                    child = run_of_call.get(call_id)
                    if child in by_run and child not in visiting:
                        floor = max(floor, settle(child, visiting | {child}) + 0.5)
                floor = max(floor, event.order_step)
                event.order_step = floor
        return max((e.order_step for e in events), default=0.0)

    for run_id in by_run:
        settle(run_id, frozenset({run_id}))
    return sorted((e for events in by_run.values() for e in events), key=lambda e: e.sort_key)


# --- runs and the job -----------------------------------------------------------------


def _run_info(
    run_dir: Path, events: list[LoggedEvent], checkpoints: list[LoggedCheckpoint]
) -> RunInfo:
    expert_key: str | None = None
    setting_file = run_dir / "run-setting.json"
    setting = read_json(setting_file) if setting_file.is_file() else None
    if isinstance(setting, dict) and isinstance(setting.get("expertKey"), str):
        expert_key = setting["expertKey"]
    heads = [c.head for c in checkpoints]
    if expert_key is None and heads:
        expert_key = heads[-1].expert.key
    if expert_key is None:
        first = next((e for e in events if e.is_run_event), None)
        expert_key = first.expert_key if first is not None else None
    steps = [e.step for e in events if e.step is not None]
    return RunInfo(
        run_id=run_dir.name,
        expert_key=expert_key,
        event_count=len(events),
        first_timestamp=events[0].timestamp if events else None,
        last_timestamp=events[-1].timestamp if events else None,
        steps=(min(steps), max(steps)) if steps else None,
        status=heads[-1].status if heads else None,
        delegated_by=next((h.delegated_by.expert.key for h in heads if h.delegated_by), None),
    )


def _synthesize_job(
    job_id: str,
    runs: list[RunInfo],
    events: list[LoggedEvent],
    checkpoints: list[LoggedCheckpoint],
) -> Job:
    """What ``job.json`` would say, for a job the reference wrote (it writes none)."""
    coordinator = next(
        (r.expert_key for r in runs if r.delegated_by is None and r.expert_key), None
    )
    key = coordinator or next((r.expert_key for r in runs if r.expert_key), None)
    last = checkpoints[-1].head if checkpoints else None
    status: JobStatus = "running"
    if last is not None:
        status = _JOB_STATUS_BY_CHECKPOINT.get(last.status, "running")
    steps = [e.step for e in events if e.step is not None]
    steps += [c.head.step_number for c in checkpoints]
    return Job(
        id=job_id,
        status=status,
        coordinator_expert_key=key or "unknown",
        total_steps=max(steps, default=0),
        usage=last.usage if last is not None else Usage(),
        started_at=events[0].timestamp if events else 0,
        finished_at=events[-1].timestamp if events and status != "running" else None,
    )


def _read_job(path: Path) -> Job | None:
    if not path.is_file():
        return None
    try:
        return Job.model_validate(read_json(path))
    except ValidationError as error:
        logger.warning("%s does not describe a job (%s); rebuilt from the events", path, error)
        return None


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


class WorkspaceLog:
    """The jobs under ``{workspace}/perstack/jobs``, or ``{storage}/jobs`` when the storage
    folder is named directly (``PERSTACK_STORAGE_PATH``)."""

    def __init__(self, workspace: Path, *, storage: Path | None = None) -> None:
        self.jobs_dir = (storage or workspace / RUNTIME_DIR_NAME) / "jobs"

    def job_ids(self) -> list[str]:
        """Every job, the most recently active first."""
        jobs = [p for p in _children(self.jobs_dir) if p.is_dir()]
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

    def job_holding(self, kind: HeldKind, given: str) -> str:
        """The job holding the run or checkpoint ``given`` names: its id, or a prefix of
        one id in the whole workspace."""
        held = self._held(kind)
        exact = [job for id_, job in held if id_ == given]
        if exact:
            return exact[0]
        found = [job for id_, job in held if given and id_.startswith(given)]
        if len(found) == 1:
            return found[0]
        raise NotInWorkspaceError(kind, given, held, str(self.jobs_dir))

    def _held(self, kind: HeldKind) -> list[tuple[str, str]]:
        """(id, its job) of every run folder or checkpoint file, the latest job's first."""
        job_ids = self.job_ids()
        if not job_ids:
            raise NoJobsError(str(self.jobs_dir))
        held_in = _run_ids if kind == "run" else _checkpoint_ids
        return [(id_, job) for job in job_ids for id_ in held_in(self.jobs_dir / job)]

    def load(self, job_id: str) -> JobLog:
        job_dir = self.jobs_dir / job_id
        checkpoints, unreadable = _checkpoints(job_dir / "checkpoints")
        by_run: dict[str, list[LoggedEvent]] = {}
        runs: list[RunInfo] = []
        for run_dir in sorted(p for p in _children(job_dir / "runs") if p.is_dir()):
            events = _place_runtime_events(_events(run_dir))
            mine = [c for c in checkpoints if c.head.run_id == run_dir.name]
            runs.append(_run_info(run_dir, events, mine))
            by_run[run_dir.name] = events
        events = _after_delegates(by_run, checkpoints)
        runs.sort(key=lambda r: (r.first_timestamp or 0, r.run_id))
        job = _read_job(job_dir / "job.json")
        found = job is not None
        if job is None:
            job = _synthesize_job(job_id, runs, events, checkpoints)
        return JobLog(job, found, runs, events, checkpoints, unreadable)


def _run_ids(job_dir: Path) -> list[str]:
    return sorted(p.name for p in _children(job_dir / "runs") if p.is_dir())


def _checkpoint_ids(job_dir: Path) -> list[str]:
    """From the file names, which both runtimes make of the ids (no file is read)."""
    paths = _children(job_dir / "checkpoints")
    return sorted(p.stem for p in paths if p.suffix == ".json" and not p.name.startswith("."))


def _checkpoints(folder: Path) -> tuple[list[LoggedCheckpoint], dict[str, UnreadableFileError]]:
    """The readable checkpoints, oldest first, and why each other one is not (by the id its
    file name gives), each named once on stderr."""
    found = []
    unreadable: dict[str, UnreadableFileError] = {}
    for path in _children(folder):
        if path.suffix == ".json" and not path.name.startswith("."):
            try:
                found.append(LoggedCheckpoint.from_file(path))
            except UnreadableFileError as error:
                logger.warning("skipping checkpoint %s: %s", path, error.reason)
                unreadable[path.stem] = error
    return sorted(found, key=lambda c: c.order), unreadable


def _events(run_dir: Path) -> list[LoggedEvent]:
    found = (LoggedEvent.from_file(path, run_dir.name) for path in _children(run_dir))
    return [e for e in found if e is not None]
