"""The state of a run: usage, tool calls and results, steps and checkpoints, and the job."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from runtime.ids import new_id
from runtime.messages import MessageList, ResultContent
from runtime.model import WireModel

CheckpointStatus = Literal[
    "init",
    "proceeding",
    "completed",
    "stoppedByInteractiveTool",
    "stoppedByDelegate",
    "stoppedByExceededMaxSteps",
    "stoppedByError",
]
STOPPED_STATUSES: frozenset[str] = frozenset(
    {"stoppedByInteractiveTool", "stoppedByDelegate", "stoppedByExceededMaxSteps", "stoppedByError"}
)

JobStatus = Literal[
    "running", "completed", "stoppedByMaxSteps", "stoppedByInteractiveTool", "stoppedByError"
]
# The Job's status when its coordinator's Run ended with a checkpoint of this status.
JOB_STATUS: dict[str, JobStatus] = {
    "completed": "completed",
    "stoppedByExceededMaxSteps": "stoppedByMaxSteps",
    "stoppedByInteractiveTool": "stoppedByInteractiveTool",
    "stoppedByError": "stoppedByError",
    "stoppedByDelegate": "running",
}


class Usage(WireModel):
    input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    total_tokens: int = 0
    cached_input_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            reasoning_tokens=self.reasoning_tokens + other.reasoning_tokens,
            total_tokens=self.total_tokens + other.total_tokens,
            cached_input_tokens=self.cached_input_tokens + other.cached_input_tokens,
        )


class ToolCall(WireModel):
    id: str
    skill_name: str
    tool_name: str
    args: dict[str, Any] = Field(default_factory=dict)


class ToolResult(WireModel):
    id: str
    skill_name: str
    tool_name: str
    result: list[ResultContent]
    # Ours: the reference only marks errors inside the toolResultPart of the message.
    is_error: bool | None = None


class ExpertRef(WireModel):
    key: str
    name: str
    version: str


class DelegationTarget(WireModel):
    expert: ExpertRef
    tool_call_id: str
    tool_name: str
    query: str


class DelegatedBy(WireModel):
    expert: ExpertRef
    tool_call_id: str
    tool_name: str
    checkpoint_id: str
    # The delegating Run; the reference writes it, ours did not before (so: optional).
    run_id: str | None = None


class CheckpointError(WireModel):
    name: str
    message: str
    status_code: int | None = None
    is_retryable: bool = False


class Step(WireModel):
    step_number: int
    input_messages: MessageList | None = None
    new_messages: MessageList = Field(default_factory=list)
    tool_calls: list[ToolCall] | None = None
    tool_results: list[ToolResult] | None = None
    pending_tool_calls: list[ToolCall] | None = None
    usage: Usage = Field(default_factory=Usage)
    started_at: int
    finished_at: int | None = None


class ElidedMessages(WireModel):
    """Ours, in event files only: the history that holds this marker begins with the first
    ``count`` messages of checkpoint ``checkpoint_id`` (``checkpoints/{id}.json`` of the
    same job), which are left out of the file; its ``messages`` are those that follow."""

    checkpoint_id: str
    count: int


class Checkpoint(WireModel):
    id: str = Field(default_factory=new_id)
    job_id: str
    run_id: str
    status: CheckpointStatus
    step_number: int
    messages: MessageList = Field(default_factory=list)
    expert: ExpertRef
    delegate_to: list[DelegationTarget] | None = None
    delegated_by: DelegatedBy | None = None
    usage: Usage = Field(default_factory=Usage)
    context_window: int | None = None
    context_window_usage: float | None = None
    pending_tool_calls: list[ToolCall] | None = None
    partial_tool_results: list[ToolResult] | None = None
    metadata: dict[str, Any] | None = None
    error: CheckpointError | None = None
    retry_count: int | None = None
    elided_messages: ElidedMessages | None = None


class Job(WireModel):
    id: str
    status: JobStatus
    coordinator_expert_key: str
    total_steps: int = 0
    max_steps: int | None = None
    usage: Usage = Field(default_factory=Usage)
    started_at: int
    finished_at: int | None = None
