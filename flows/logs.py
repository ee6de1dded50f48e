"""Events as lines a person reads in the Prefect UI: steps, tool calls, results, the
answer, errors. Streaming deltas and bookkeeping events give no line.

Works on the wire form (the decoded JSON object) so that an event of a newer runtime, or
one this version does not model, still gives a line instead of an error. Tool arguments
and results are clipped: the logs show what happened, the workspace keeps the payloads.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from typing import Any

CLIP = 160  # characters of a tool argument list or result shown in one log line
# Events a reader does not need in the run's log: deltas, and echoes of other events.
_SILENT = frozenset(
    {
        "startGeneration",
        "streamReasoning",
        "streamRunResult",
        "startStreamingReasoning",
        "startStreamingRunResult",
        "completeStreamingRunResult",
        "finishToolCall",
        "finishAllToolCalls",
        "resumeToolCalls",
        "streamingText",
        "skillStarting",
        "skillDisconnected",
    }
)
Describer = Callable[[dict[str, Any]], "tuple[int, str] | None"]


# Control characters (escape sequences from a server's stderr, say) would reach the
# operator's terminal through the logs; each becomes a visible replacement.
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f]")


def clip(text: str, limit: int = CLIP) -> str:
    flat = " ".join(_CONTROL.sub("\N{REPLACEMENT CHARACTER}", text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def describe(event: dict[str, Any]) -> tuple[int, str] | None:
    """(log level, line) for an event, or None when it gives no line."""
    kind = event.get("type")
    if not isinstance(kind, str) or kind in _SILENT:
        return None
    describer = _DESCRIBERS.get(kind)
    if describer is not None:
        return describer(event)
    return logging.DEBUG, f"{kind}"


def _step(event: dict[str, Any]) -> str:
    step = event.get("stepNumber")
    return f"step {step}: " if step is not None else ""


def _initialize(event: dict[str, Any]) -> tuple[int, str]:
    return logging.INFO, (
        f"runtime {event.get('runtimeVersion')} started {event.get('expertName')} "
        f"with model {event.get('model')}"
    )


def _start_run(event: dict[str, Any]) -> tuple[int, str]:
    return logging.INFO, f"{_step(event)}run {event.get('runId')} of {event.get('expertKey')}"


def _tool_calls(event: dict[str, Any]) -> tuple[int, str]:
    calls = event.get("toolCalls") or [event.get("toolCall") or {}]
    shown = ", ".join(
        f"{c.get('toolName')}({clip(json.dumps(c.get('args') or {}), CLIP // 2)})" for c in calls
    )
    verb = "delegates to" if event.get("type") == "callDelegate" else "calls"
    return logging.INFO, f"{_step(event)}{verb} {shown}"


def _result_text(result: dict[str, Any]) -> str:
    parts = result.get("result") or []
    texts = [p.get("text", f"<{p.get('type')}>") for p in parts if isinstance(p, dict)]
    return clip(" ".join(texts))


def _tool_results(event: dict[str, Any]) -> tuple[int, str]:
    lines = []
    level = logging.INFO
    for result in event.get("toolResults") or []:
        failed = bool(result.get("isError"))
        level = logging.WARNING if failed else level
        mark = "failed" if failed else "->"
        lines.append(f"{result.get('toolName')} {mark} {_result_text(result)}")
    return level, _step(event) + "; ".join(lines)


def _retry(event: dict[str, Any]) -> tuple[int, str]:
    return (
        logging.WARNING,
        f"{_step(event)}retrying the generation: {clip(event.get('reason', ''))}",
    )


def _complete(event: dict[str, Any]) -> tuple[int, str]:
    usage = (event.get("checkpoint") or {}).get("usage") or event.get("usage") or {}
    return logging.INFO, (
        f"{_step(event)}completed ({usage.get('totalTokens', 0)} tokens): "
        f"{clip(event.get('text', ''), 4 * CLIP)}"
    )


def _stopped(event: dict[str, Any]) -> tuple[int, str]:
    error = event.get("error") or (event.get("checkpoint") or {}).get("error") or {}
    why = f": {error.get('name')}: {clip(error.get('message', ''))}" if error else ""
    return logging.WARNING, f"{_step(event)}{event.get('type')}{why}"


def _skill_connected(event: dict[str, Any]) -> tuple[int, str]:
    return logging.INFO, (
        f"skill {event.get('skillName')} connected in {event.get('totalDurationMs')} ms"
    )


def _skill_stderr(event: dict[str, Any]) -> tuple[int, str]:
    return logging.DEBUG, f"skill {event.get('skillName')}: {clip(event.get('message', ''))}"


def _container(event: dict[str, Any]) -> tuple[int, str]:
    message = f": {event.get('message')}" if event.get("message") else ""
    level = logging.WARNING if event.get("status") == "error" else logging.INFO
    return level, f"container {event.get('service')} {event.get('status')}{message}"


def _proxy(event: dict[str, Any]) -> tuple[int, str]:
    blocked = event.get("action") == "blocked"
    reason = f" ({event.get('reason')})" if event.get("reason") else ""
    return (logging.WARNING if blocked else logging.DEBUG), (
        f"egress {event.get('action')}: {event.get('domain')}:{event.get('port')}{reason}"
    )


def _attempt(event: dict[str, Any]) -> tuple[int, str]:
    return logging.INFO, f"{_step(event)}attempting completion"


def _reasoning(event: dict[str, Any]) -> tuple[int, str]:
    return logging.DEBUG, f"{_step(event)}thought: {clip(event.get('text', ''))}"


def _next_step(event: dict[str, Any]) -> tuple[int, str]:
    return logging.DEBUG, f"{_step(event)}done"


_DESCRIBERS: dict[str, Describer] = {
    "initializeRuntime": _initialize,
    "startRun": _start_run,
    "callTools": _tool_calls,
    "callDelegate": _tool_calls,
    "callInteractiveTool": _tool_calls,
    "resolveToolResults": _tool_results,
    "attemptCompletion": _attempt,
    "retry": _retry,
    "completeRun": _complete,
    "stopRunByError": _stopped,
    "stopRunByExceededMaxSteps": _stopped,
    "stopRunByInteractiveTool": _stopped,
    "stopRunByDelegate": _stopped,
    "completeStreamingReasoning": _reasoning,
    "continueToNextStep": _next_step,
    "skillConnected": _skill_connected,
    "skillStderr": _skill_stderr,
    "dockerContainerStatus": _container,
    "proxyAccess": _proxy,
}


def log_event(logger: logging.Logger | logging.LoggerAdapter[Any], event: dict[str, Any]) -> None:
    """Write the event's line, if it has one, to ``logger``."""
    described = describe(event)
    if described is not None:
        level, line = described
        logger.log(level, "%s", line)
