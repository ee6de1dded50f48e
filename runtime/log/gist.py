"""The gist of an event or a message in one line, and its full details on request.

Known event types are read through their models; a type this version does not model
shows its stored fields, cut short.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from runtime.checkpoint import ToolCall, ToolResult, Usage
from runtime.events import (
    AttemptCompletion,
    CallDelegate,
    CallInteractiveTool,
    CallTools,
    CompleteRun,
    CompleteStreamingReasoning,
    CompleteStreamingRunResult,
    ContinueToNextStep,
    DockerBuildProgress,
    DockerContainerStatus,
    FinishAllToolCalls,
    FinishToolCall,
    InitializeRuntime,
    ProxyAccess,
    ResolveToolResults,
    ResumeToolCalls,
    Retry,
    SkillConnected,
    SkillDisconnected,
    SkillStarting,
    SkillStderr,
    StartRun,
    StopRunByDelegate,
    StopRunByError,
    StopRunByExceededMaxSteps,
    StopRunByInteractiveTool,
    StreamingText,
    StreamReasoning,
    StreamRunResult,
)
from runtime.log.stored import LoggedEvent
from runtime.messages import (
    AnyMessage,
    ExpertMessage,
    ResultContent,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolMessage,
    UserMessage,
)
from runtime.skills.delegates import delegated_expert

# One event line stays readable on a terminal: each argument value, each result and each
# text is cut to these many characters (the full values are in --verbose and --json).
ARG_CHARS = 40
RESULT_CHARS = 60
TEXT_CHARS = 100
LINE_CHARS = 160
# Fields every event has; the gist of an unmodelled type leaves them out.
_COMMON_FIELDS = frozenset({"id", "type", "timestamp", "jobId", "runId", "expertKey", "stepNumber"})


def cut(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def call_preview(name: str, args: Any) -> str:
    if not isinstance(args, dict):
        return f"{name}({cut(_json(args), ARG_CHARS)})" if args is not None else f"{name}()"
    inner = ", ".join(f"{k}={cut(_json(v), ARG_CHARS)}" for k, v in args.items())
    return f"{name}({inner})"


def _calls(calls: Sequence[ToolCall]) -> str:
    return ", ".join(call_preview(c.tool_name, c.args) for c in calls)


def content_text(contents: Sequence[ResultContent] | Sequence[Any]) -> str:
    """The text of a result or message's parts; other parts by their kind."""
    pieces: list[str] = []
    for part in contents:
        if isinstance(part, TextPart):
            pieces.append(part.text)
        elif isinstance(part, ThinkingPart):
            pieces.append(f"(thinking: {part.thinking})")
        elif isinstance(part, ToolCallPart):
            pieces.append(f"→ {call_preview(part.tool_name, part.args)}")
        else:
            pieces.append(f"[{getattr(part, 'type', 'part')}]")
    return " ".join(pieces)


def result_failed(result: ToolResult) -> bool:
    """Marked as an error, or (the reference marks nothing) text that says so."""
    if result.is_error:
        return True
    return content_text(result.result).lstrip().lower().startswith("error")


def _result(result: ToolResult) -> str:
    mark = "✗" if result_failed(result) else "✓"
    return f"{mark} {result.tool_name}: {cut(content_text(result.result), RESULT_CHARS)}"


def _usage(usage: Usage) -> str:
    return f"{usage.input_tokens} in / {usage.output_tokens} out tokens"


def _tool_names(messages: Sequence[AnyMessage]) -> str:
    names = [
        part.tool_name
        for message in messages
        if isinstance(message, ToolMessage)
        for part in message.contents
    ]
    return ", ".join(names) if names else f"{len(messages)} messages"


def _start_run(event: StartRun) -> str:
    for message in event.input_messages:
        if isinstance(message, UserMessage):
            return f'{event.expert_key}: "{cut(content_text(message.contents), TEXT_CHARS)}"'
    if not event.input_messages:
        return f"{event.expert_key}: resumed"
    return f"{event.expert_key}: resumed with {_tool_names(event.input_messages)}"


