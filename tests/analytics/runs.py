"""Handmade runs in the reference's event shape, small enough to reason about in a test."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

T0 = 1_700_000_000_123  # 2023-11-14T22:13:20.123Z


@dataclass
class RunBuilder:
    """Appends the events of one run; timestamps advance by the given milliseconds."""

    job: str
    run: str
    expert: str = "writer"
    ts: int = T0
    events: list[dict[str, Any]] = field(default_factory=list)
    counter: int = 0

    def _id(self, kind: str) -> str:
        self.counter += 1
        return f"{self.run}-{kind}-{self.counter}"

    def runtime(self, kind: str, after: int = 0, **fields: Any) -> dict[str, Any]:
        self.ts += after
        event = {
            "type": kind,
            "id": self._id(kind),
            "timestamp": self.ts,
            "jobId": self.job,
            "runId": self.run,
            **fields,
        }
        self.events.append(event)
        return event

    def event(self, kind: str, step: int, /, after: int = 0, **fields: Any) -> dict[str, Any]:
        return self.runtime(kind, after, expertKey=self.expert, stepNumber=step, **fields)

    def start(self, model: str = "claude-sonnet-4-5", max_steps: int = 100) -> RunBuilder:
        self.runtime(
            "initializeRuntime",
            runtimeVersion="0.0.76",
            expertName=self.expert,
            experts=[self.expert],
            model=model,
            maxSteps=max_steps,
            maxRetries=5,
            timeout=300000,
            query="do it",
        )
        self.event(
            "startRun",
            1,
            after=10,
            initialCheckpoint=self.checkpoint(1, "init", []),
            inputMessages=[],
        )
        return self

    def checkpoint(
        self, step: int, status: str, message_ids: list[str], **extra: Any
    ) -> dict[str, Any]:
        messages = [
            {
                "type": "userMessage",
                "id": m,
                "contents": [{"type": "textPart", "id": f"{m}-p", "text": f"text {m}"}],
            }
            for m in message_ids
        ]
        return {
            "id": f"{self.run}-ckpt-{step}",
            "jobId": self.job,
            "runId": self.run,
            "expert": {"key": self.expert, "name": self.expert, "version": "1.0.0"},
            "stepNumber": step,
            "status": status,
            "messages": messages,
            "usage": usage(0, 0),
            **extra,
        }

    def tool_step(
        self,
        step: int,
        tools: list[tuple[str, str, int, bool]],
        llm_ms: int = 100,
        tokens: tuple[int, int] = (100, 10),
    ) -> RunBuilder:
        """A generation calling tools: (skill, tool, duration ms, is error) each."""
        self.event("startGeneration", step, after=5, messages=[])
        started = self.ts
        calls = [
            {"id": f"{self.run}-call-{step}-{i}", "skillName": s, "toolName": t, "args": {"n": i}}
            for i, (s, t, _, _) in enumerate(tools)
        ]
        self.event(
            "callTools",
            step,
            after=llm_ms,
            toolCalls=calls,
            usage=usage(*tokens),
            newMessage={"type": "expertMessage", "id": f"{self.run}-m-{step}", "contents": []},
        )
        for call, (_, _, duration, error) in zip(calls, tools, strict=True):
            text = "Error: it broke" if error else "fine"
            result = {
                "id": call["id"],
                "skillName": call["skillName"],
                "toolName": call["toolName"],
                "result": [{"type": "textPart", "id": "p", "text": text}],
            }
            self.event("resolveToolResults", step, after=duration, toolResults=[result])
        self.event(
            "continueToNextStep",
            step,
            after=2,
            checkpoint=self.checkpoint(step, "proceeding", [f"{self.run}-m-{step}"]),
            step={
                "stepNumber": step,
                "startedAt": started,
                "finishedAt": self.ts,
                "newMessages": [],
                "usage": usage(*tokens),
            },
            nextCheckpoint=self.checkpoint(step + 1, "proceeding", []),
        )
        return self

    def complete(self, step: int, llm_ms: int = 50, tokens: tuple[int, int] = (10, 5)) -> None:
        self.event("startGeneration", step, after=5, messages=[])
        started = self.ts
        self.event(
            "completeRun",
            step,
            after=llm_ms,
            text="done",
            usage=usage(*tokens),
            checkpoint=self.checkpoint(step, "completed", []),
            step={
                "stepNumber": step,
                "startedAt": started,
                "finishedAt": self.ts,
                "newMessages": [],
                "usage": usage(*tokens),
            },
        )

    def fail(self, step: int, message: str) -> None:
        self.event("startGeneration", step, after=5, messages=[])
        error = {"name": "APIError", "message": message, "isRetryable": False}
        self.event("retry", step, after=20, reason="overloaded", newMessages=[], usage=usage(0, 0))
        self.event(
            "stopRunByError",
            step,
            after=30,
            error=error,
            checkpoint=self.checkpoint(step, "stoppedByError", [], error=error),
            step={
                "stepNumber": step,
                "startedAt": self.ts - 50,
                "newMessages": [],
                "usage": usage(0, 0),
            },
        )

    def max_steps(self, step: int) -> None:
        self.event(
            "stopRunByExceededMaxSteps",
            step,
            after=1,
            checkpoint=self.checkpoint(step, "stoppedByExceededMaxSteps", []),
            step={
                "stepNumber": step,
                "startedAt": self.ts,
                "newMessages": [],
                "usage": usage(0, 0),
            },
        )


def usage(inp: int, out: int) -> dict[str, int]:
    return {
        "inputTokens": inp,
        "outputTokens": out,
        "reasoningTokens": 0,
        "totalTokens": inp + out,
        "cachedInputTokens": 0,
    }


def write_jsonl(path: Path, events: list[dict[str, Any]], extra: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(e) + "\n" for e in events) + extra)
    return path
