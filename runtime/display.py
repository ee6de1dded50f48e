"""`perstack start`: the same events, rendered for a person as they arrive.

Delegated runs are shown indented under the call that started them; each run's streamed
answer is tracked on its own.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TextIO

from runtime.events import (
    CallTools,
    CompleteRun,
    Event,
    InitializeRuntime,
    ResolveToolResults,
    StreamRunResult,
)
from runtime.output import Output
from runtime.text import visible

# Tool arguments and results are cut to this many characters on screen.
PREVIEW_CHARS = 200
INDENT = "    "


def _preview(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = text.replace("\n", "\\n")
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"


class HumanDisplay:
    """An event listener that writes a readable transcript to ``out``."""

    def __init__(self, out: TextIO) -> None:
        self._out = Output(out, "the run's transcript")
        self._depth_by_run: dict[str, int] = {}
        self._open_runs: set[str] = set()
        self._streaming: set[str] = set()
        self._depth = 0
        self._handlers: dict[str, Callable[[Any], None]] = {
            "initializeRuntime": self._initialize,
            "skillConnected": lambda e: self._line(
                f"  skill {e.skill_name} ready ({e.total_duration_ms or 0} ms)"
            ),
            "startGeneration": lambda e: self._line(f"\n── step {e.step_number}"),
            "startStreamingReasoning": lambda e: self._write(INDENT * self._depth + "  "),
            "streamReasoning": lambda e: self._write(
                e.delta.replace("\n", "\n" + INDENT * self._depth + "  ")
            ),
            "completeStreamingReasoning": lambda e: self._write("\n"),
            "callTools": self._calls,
            "resolveToolResults": self._results,
            "streamRunResult": self._answer_delta,
            "retry": lambda e: self._line(f"  ↻ retry: {e.reason}"),
            "completeRun": self._finish,
            "stopRunByInteractiveTool": lambda e: self._stopped(
                e, 'waiting for an answer: run again with --continue -i "ANSWER"'
            ),
            "stopRunByExceededMaxSteps": lambda e: self._stopped(
                e, f"reached maxSteps at step {e.step_number}"
            ),
            "stopRunByError": lambda e: self._stopped(e, f"error: {e.error.message}"),
        }

    def __call__(self, event: Event) -> None:
        handler = self._handlers.get(event.type)
        if handler is None:
            return
        self._depth = self._depth_by_run.get(event.run_id, 0)
        handler(event)

    def _line(self, text: str = "") -> None:
        prefix = INDENT * self._depth
        lines = visible(text).split("\n")
        self._out.write("\n".join(prefix + line for line in lines) + "\n")

    def _write(self, text: str) -> None:
        # Model and tool text may hold terminal control sequences: shown, never obeyed.
        self._out.write(visible(text))

    def _initialize(self, event: InitializeRuntime) -> None:
        # A run that starts while others are going is a delegation: one level deeper.
        depth = len(self._open_runs)
        self._open_runs.add(event.run_id)
        self._depth_by_run[event.run_id] = self._depth = depth
        who = "▶" if depth == 0 else "↳ delegated to"
        self._line(f"{who} {event.expert_name} · model {event.model} · max {event.max_steps} steps")

    def _stopped(self, event: Event, why: str) -> None:
        self._open_runs.discard(event.run_id)
        self._line(f"\n■ stopped: {why}")

    def _calls(self, event: CallTools) -> None:
        for call in event.tool_calls:
            self._line(f"  → {call.tool_name}({_preview(call.args)})")

    def _results(self, event: ResolveToolResults) -> None:
        for result in event.tool_results:
            text = " ".join(getattr(part, "text", "[binary]") for part in result.result)
            mark = "✗" if result.is_error else "←"
            self._line(f"  {mark} {result.tool_name}: {_preview(text)}")

    def _answer_delta(self, event: StreamRunResult) -> None:
        if event.run_id not in self._streaming:
            self._line("\n── answer")
            self._streaming.add(event.run_id)
            self._write(INDENT * self._depth)
        self._write(event.delta.replace("\n", "\n" + INDENT * self._depth))

    def _finish(self, event: CompleteRun) -> None:
        if event.run_id in self._streaming:
            self._write("\n")
        else:
            self._line("\n── answer")
            self._line(event.text)
        usage = event.checkpoint.usage  # the Job's so far, every Run's (runtime.budget)
        self._line(
            f"✔ {event.expert_key} completed at step {event.step_number} · job tokens in "
            f"{usage.input_tokens} (cached {usage.cached_input_tokens}) out {usage.output_tokens}"
        )
        self._open_runs.discard(event.run_id)
