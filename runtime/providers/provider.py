"""The contract between the agent loop and an LLM provider."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Literal, Protocol

from runtime.checkpoint import Usage
from runtime.messages import AnyMessage, ExpertContent
from runtime.skills.skill import ToolDefinition


@dataclass(frozen=True)
class GenerationRequest:
    model: str
    # The instruction message goes first in ``messages``; providers map it to the system prompt
    # (with prompt caching when ``cache`` is set on it).
    messages: list[AnyMessage]
    # None: a generation without tools (the run-result generation after attemptCompletion).
    tools: list[ToolDefinition] | None
    max_tokens: int
    timeout_s: float
    reasoning_budget: int | None = None
    temperature: float | None = None


@dataclass(frozen=True)
class ReasoningDelta:
    text: str


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class Generation:
    """A complete assistant turn. Only produced when the whole stream arrived."""

    contents: list[ExpertContent]
    usage: Usage
    stop_reason: str | None = None
    model: str | None = None
    # Tool calls whose input could not be used (runtime.providers.partial_json's
    # UnusableToolInput), by call id: why. Their args are {} in ``contents``, so that the
    # history can be sent back; the loop answers each with an error result.
    unusable_inputs: dict[str, str] = field(default_factory=dict)


StreamItem = ReasoningDelta | TextDelta | Generation


class ProviderError(Exception):
    """A generation failed. ``retryable`` errors are retried by the loop with backoff."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        status_code: int | None = None,
        retry_after_s: float | None = None,
        kind: Literal[
            "rate_limit",
            "overloaded",
            "server",
            "timeout",
            "connection",
            "client",
            "auth",
            "script",
        ] = "server",
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status_code = status_code
        self.retry_after_s = retry_after_s
        self.kind = kind


class Provider(Protocol):
    name: str

    def stream(self, request: GenerationRequest) -> AsyncIterator[StreamItem]:
        """Yield deltas as they arrive, then exactly one ``Generation`` last.

        Raises ``ProviderError`` (translated from HTTP and stream failures) on any failure,
        including one in the middle of the stream; what was yielded before it must then be
        discarded.
        """
        ...

    async def aclose(self) -> None: ...


@dataclass
class ScriptTurn:
    """One assistant turn of a script (the scripted provider and the fake Messages API server
    both play this format, the one in the reference recordings' ``script.json``)."""

    thinking: str | None = None
    text: str | None = None
    tool_use: list[dict[str, object]] = field(default_factory=list)
    stream_error: dict[str, str] | None = None