def _retry(event: Retry) -> str:
    extra = [
        f"attempt {event.attempt}" if event.attempt is not None else "",
        f"wait {event.delay_ms} ms" if event.delay_ms is not None else "",
        f"HTTP {event.status_code}" if event.status_code is not None else "",
    ]
    details = ", ".join(e for e in extra if e)
    return cut(event.reason, TEXT_CHARS) + (f" ({details})" if details else "")


def _delegate(event: CallDelegate) -> str:
    targets = []
    for call in event.tool_calls:
        query = call.args.get("query")
        suffix = f'("{cut(str(query), TEXT_CHARS)}")' if query is not None else ""
        targets.append(f"→ {delegated_expert(call.skill_name, call.tool_name)}{suffix}")
    return ", ".join(targets)


def _resume(event: ResumeToolCalls) -> str:
    pending = ", ".join(c.tool_name for c in event.pending_tool_calls) or "none"
    done = ", ".join(r.tool_name for r in event.partial_tool_results) or "none"
    return f"pending: {pending}; done: {done}"


def _waiting_interactive(event: StopRunByInteractiveTool) -> str:
    pending = event.checkpoint.pending_tool_calls or event.step.tool_calls or []
    return f"waiting for an answer to {_calls(pending) or 'an interactive tool'}"


def _waiting_delegate(event: StopRunByDelegate) -> str:
    targets = event.checkpoint.delegate_to or []
    names = ", ".join(t.expert.key for t in targets) or "its delegates"
    return f"waiting for {names}"


def _complete_run(event: CompleteRun) -> str:
    return f'"{cut(event.text, TEXT_CHARS)}" ({_usage(event.usage)})'


def _initialize(event: InitializeRuntime) -> str:
    query = f': "{cut(event.query, TEXT_CHARS)}"' if event.query else ""
    return f"{event.expert_name} on {event.model}, runtime {event.runtime_version}{query}"


def _skill_connected(event: SkillConnected) -> str:
    took = event.total_duration_ms if event.total_duration_ms is not None else None
    return event.skill_name + (f" ({took} ms)" if took is not None else "")


def _proxy(event: ProxyAccess) -> str:
    mark = "✓" if event.action == "allowed" else "✗"
    reason = f" {event.reason}" if event.reason else ""
    return f"{mark} {event.domain}:{event.port}{reason}"


_GISTS: dict[type, Callable[[Any], str]] = {
    StartRun: _start_run,
    Retry: _retry,
    CallTools: lambda e: _calls(e.tool_calls),
    CallInteractiveTool: lambda e: _calls([e.tool_call]),
    CallDelegate: _delegate,
    ResolveToolResults: lambda e: "; ".join(_result(r) for r in e.tool_results),
    AttemptCompletion: lambda e: _result(e.tool_result),
    FinishToolCall: lambda e: _tool_names(e.new_messages),
    ResumeToolCalls: _resume,
    FinishAllToolCalls: lambda e: _tool_names(e.new_messages),
    ContinueToNextStep: lambda e: (
        f"→ step {e.next_checkpoint.step_number} ({_usage(e.step.usage)})"
    ),
    StopRunByInteractiveTool: _waiting_interactive,
    StopRunByDelegate: _waiting_delegate,
    StopRunByExceededMaxSteps: lambda e: f"maxSteps reached at step {e.step_number}",
    StopRunByError: lambda e: f"{e.error.name}: {cut(e.error.message, TEXT_CHARS)}",
    CompleteRun: _complete_run,
    StreamReasoning: lambda e: f'"{cut(e.delta, TEXT_CHARS)}"',
    StreamRunResult: lambda e: f'"{cut(e.delta, TEXT_CHARS)}"',
    CompleteStreamingReasoning: lambda e: f'"{cut(e.text, TEXT_CHARS)}"',
    CompleteStreamingRunResult: lambda e: f'"{cut(e.text, TEXT_CHARS)}"',
    InitializeRuntime: _initialize,
    SkillStarting: lambda e: f"{e.skill_name}: {' '.join([e.command, *e.args])}",
    SkillConnected: _skill_connected,
    SkillStderr: lambda e: f"{e.skill_name}: {cut(e.message, TEXT_CHARS)}",
    SkillDisconnected: lambda e: e.skill_name + (f" ({e.reason})" if e.reason else ""),
    StreamingText: lambda e: f'"{cut(e.text, TEXT_CHARS)}"',
    DockerBuildProgress: lambda e: f"{e.service} {e.stage}: {cut(e.message, TEXT_CHARS)}",
    DockerContainerStatus: lambda e: (
        f"{e.service} {e.status}" + (f": {cut(e.message, TEXT_CHARS)}" if e.message else "")
    ),
    ProxyAccess: _proxy,
}


