"""`perstack start`: the same events, rendered for a person as they arrive."""

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

# Tool arguments and results are cut to this many characters on screen.
PREVIEW_CHARS = 200


def _preview(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = text.replace("\n", "\\n")
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"


class HumanDisplay:
    """An event listener that writes a readable transcript to ``out``."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._streamed_result = False

    def _line(self, text: str = "") -> None:
        self._out.write(text + "\n")
        self._out.flush()

    def __call__(self, event: Event) -> None:
        handler = self._handlers.get(event.type)
        if handler is not None:
            handler(event)

    @property
    def _handlers(self) -> dict[str, Callable[[Any], None]]:
        return {
            "initializeRuntime": self._initialize,
            "skillConnected": lambda e: self._line(
                f"  skill {e.skill_name} ready ({e.total_duration_ms or 0} ms)"
            ),
            "startGeneration": lambda e: self._line(f"\n── step {e.step_number}"),
            "streamReasoning": lambda e: self._write(e.delta),
            "completeStreamingReasoning": lambda e: self._line(),
            "callTools": self._calls,
            "resolveToolResults": self._results,
            "streamRunResult": self._answer_delta,
            "retry": lambda e: self._line(f"  ↻ retry: {e.reason}"),
            "completeRun": self._finish,
            "stopRunByExceededMaxSteps": lambda e: self._line(
                f"\n■ stopped: reached maxSteps at step {e.step_number}"
            ),
            "stopRunByError": lambda e: self._line(f"\n■ stopped by error: {e.error.message}"),
        }

    def _write(self, text: str) -> None:
        self._out.write(text)
        self._out.flush()

    def _initialize(self, event: InitializeRuntime) -> None:
        self._line(f"▶ {event.expert_name} · model {event.model} · max {event.max_steps} steps")

    def _calls(self, event: CallTools) -> None:
        for call in event.tool_calls:
            self._line(f"  → {call.tool_name}({_preview(call.args)})")

    def _results(self, event: ResolveToolResults) -> None:
        for result in event.tool_results:
            text = " ".join(getattr(part, "text", "[binary]") for part in result.result)
            mark = "✗" if result.is_error else "←"
            self._line(f"  {mark} {result.tool_name}: {_preview(text)}")

    def _answer_delta(self, event: StreamRunResult) -> None:
        if not self._streamed_result:
            self._line("\n── answer")
            self._streamed_result = True
        self._write(event.delta)

    def _finish(self, event: CompleteRun) -> None:
        if not self._streamed_result:
            self._line("\n── answer")
            self._line(event.text)
        else:
            self._line()
        usage = event.checkpoint.usage
        self._line(
            f"\n✔ completed in {event.step_number} steps · tokens in {usage.input_tokens} "
            f"(cached {usage.cached_input_tokens}) out {usage.output_tokens}"
        )
