"""The agent loop of one Run: generate, call tools, checkpoint, until the run ends.

Each step is one generation with the Expert's tools, then that turn's tool calls (run
concurrently, results kept in call order), then a checkpoint. The run completes when the
model calls ``attemptCompletion`` with no todo open (after one more generation, without
tools, that writes the run result) or replies with text and no tool call. It stops at
``maxSteps`` steps (counted across the Job), on an error, or when interrupted; every ending
writes a final checkpoint and emits exactly one stop or completion event.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from runtime.budget import JobUsage, StepBudget
from runtime.checkpoint import (
    Checkpoint,
    CheckpointError,
    CheckpointStatus,
    DelegatedBy,
    Step,
    ToolCall,
    ToolResult,
    Usage,
)
from runtime.config import MAX_OUTPUT_TOKENS
from runtime.errors import SkillError, StorageError
from runtime.events import (
    AttemptCompletion,
    CallDelegate,
    CallInteractiveTool,
    CallTools,
    CompleteRun,
    ContinueToNextStep,
    Event,
    FinishAllToolCalls,
    FinishToolCall,
    ResolveToolResults,
    Retry,
    StartGeneration,
    StartRun,
    StopRunByError,
    StopRunByExceededMaxSteps,
    StopRunByInteractiveTool,
)
from runtime.generation import RetryPolicy, generate
from runtime.ids import new_id, now_ms
from runtime.messages import (
    AnyMessage,
    ExpertMessage,
    InstructionMessage,
    TextPart,
    ToolCallPart,
    ToolMessage,
    UserMessage,
)
from runtime.providers.provider import Generation, GenerationRequest, Provider, ProviderError
from runtime.skills.manager import SkillManager
from runtime.text import scrub
from runtime.turn import (
    clean_contents,
    result_part,
    text_of,
    to_result,
    tool_calls_of,
    unusable_input_result,
)

logger = logging.getLogger(__name__)

ATTEMPT_COMPLETION = "attemptCompletion"
# What the model hears after a reply with neither text nor a tool call.
EMPTY_REPLY_NUDGE = (
    "Your last reply had no text and no tool call. Call a tool, or answer with text to finish."
)
DEFAULT_MAX_TOKENS = MAX_OUTPUT_TOKENS
INTERRUPTED = CheckpointError(
    name="RunInterrupted",
    message="the run was interrupted (SIGTERM/SIGINT) and stopped",
    is_retryable=True,
)
CONTEXT_WINDOW_TOKENS = 200_000


@dataclass
class RunParams:
    job_id: str
    run_id: str
    expert_key: str
    expert_name: str
    expert_version: str
    model: str
    timeout_s: float
    retry: RetryPolicy
    reasoning_budget: int | None = None
    temperature: float | None = None
    max_tokens: int = DEFAULT_MAX_TOKENS
    delegated_by: DelegatedBy | None = None


@dataclass
class RunOutcome:
    status: CheckpointStatus
    checkpoint: Checkpoint
    text: str | None = None
    error: CheckpointError | None = None
    # The Job's usage when the run ended (see runtime.budget.JobUsage).
    usage: Usage = field(default_factory=Usage)


# Runs a delegated Expert for one tool call and returns its result (never raises for a
# delegate that failed: that is an error result for the coordinator).
Delegate = Callable[[ToolCall, "Checkpoint"], Awaitable[ToolResult]]


class _StepFailed(Exception):
    def __init__(self, error: CheckpointError) -> None:
        super().__init__(error.message)
        self.error = error


class RunLoop:
    def __init__(
        self,
        params: RunParams,
        *,
        provider: Provider,
        skills: SkillManager,
        emit: Callable[[Event], None],
        save_checkpoint: Callable[[Checkpoint], None],
        steps: StepBudget,
        usage: JobUsage | None = None,
        has_open_todos: Callable[[], bool] = lambda: False,
        delegate: Delegate | None = None,
    ) -> None:
        self.params = params
        self._steps = steps
        self._usage = usage or JobUsage()
        self._delegate = delegate
        self._provider = provider
        self._skills = skills
        self._emit = emit
        self._save = save_checkpoint
        self._has_open_todos = has_open_todos
        self.checkpoint: Checkpoint | None = None
        self._step: Step | None = None
        # This turn's calls whose input could not be used (Generation.unusable_inputs).
        self._unusable: dict[str, str] = {}

    # --- the loop ---------------------------------------------------------------------

    def _initial_checkpoint(self, step_number: int) -> Checkpoint:
        """The ``init`` checkpoint of a new run, at its first step."""
        p = self.params
        return Checkpoint(
            job_id=p.job_id,
            run_id=p.run_id,
            status="init",
            step_number=step_number,
            delegated_by=p.delegated_by,
            expert={"key": p.expert_key, "name": p.expert_name, "version": p.expert_version},
            usage=self._usage.total,
            context_window=CONTEXT_WINDOW_TOKENS,
            context_window_usage=0.0,
        )

    async def start(
        self, instruction: InstructionMessage, query: str, *, first_step: int
    ) -> RunOutcome:
        """A fresh run: the instruction and the user's query, at ``first_step`` (a step the
        caller took from the Job's budget)."""
        checkpoint = self._initial_checkpoint(first_step)
        inputs: list[AnyMessage] = [instruction, UserMessage(contents=[TextPart(text=query)])]
        self.checkpoint = checkpoint
        self._emit(
            StartRun.model_validate(
                {**self._base(), "initialCheckpoint": checkpoint, "inputMessages": inputs}
            )
        )
        self.checkpoint = checkpoint.model_copy(
            update={"status": "proceeding", "messages": inputs, "retry_count": 0}
        )
        return await self._loop(inputs)

    async def resume(
        self,
        checkpoint: Checkpoint,
        new_messages: list[AnyMessage],
        *,
        first_step: int | None,
        answers_pending_calls: bool = False,
    ) -> RunOutcome:
        """Go on from a checkpoint (--continue, --resume-from) in a new Run of the same Job.

        ``new_messages`` are added first: the next user message, or (with
        ``answers_pending_calls``) the tool message that completes the pending tool calls.
        ``first_step`` None: the Job has used all its steps, so the run stops at once at
        maxSteps, without a generation (a person's answer to pending calls is kept; a new
        query, which nothing acted on, is not).
        """
        kept = new_messages if first_step is not None or answers_pending_calls else []
        self.checkpoint = checkpoint.model_copy(
            update={
                "id": new_id(),
                "run_id": self.params.run_id,
                "step_number": self._steps.last if first_step is None else first_step,
                "status": "proceeding",
                "messages": [*checkpoint.messages, *kept],
                "usage": self._usage.total,
                "error": None,
                "pending_tool_calls": None,
                "partial_tool_results": None,
                "delegate_to": None,
            }
        )
        inputs = [] if answers_pending_calls else new_messages
        self._emit(
            StartRun.model_validate(
                {**self._base(), "initialCheckpoint": checkpoint, "inputMessages": inputs}
            )
        )
        if answers_pending_calls:
            self._emit(
                FinishAllToolCalls.model_validate({**self._base(), "newMessages": new_messages})
            )
        if first_step is None:
            return self._stop_at_max_steps(self.checkpoint, self._finish_step([]))
        return await self._loop(new_messages)

    def stop_before_start(
        self, error: CheckpointError, resumed: Checkpoint | None, *, first_step: int
    ) -> RunOutcome:
        """End a run whose skills could not start: a start event, then a stop by error
        with a checkpoint (the resumed one's history, or none)."""
        checkpoint = self._initial_checkpoint(first_step)
        if resumed is not None:
            checkpoint = checkpoint.model_copy(update={"messages": list(resumed.messages)})
        self.checkpoint = checkpoint
        self._emit(
            StartRun.model_validate(
                {**self._base(), "initialCheckpoint": checkpoint, "inputMessages": []}
            )
        )
        return self._stop_by_error(error)

    async def _loop(self, inputs: list[AnyMessage]) -> RunOutcome:
        step_inputs: list[AnyMessage] = inputs
        try:
            while True:
                outcome = await self._run_step(step_inputs)
                if outcome is not None:
                    return outcome
                step_inputs = []
        except _StepFailed as failure:
            return self._stop_by_error(failure.error)
        except StorageError as error:  # a checkpoint that cannot be written: stop there
            return self._stop_by_error(
                CheckpointError(name="StorageError", message=str(error), is_retryable=False)
            )
        except asyncio.CancelledError:
            self._stop_by_error(INTERRUPTED)
            raise
        except Exception as error:  # the top of a run: a bug must still end it cleanly
            logger.exception("the run failed unexpectedly")
            return self._stop_by_error(
                CheckpointError(
                    name="InternalError",
                    message=f"the runtime failed: {type(error).__name__}: {error}",
                    is_retryable=False,
                )
            )

    async def _run_step(self, step_inputs: list[AnyMessage]) -> RunOutcome | None:
        assert self.checkpoint is not None
        cp = self.checkpoint
        self._step = Step(
            step_number=cp.step_number, input_messages=step_inputs, started_at=now_ms()
        )
        generation = await self._generate(cp.messages, tools=True)
        calls = tool_calls_of(generation)
        if not calls:
            text = text_of(generation)
            if text:
                return self._complete_with_text(generation, text)
            return self._nudge_after_empty_reply(generation)
        return await self._call_tools(generation, calls)

    # --- one generation -----------------------------------------------------------------

    async def _generate(self, messages: list[AnyMessage], *, tools: bool) -> Generation:
        p = self.params
        if tools:
            # The run-result generation has no startGeneration of its own, as in the reference.
            self._emit(StartGeneration.model_validate({**self._base(), "messages": messages}))
        request = GenerationRequest(
            model=p.model,
            messages=messages,
            tools=self._skills.tool_definitions() if tools else None,
            max_tokens=p.max_tokens,
            timeout_s=p.timeout_s,
            reasoning_budget=p.reasoning_budget,
            temperature=p.temperature,
        )
        try:
            generation = await generate(
                self._provider,
                request,
                policy=p.retry,
                emit=self._emit,
                base=self._base,
                text_is_run_result=not tools,
            )
        except ProviderError as error:
            raise _StepFailed(
                CheckpointError(
                    name=f"ProviderError:{error.kind}",
                    message=str(error),
                    status_code=error.status_code,
                    is_retryable=error.retryable,
                )
            ) from error
        self._add_usage(generation.usage)
        return generation

    def _add_usage(self, usage: Usage) -> None:
        assert self.checkpoint is not None and self._step is not None
        total = self._usage.add(usage)
        self.checkpoint = self.checkpoint.model_copy(
            update={
                "usage": total,
                "context_window_usage": round(usage.input_tokens / CONTEXT_WINDOW_TOKENS, 6),
            }
        )
        self._step.usage = self._step.usage + usage

    # --- the ways a step ends -------------------------------------------------------------

    async def _call_tools(
        self, generation: Generation, calls: list[ToolCallPart]
    ) -> RunOutcome | None:
        expert_message = ExpertMessage(contents=clean_contents(generation))
        self._unusable = generation.unusable_inputs
        tool_calls = [self._describe_call(call) for call in calls]
        usage = generation.usage
        base = self._base()
        self._emit(
            CallTools.model_validate(
                {**base, "newMessage": expert_message, "toolCalls": tool_calls, "usage": usage}
            )
        )
        interactive = [c for c in tool_calls if self._kind(c) == "interactive"]
        delegated = [c for c in tool_calls if self._kind(c) == "delegate"]
        if delegated:
            self._emit(
                CallDelegate.model_validate(
                    {**base, "newMessage": expert_message, "toolCalls": delegated, "usage": usage}
                )
            )
        step = self._require_step()
        step.tool_calls = tool_calls
        answered = [c for c in tool_calls if c not in interactive]
        results = await asyncio.gather(*(self._run_tool(call) for call in answered))
        if interactive:
            return self._stop_for_interactive(expert_message, interactive, list(results), usage)
        tool_message = ToolMessage(contents=[result_part(r) for r in results])
        step.tool_results = list(results)
        completion = next((r for r in results if r.tool_name == ATTEMPT_COMPLETION), None)
        if completion is not None and not completion.is_error and not self._has_open_todos():
            return await self._complete_after_attempt(expert_message, tool_message, completion)
        self._emit(
            ResolveToolResults.model_validate({**self._base(), "toolResults": list(results)})
        )
        self._emit(FinishToolCall.model_validate({**self._base(), "newMessages": [tool_message]}))
        return self._end_step([expert_message, tool_message])

    def _kind(self, call: ToolCall) -> str:
        skill = self._skills.skill_for(call.tool_name)
        return str(getattr(skill, "kind", "tool"))

    def _stop_for_interactive(
        self,
        expert_message: ExpertMessage,
        pending: list[ToolCall],
        partial: list[ToolResult],
        usage: Usage,
    ) -> RunOutcome:
        """Stop and wait for a person: the checkpoint keeps the calls still to be answered
        and the results of the others, so `--continue -i` can finish the turn."""
        assert self.checkpoint is not None
        self._emit(
            CallInteractiveTool.model_validate(
                {
                    **self._base(),
                    "newMessage": expert_message,
                    "toolCall": pending[0],
                    "usage": usage,
                }
            )
        )
        checkpoint = self.checkpoint.model_copy(
            update={
                "status": "stoppedByInteractiveTool",
                "messages": [*self.checkpoint.messages, expert_message],
                "pending_tool_calls": pending,
                "partial_tool_results": partial,
            }
        )
        step = self._finish_step([expert_message])
        step.tool_results = partial
        step.pending_tool_calls = pending
        checkpoint = self._finalize(checkpoint)
        self._emit(
            StopRunByInteractiveTool.model_validate(
                {**self._base(), "checkpoint": checkpoint, "step": step}
            )
        )
        return RunOutcome("stoppedByInteractiveTool", checkpoint, usage=checkpoint.usage)

    def _describe_call(self, call: ToolCallPart) -> ToolCall:
        skill = self._skills.skill_for(call.tool_name)
        args = scrub(call.args) if isinstance(call.args, dict) else {}
        return ToolCall(
            id=call.tool_call_id,
            skill_name=skill.name if skill is not None else "unknown",
            tool_name=call.tool_name,
            args=args,
        )

    async def _run_tool(self, call: ToolCall) -> ToolResult:
        if call.id in self._unusable:
            return unusable_input_result(call, self._unusable[call.id])
        if self._delegate is not None and self._kind(call) == "delegate":
            assert self.checkpoint is not None
            return await self._delegate(call, self.checkpoint)
        try:
            skill_name, outcome = await self._skills.call(call.tool_name, call.args)
        except SkillError as error:
            raise _StepFailed(
                CheckpointError(name="SkillError", message=str(error), is_retryable=False)
            ) from error
        return to_result(call, skill_name, outcome)

    async def _complete_after_attempt(
        self, expert_message: ExpertMessage, tool_message: ToolMessage, completion: ToolResult
    ) -> RunOutcome:
        self._emit(AttemptCompletion.model_validate({**self._base(), "toolResult": completion}))
        assert self.checkpoint is not None
        messages = [*self.checkpoint.messages, expert_message, tool_message]
        self.checkpoint = self.checkpoint.model_copy(update={"messages": messages})
        generation = await self._generate(messages, tools=False)
        text = text_of(generation)
        final = ExpertMessage(contents=[TextPart(text=text)])
        return self._complete(generation, text, [expert_message, tool_message, final])

    def _complete_with_text(self, generation: Generation, text: str) -> RunOutcome:
        message = ExpertMessage(contents=clean_contents(generation))
        return self._complete(generation, text, [message], include_in_messages=True)

    def _complete(
        self,
        generation: Generation,
        text: str,
        new_messages: list[AnyMessage],
        *,
        include_in_messages: bool = False,
    ) -> RunOutcome:
        assert self.checkpoint is not None
        extra = new_messages if include_in_messages else new_messages[-1:]
        checkpoint = self.checkpoint.model_copy(
            update={"status": "completed", "messages": [*self.checkpoint.messages, *extra]}
        )
        step = self._finish_step(new_messages)
        checkpoint = self._finalize(checkpoint)
        self._emit(
            CompleteRun.model_validate(
                {
                    **self._base(),
                    "checkpoint": checkpoint,
                    "step": step,
                    "text": text,
                    "usage": generation.usage,
                }
            )
        )
        return RunOutcome("completed", checkpoint, text=text, usage=checkpoint.usage)

    def _nudge_after_empty_reply(self, generation: Generation) -> RunOutcome | None:
        nudge = UserMessage(contents=[TextPart(text=EMPTY_REPLY_NUDGE)])
        self._emit(
            Retry.model_validate(
                {
                    **self._base(),
                    "reason": "the model replied with neither text nor a tool call",
                    "newMessages": [nudge],
                    "usage": generation.usage,
                }
            )
        )
        return self._end_step([nudge])

    def _end_step(self, new_messages: list[AnyMessage]) -> RunOutcome | None:
        """Close a step that did not end the run: checkpoint it, then go on or stop at
        maxSteps."""
        assert self.checkpoint is not None
        checkpoint = self.checkpoint.model_copy(
            update={
                "messages": [*self.checkpoint.messages, *new_messages],
                "retry_count": 0,
                "usage": self._usage.total,  # with what delegates used during the step
            }
        )
        step = self._finish_step(new_messages)
        next_step = self._steps.take()
        if next_step is None:
            return self._stop_at_max_steps(checkpoint, step)
        self._save(checkpoint)
        self.checkpoint = checkpoint.model_copy(update={"id": new_id(), "step_number": next_step})
        self._emit(
            ContinueToNextStep.model_validate(
                {
                    **self._base(step_number=checkpoint.step_number),
                    "checkpoint": checkpoint,
                    "step": step,
                    "nextCheckpoint": self.checkpoint,
                }
            )
        )
        return None

    def _stop_at_max_steps(self, checkpoint: Checkpoint, step: Step) -> RunOutcome:
        """Stop because the Job has used all its steps (any of its Runs may have used them)."""
        stopped = self._finalize(
            checkpoint.model_copy(update={"status": "stoppedByExceededMaxSteps"})
        )
        self._emit(
            StopRunByExceededMaxSteps.model_validate(
                {**self._base(), "checkpoint": stopped, "step": step}
            )
        )
        return RunOutcome("stoppedByExceededMaxSteps", stopped, usage=stopped.usage)

    def _stop_by_error(self, error: CheckpointError) -> RunOutcome:
        """Stop with the last complete state: a half turn never lands in a checkpoint."""
        assert self.checkpoint is not None
        step = self._step
        # Calls whose results never came: what a resume has to run again.
        pending = step.tool_calls if step is not None and step.tool_results is None else None
        checkpoint = self.checkpoint.model_copy(
            update={"status": "stoppedByError", "error": error, "pending_tool_calls": pending}
        )
        step = self._finish_step([])
        checkpoint = self._finalize(checkpoint)
        self._emit(
            StopRunByError.model_validate(
                {**self._base(), "checkpoint": checkpoint, "step": step, "error": error}
            )
        )
        logger.error("run stopped by error: %s", error.message)
        return RunOutcome("stoppedByError", checkpoint, error=error, usage=checkpoint.usage)

    # --- helpers --------------------------------------------------------------------------

    def _finalize(self, checkpoint: Checkpoint) -> Checkpoint:
        """Save the run's last checkpoint, with the Job's usage as it is now."""
        self.checkpoint = checkpoint.model_copy(update={"usage": self._usage.total})
        try:
            self._save(self.checkpoint)
        except StorageError as error:  # the stop event still says how the run ended
            logger.error("the run's last checkpoint could not be written: %s", error)
        return self.checkpoint

    def _require_step(self) -> Step:
        assert self._step is not None
        return self._step

    def _finish_step(self, new_messages: list[AnyMessage]) -> Step:
        step = self._step or Step(step_number=self._current_step(), started_at=now_ms())
        step.new_messages = list(new_messages)
        step.finished_at = now_ms()
        self._step = None
        return step

    def _current_step(self) -> int:
        return self.checkpoint.step_number if self.checkpoint is not None else 0

    def _base(self, step_number: int | None = None) -> dict[str, Any]:
        return {
            "job_id": self.params.job_id,
            "run_id": self.params.run_id,
            "expert_key": self.params.expert_key,
            "step_number": self._current_step() if step_number is None else step_number,
        }
