"""Every event the runtime emits, as one discriminated union.

The same models describe stdout (one JSON object per line), the event files in the
workspace and what the analytics read. Run events carry ``expertKey`` and ``stepNumber``;
runtime events (infrastructure: skills, containers, the proxy) do not. Field names are the
reference implementation's.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter, ValidationError

from runtime.checkpoint import (
    Checkpoint,
    CheckpointError,
    ElidedMessages,
    Step,
    ToolCall,
    ToolResult,
    Usage,
)
from runtime.ids import new_id, now_ms
from runtime.messages import ExpertMessage, MessageList
from runtime.model import WireModel


class BaseEvent(WireModel):
    id: str = Field(default_factory=new_id)
    timestamp: int = Field(default_factory=now_ms)
    job_id: str
    run_id: str


class RunEvent(BaseEvent):
    expert_key: str
    step_number: int


class StartRun(RunEvent):
    type: Literal["startRun"] = "startRun"
    initial_checkpoint: Checkpoint
    input_messages: MessageList


class StartGeneration(RunEvent):
    type: Literal["startGeneration"] = "startGeneration"
    messages: MessageList
    elided_messages: ElidedMessages | None = None  # event files only (see ElidedMessages)


class Retry(RunEvent):
    type: Literal["retry"] = "retry"
    reason: str
    new_messages: MessageList = Field(default_factory=list)
    tool_calls: list[ToolCall] | None = None
    tool_results: list[ToolResult] | None = None
    usage: Usage = Field(default_factory=Usage)
    # Ours: which attempt failed, how long we wait before the next, and the HTTP status.
    attempt: int | None = None
    delay_ms: int | None = None
    status_code: int | None = None


class CallTools(RunEvent):
    type: Literal["callTools"] = "callTools"
    new_message: ExpertMessage
    tool_calls: list[ToolCall]
    usage: Usage


class CallInteractiveTool(RunEvent):
    type: Literal["callInteractiveTool"] = "callInteractiveTool"
    new_message: ExpertMessage
    tool_call: ToolCall
    usage: Usage


class CallDelegate(RunEvent):
    type: Literal["callDelegate"] = "callDelegate"
    new_message: ExpertMessage
    tool_calls: list[ToolCall]
    usage: Usage


class ResolveToolResults(RunEvent):
    type: Literal["resolveToolResults"] = "resolveToolResults"
    tool_results: list[ToolResult]


class AttemptCompletion(RunEvent):
    type: Literal["attemptCompletion"] = "attemptCompletion"
    tool_result: ToolResult


class FinishToolCall(RunEvent):
    type: Literal["finishToolCall"] = "finishToolCall"
    new_messages: MessageList


class ResumeToolCalls(RunEvent):
    type: Literal["resumeToolCalls"] = "resumeToolCalls"
    pending_tool_calls: list[ToolCall]
    partial_tool_results: list[ToolResult]


class FinishAllToolCalls(RunEvent):
    type: Literal["finishAllToolCalls"] = "finishAllToolCalls"
    new_messages: MessageList


class ContinueToNextStep(RunEvent):
    type: Literal["continueToNextStep"] = "continueToNextStep"
    checkpoint: Checkpoint
    step: Step
    next_checkpoint: Checkpoint


class StopRunByInteractiveTool(RunEvent):
    type: Literal["stopRunByInteractiveTool"] = "stopRunByInteractiveTool"
    checkpoint: Checkpoint
    step: Step


class StopRunByDelegate(RunEvent):
    type: Literal["stopRunByDelegate"] = "stopRunByDelegate"
    checkpoint: Checkpoint
    step: Step


class StopRunByExceededMaxSteps(RunEvent):
    type: Literal["stopRunByExceededMaxSteps"] = "stopRunByExceededMaxSteps"
    checkpoint: Checkpoint
    step: Step


class StopRunByError(RunEvent):
    type: Literal["stopRunByError"] = "stopRunByError"
    checkpoint: Checkpoint
    step: Step
    error: CheckpointError


class CompleteRun(RunEvent):
    type: Literal["completeRun"] = "completeRun"
    checkpoint: Checkpoint
    step: Step
    text: str
    usage: Usage


class StartStreamingReasoning(RunEvent):
    type: Literal["startStreamingReasoning"] = "startStreamingReasoning"


class StreamReasoning(RunEvent):
    type: Literal["streamReasoning"] = "streamReasoning"
    delta: str


class CompleteStreamingReasoning(RunEvent):
    type: Literal["completeStreamingReasoning"] = "completeStreamingReasoning"
    text: str


class StartStreamingRunResult(RunEvent):
    type: Literal["startStreamingRunResult"] = "startStreamingRunResult"


class StreamRunResult(RunEvent):
    type: Literal["streamRunResult"] = "streamRunResult"
    delta: str


class CompleteStreamingRunResult(RunEvent):
    type: Literal["completeStreamingRunResult"] = "completeStreamingRunResult"
    text: str


# --- runtime events -------------------------------------------------------------------


class InteractiveToolCallInput(WireModel):
    tool_call_id: str
    tool_name: str
    skill_name: str | None = None
    text: str


class InitializeRuntime(BaseEvent):
    type: Literal["initializeRuntime"] = "initializeRuntime"
    runtime_version: str
    runtime: str | None = None
    expert_name: str
    experts: list[str]
    model: str
    temperature: float | None = None
    max_steps: int | None = None
    max_retries: int
    timeout: int
    query: str | None = None
    interactive_tool_call: InteractiveToolCallInput | None = None


class ServerInfo(WireModel):
    name: str
    version: str


class SkillStarting(BaseEvent):
    type: Literal["skillStarting"] = "skillStarting"
    skill_name: str
    command: str
    args: list[str] = Field(default_factory=list)


class SkillConnected(BaseEvent):
    type: Literal["skillConnected"] = "skillConnected"
    skill_name: str
    server_info: ServerInfo | None = None
    connect_duration_ms: int | None = None
    total_duration_ms: int | None = None
    spawn_duration_ms: int | None = None
    handshake_duration_ms: int | None = None
    tool_discovery_duration_ms: int | None = None


class SkillStderr(BaseEvent):
    type: Literal["skillStderr"] = "skillStderr"
    skill_name: str
    message: str


class SkillDisconnected(BaseEvent):
    type: Literal["skillDisconnected"] = "skillDisconnected"
    skill_name: str
    # Ours: why the connection ended when it was not a normal close.
    reason: str | None = None


class StreamingText(BaseEvent):
    type: Literal["streamingText"] = "streamingText"
    text: str


class DockerBuildProgress(BaseEvent):
    type: Literal["dockerBuildProgress"] = "dockerBuildProgress"
    stage: Literal["pulling", "building", "complete", "error"]
    service: str
    message: str
    progress: float | None = None


class DockerContainerStatus(BaseEvent):
    type: Literal["dockerContainerStatus"] = "dockerContainerStatus"
    status: Literal["starting", "running", "healthy", "unhealthy", "stopped", "error"]
    service: str
    message: str | None = None


class ProxyAccess(BaseEvent):
    type: Literal["proxyAccess"] = "proxyAccess"
    action: Literal["allowed", "blocked"]
    domain: str
    port: int
    reason: str | None = None


Event = Annotated[
    StartRun
    | StartGeneration
    | Retry
    | CallTools
    | CallInteractiveTool
    | CallDelegate
    | ResolveToolResults
    | AttemptCompletion
    | FinishToolCall
    | ResumeToolCalls
    | FinishAllToolCalls
    | ContinueToNextStep
    | StopRunByInteractiveTool
    | StopRunByDelegate
    | StopRunByExceededMaxSteps
    | StopRunByError
    | CompleteRun
    | StartStreamingReasoning
    | StreamReasoning
    | CompleteStreamingReasoning
    | StartStreamingRunResult
    | StreamRunResult
    | CompleteStreamingRunResult
    | InitializeRuntime
    | SkillStarting
    | SkillConnected
    | SkillStderr
    | SkillDisconnected
    | StreamingText
    | DockerBuildProgress
    | DockerContainerStatus
    | ProxyAccess,
    Field(discriminator="type"),
]

EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)
EVENT_TYPES: frozenset[str] = frozenset(
    member.model_fields["type"].default
    for member in Event.__origin__.__args__  # type: ignore[attr-defined]
)
STOP_EVENT_TYPES: frozenset[str] = frozenset(
    {
        "completeRun",
        "stopRunByInteractiveTool",
        "stopRunByDelegate",
        "stopRunByExceededMaxSteps",
        "stopRunByError",
    }
)


class UnknownEventTypeError(ValueError):
    """An event whose ``type`` this version does not know (kept raw by the analytics)."""


def parse_event(data: str | bytes | dict[str, Any]) -> Event:
    """Parse one event from a JSON line or a decoded object.

    Raises ``UnknownEventTypeError`` for a type we do not model and pydantic's
    ``ValidationError`` for a known type with bad fields.
    """
    try:
        if isinstance(data, dict):
            return EVENT_ADAPTER.validate_python(data)
        return EVENT_ADAPTER.validate_json(data)
    except ValidationError as error:
        if any(e["type"] == "union_tag_invalid" for e in error.errors()):
            raise UnknownEventTypeError(str(error)) from error
        raise