def _history_length(data: dict[str, Any]) -> str:
    """How many messages a generation was given: those in the file, and those its file
    leaves to a checkpoint (``elidedMessages``, see runtime.histories)."""
    messages = data.get("messages")
    if not isinstance(messages, list):
        return ""
    elided = data.get("elidedMessages")
    count = elided.get("count") if isinstance(elided, dict) else 0
    return f"{len(messages) + (count if isinstance(count, int) else 0)} messages"


def event_gist(logged: LoggedEvent) -> str:
    if logged.type == "startGeneration":  # its model leaves the messages out
        return _history_length(logged.data)
    if logged.event is not None:
        gist = _GISTS.get(type(logged.event))
        if gist is not None:
            return cut(gist(logged.event), LINE_CHARS)
        return ""
    if logged.unreadable:
        return f"(unreadable file {logged.path})"
    rest = {k: v for k, v in logged.data.items() if k not in _COMMON_FIELDS}
    return cut(f"(not modelled here) {_json(rest)}", LINE_CHARS)


# --- --verbose ------------------------------------------------------------------------


def _call_details(calls: Sequence[ToolCall]) -> list[str]:
    return [f"[{c.skill_name}] {c.tool_name} {_json(c.args)}" for c in calls]


def _result_details(results: Sequence[ToolResult]) -> list[str]:
    lines = []
    for result in results:
        mark = "✗" if result_failed(result) else "✓"
        lines.append(f"{mark} [{result.skill_name}] {result.tool_name}:")
        lines += [f"  {line}" for line in content_text(result.result).splitlines()]
    return lines


def event_details(logged: LoggedEvent) -> list[str]:
    """Everything worth reading in full, as lines (without indentation)."""
    event = logged.event
    if event is None:
        return json.dumps(logged.data, ensure_ascii=False, indent=2).splitlines()
    if isinstance(event, CallTools | CallDelegate):
        return _call_details(event.tool_calls)
    if isinstance(event, CallInteractiveTool):
        return _call_details([event.tool_call])
    if isinstance(event, ResolveToolResults):
        return _result_details(event.tool_results)
    if isinstance(event, AttemptCompletion):
        return _result_details([event.tool_result])
    if isinstance(event, CompleteRun | CompleteStreamingRunResult | CompleteStreamingReasoning):
        return event.text.splitlines()
    if isinstance(event, StopRunByError):
        error = event.error
        status = f", HTTP {error.status_code}" if error.status_code is not None else ""
        return [
            f"{error.name}{status}, retryable: {error.is_retryable}",
            *error.message.splitlines(),
        ]
    if isinstance(event, Retry):
        return event.reason.splitlines()
    return []


# --- messages -------------------------------------------------------------------------


def message_gist(message: AnyMessage) -> str:
    if isinstance(message, ToolMessage):
        parts = [
            f"← {p.tool_name}: {cut(content_text(p.contents), RESULT_CHARS)}"
            for p in message.contents
        ]
        return "; ".join(parts)
    return cut(content_text(message.contents), TEXT_CHARS)


def message_details(message: AnyMessage) -> list[str]:
    if isinstance(message, ToolMessage):
        lines = []
        for part in message.contents:
            lines.append(f"← {part.tool_name}:")
            lines += [f"  {line}" for line in content_text(part.contents).splitlines()]
        return lines
    if isinstance(message, ExpertMessage):
        lines = []
        for content in message.contents:
            if isinstance(content, ToolCallPart):
                lines.append(f"→ {content.tool_name} {_json(content.args)}")
            else:
                lines += content_text([content]).splitlines()
        return lines
    return content_text(message.contents).splitlines()
