"""One stored event or checkpoint, read only as far as it is needed.

A long job's files are large: every step's startGeneration and continueToNextStep carry
the whole history, so a 300-step job holds over 100 MB. An event is therefore known by its
file name (timestamp, step, type) until something needs its body, which is read then and,
for the events that are shown, kept; a checkpoint is known by its head (ids, status, step,
Expert, usage, delegation, error) until its messages are asked for.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel

from runtime.checkpoint import Checkpoint, CheckpointError, DelegatedBy, ExpertRef, Usage
from runtime.errors import StorageError
from runtime.events import BaseEvent, Event, RunEvent, UnknownEventTypeError, parse_event
from runtime.log.errors import UnreadableFileError
from runtime.safefiles import read_regular

logger = logging.getLogger(__name__)

EVENT_FILE = re.compile(
    r"^event-(?P<ts>\d+)-(?P<step>\d+)-(?P<type>[A-Za-z0-9_]+?)(?:-(?P<n>\d+))?\.json$"
)

# Types without a step (skills, containers, the proxy); we store them with step 0.
RUNTIME_EVENT_TYPES: frozenset[str] = frozenset(
    str(member.model_fields["type"].default)
    for member in BaseEvent.__subclasses__()
    if member is not RunEvent
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


def read_json(path: Path) -> Any:
    """The first JSON value in ``path``; None (and a warning) when there is none.

    The reference overwrites an event file when two events share millisecond, step and
    type; a shorter second event leaves the first one's tail behind, which is ignored."""
    try:
        text = read_regular(path)[0].decode("utf-8")
    except (StorageError, UnicodeDecodeError) as error:
        logger.warning("cannot read %s: %s", path, error)
        return None
    try:
        value, end = json.JSONDecoder().raw_decode(text)
    except json.JSONDecodeError as error:
        logger.warning("%s is not JSON: %s", path, error)
        return None
    if text[end:].strip():
        logger.warning("%s: ignoring %d bytes after the first JSON value", path, len(text) - end)
    return value


# Fields of an event that hold a whole history of messages.
_HISTORY_HOLDERS = ("checkpoint", "nextCheckpoint", "initialCheckpoint")


def _without_histories(data: dict[str, Any]) -> dict[str, Any]:
    light = dict(data)
    for key in _HISTORY_HOLDERS:
        holder = light.get(key)
        if isinstance(holder, dict) and "messages" in holder:
            light[key] = {**holder, "messages": []}
    step = light.get("step")
    if isinstance(step, dict) and "inputMessages" in step:
        light["step"] = {**step, "inputMessages": None}
    if light.get("type") == "startGeneration":
        light["messages"] = []
    return light


