"""One streamed Messages API reply, event by event, turned into deltas and a finished turn.

Usage: Anthropic reports ``input_tokens`` without the cached part. Our ``inputTokens`` counts
every prompt token the model read: uncached input, plus tokens written to the cache (cache
creation, billed as input at a premium), plus tokens read from the cache. ``cachedInputTokens``
is the cache read alone, so it is always a part of ``inputTokens`` (as for other providers).
The reference (AI SDK) reports uncached input only; totals over its runs are therefore lower
when caching is active.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from runtime.checkpoint import Usage
from runtime.messages import ExpertContent, TextPart, ThinkingPart, ToolCallPart
from runtime.providers.partial_json import ToolInputAssembler, ToolInputError
from runtime.providers.provider import Generation, ProviderError, ReasoningDelta, TextDelta

if TYPE_CHECKING:
    from anthropic.types import RawMessageStreamEvent

logger = logging.getLogger(__name__)

Delta = ReasoningDelta | TextDelta


@dataclass
class _Block:
    kind: Literal["text", "thinking", "tool_use", "other"]
    text: list[str] = field(default_factory=list)
    signature: str | None = None
    tool_id: str = ""
    tool_name: str = ""
    tool_input: ToolInputAssembler | None = None


@dataclass
class _Tokens:
    input: int = 0
    output: int = 0
    cache_creation: int = 0
    cache_read: int = 0
    thinking: int = 0

    def update(self, usage: Any) -> None:
        """Take every count the event carries; later events hold the final, cumulative ones."""
        for ours, theirs in (
            ("input", "input_tokens"),
            ("output", "output_tokens"),
            ("cache_creation", "cache_creation_input_tokens"),
            ("cache_read", "cache_read_input_tokens"),
        ):
            value = getattr(usage, theirs, None)
            if value is not None:
                setattr(self, ours, value)
        details = getattr(usage, "output_tokens_details", None)
        if details is not None and getattr(details, "thinking_tokens", None) is not None:
            self.thinking = details.thinking_tokens

    def to_usage(self) -> Usage:
        return usage_from_counts(
            input_tokens=self.input,
            output_tokens=self.output,
            cache_creation_input_tokens=self.cache_creation,
            cache_read_input_tokens=self.cache_read,
            thinking_tokens=self.thinking,
        )


def usage_from_counts(
    *,
    input_tokens: int,
    output_tokens: int,
    cache_creation_input_tokens: int = 0,
    cache_read_input_tokens: int = 0,
    thinking_tokens: int = 0,
) -> Usage:
    """Our ``Usage`` from the Messages API's counts (see the module docstring)."""
    prompt = input_tokens + cache_creation_input_tokens + cache_read_input_tokens
    return Usage(
        input_tokens=prompt,
        output_tokens=output_tokens,
        reasoning_tokens=thinking_tokens,
        total_tokens=prompt + output_tokens,
        cached_input_tokens=cache_read_input_tokens,
    )


class StreamAssembler:
    """Feed it the raw events of one reply in order; ``finish`` gives the turn."""

    def __init__(self) -> None:
        self._blocks: dict[int, _Block] = {}
        self._tokens = _Tokens()
        self._stop_reason: str | None = None
        self._model: str | None = None
        self._stopped = False

    def feed(self, event: RawMessageStreamEvent) -> list[Delta]:
        if event.type == "message_start":
            self._model = event.message.model
            self._tokens.update(event.message.usage)
        elif event.type == "content_block_start":
            return self._start_block(event.index, event.content_block)
        elif event.type == "content_block_delta":
            return self._delta(event.index, event.delta)
        elif event.type == "message_delta":
            self._stop_reason = event.delta.stop_reason
            self._tokens.update(event.usage)
        elif event.type == "message_stop":
            self._stopped = True
        return []

    def _start_block(self, index: int, block: Any) -> list[Delta]:
        if block.type == "text":
            self._blocks[index] = _Block("text", [block.text] if block.text else [])
            return [TextDelta(block.text)] if block.text else []
        if block.type == "thinking":
            self._blocks[index] = _Block(
                "thinking", [block.thinking] if block.thinking else [], block.signature or None
            )
            return [ReasoningDelta(block.thinking)] if block.thinking else []
        if block.type == "tool_use":
            self._blocks[index] = _Block(
                "tool_use",
                tool_id=block.id,
                tool_name=block.name,
                tool_input=ToolInputAssembler(block.input),
            )
            return []
        # TODO(#2): redacted thinking and server tool blocks are dropped from the turn.
        logger.debug("ignoring content block of type %s", block.type)
        self._blocks[index] = _Block("other")
        return []

    def _delta(self, index: int, delta: Any) -> list[Delta]:
        block = self._blocks.get(index)
        if block is None:
            raise _protocol_error(f"delta for content block {index} before its start")
        if delta.type == "text_delta":
            block.text.append(delta.text)
            return [TextDelta(delta.text)] if delta.text else []
        if delta.type == "thinking_delta":
            block.text.append(delta.thinking)
            return [ReasoningDelta(delta.thinking)] if delta.thinking else []
        if delta.type == "signature_delta":
            block.signature = (block.signature or "") + delta.signature
        elif delta.type == "input_json_delta" and block.tool_input is not None:
            block.tool_input.feed(delta.partial_json)
        return []

    def finish(self) -> Generation:
        """The whole turn. Raises a retryable ``ProviderError`` when the stream was cut short."""
        if not self._stopped:
            raise ProviderError(
                "the model's reply stream ended before message_stop (connection lost?)",
                retryable=True,
                kind="connection",
            )
        contents = [part for i in sorted(self._blocks) if (part := self._part(self._blocks[i]))]
        return Generation(
            contents=contents,
            usage=self._tokens.to_usage(),
            stop_reason=self._stop_reason,
            model=self._model,
        )

    def _part(self, block: _Block) -> ExpertContent | None:
        if block.kind == "text":
            text = "".join(block.text)
            return TextPart(text=text) if text else None
        if block.kind == "thinking":
            thinking = "".join(block.text)
            if not thinking and not block.signature:
                return None
            return ThinkingPart(thinking=thinking, signature=block.signature)
        if block.kind == "tool_use" and block.tool_input is not None:
            try:
                args = block.tool_input.result()
            except ToolInputError as exc:
                raise _protocol_error(f"tool {block.tool_name!r}: {exc}") from exc
            return ToolCallPart(tool_call_id=block.tool_id, tool_name=block.tool_name, args=args)
        return None


def _protocol_error(message: str) -> ProviderError:
    # A garbled stream is the server's fault and usually transient: retry it.
    return ProviderError(f"malformed reply stream: {message}", retryable=True, kind="server")