@dataclass(eq=False)
class LoggedEvent:
    """One stored event, known by its file name until its body is needed."""

    type: str
    timestamp: int
    step: int | None
    run_id: str
    path: Path | None = None
    sequence: int = 0
    order_step: float = 0
    """The step this event sorts with: its own; for a runtime event the step its run was
    in; for a coordinator's events after its delegates answered, just past their last
    step (its step number is still that of the call)."""
    _data: dict[str, Any] | None = field(default=None, repr=False)
    _event: Event | None = field(default=None, repr=False)
    unreadable: bool = False

    @classmethod
    def from_file(cls, path: Path, run_id: str) -> LoggedEvent | None:
        match = EVENT_FILE.match(path.name)
        if match is None:
            return None
        event_type = match["type"]
        step: int | None = int(match["step"])
        if step == 0 and (event_type in RUNTIME_EVENT_TYPES or event_type not in TYPE_RANK):
            step = None
        return cls(
            type=event_type,
            timestamp=int(match["ts"]),
            step=step,
            run_id=run_id,
            path=path,
            sequence=int(match["n"] or 0),
            order_step=step or 0,
        )

    def read(self) -> dict[str, Any]:
        """The stored object, without keeping it (for a pass over every event)."""
        if self._data is not None:
            return self._data
        data = read_json(self.path) if self.path is not None else None
        if isinstance(data, dict):
            return data
        self.unreadable = True
        return {**self.name_fields(), "unreadableFile": str(self.path)}

    def name_fields(self) -> dict[str, Any]:
        """The fields the file name tells, as the stored object has them."""
        fields: dict[str, Any] = {"type": self.type, "timestamp": self.timestamp}
        fields["runId"] = self.run_id
        if self.step is not None:
            fields["stepNumber"] = self.step
        return fields

    @property
    def data(self) -> dict[str, Any]:
        """The stored object, kept once read (for the events that are shown)."""
        if self._data is None:
            self._data = self.read()
        return self._data

    @property
    def event(self) -> Event | None:
        """The event's model without the histories it carries (the messages of its
        checkpoints and of a generation's input): all a view of one event needs, at a
        fraction of the cost. None when this version does not model the type."""
        if self._event is None and not self.unreadable:
            try:
                self._event = parse_event(_without_histories(self.data))
            except UnknownEventTypeError:
                logger.debug("%s: type %r is not modelled here", self.path, self.type)
            except ValidationError as error:
                logger.debug("%s: does not fit its type's model: %s", self.path, error)
        return self._event

    def forget(self) -> None:
        """Drop the body and model read so far (a long job's bodies are large)."""
        self._data = None
        self._event = None

    @property
    def expert_key(self) -> str | None:
        value = self.data.get("expertKey")
        return value if isinstance(value, str) else None

    @property
    def is_run_event(self) -> bool:
        return self.step is not None

    @property
    def sort_key(self) -> tuple[int, float, int, int]:
        rank = TYPE_RANK.get(self.type, len(TYPE_RANK))
        return (self.timestamp, self.order_step, rank, self.sequence)


class CheckpointHead(BaseModel):
    """What a listing needs of a checkpoint: everything but its messages."""

    model_config = ConfigDict(alias_generator=to_camel, validate_by_name=True, extra="ignore")

    id: str
    run_id: str
    status: str
    step_number: int
    expert: ExpertRef
    usage: Usage = Usage()
    delegated_by: DelegatedBy | None = None
    error: CheckpointError | None = None


@dataclass(eq=False)
class LoggedCheckpoint:
    path: Path
    head: CheckpointHead
    _checkpoint: Checkpoint | None = field(default=None, repr=False)

    @classmethod
    def from_file(cls, path: Path) -> LoggedCheckpoint:
        """The checkpoint's head; UnreadableFileError saying why when there is none."""
        try:
            raw = read_regular(path)[0]
        except StorageError as error:  # missing, a FIFO, a folder…: never blocks
            raise UnreadableFileError(str(path), str(error)) from None
        try:
            return cls(path, CheckpointHead.model_validate_json(raw))
        except ValidationError:
            pass  # the reference's overwritten tails, or a real fault
        data, problem = _first_json_value(raw)
        if problem is not None:
            raise UnreadableFileError(str(path), problem)
        try:
            return cls(path, CheckpointHead.model_validate(data))
        except ValidationError as error:
            raise UnreadableFileError(str(path), _not_a_checkpoint(error)) from None

    @property
    def id(self) -> str:
        return self.head.id

    @property
    def data(self) -> dict[str, Any]:
        data = read_json(self.path)
        return data if isinstance(data, dict) else {}

    @property
    def checkpoint(self) -> Checkpoint:
        if self._checkpoint is None:
            try:
                self._checkpoint = Checkpoint.model_validate(self.data)
            except ValidationError as error:
                raise UnreadableFileError(str(self.path), str(error)) from error
        return self._checkpoint

    @property
    def order(self) -> tuple[int, bool]:
        return (self.head.step_number, self.head.status != "init")


def _first_json_value(raw: bytes) -> tuple[Any, str | None]:
    """The first JSON value in ``raw`` (what follows it is ignored), or why there is none."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        return None, f"not UTF-8 text ({error.reason} at byte {error.start})"
    try:
        value, _ = json.JSONDecoder().raw_decode(text)
    except json.JSONDecodeError as error:
        return None, f"not JSON ({error.msg} at line {error.lineno} column {error.colno})"
    return value, None


def _not_a_checkpoint(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "the top level"
    more = error.error_count() - 1
    return f"not a checkpoint ({where}: {first['msg']}" + (f"; {more} more)" if more else ")")
