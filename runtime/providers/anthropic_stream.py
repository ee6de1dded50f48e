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
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from runtime.checkpoint import Usage
from runtime.messages import ExpertContent, TextPart, ThinkingPart, ToolCallPart
from runtime.providers.anthropic_errors import stream_error
from runtime.providers.partial_json import (
    ToolInputAssembler,
    ToolInputError,
    UnusableToolInput,
)
from runtime.providers.provider import Generation, ProviderError, ReasoningDelta, TextDelta

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

    def update(self, usage: object) -> None:
        """Take every count the event carries; later events hold the final, cumulative ones."""
        if not isinstance(usage, Mapping):
            return
        for ours, theirs in (
            ("input", "input_tokens"),
            ("output", "output_tokens"),
            ("cache_creation", "cache_creation_input_tokens"),
            ("cache_read", "cache_read_input_tokens"),
        ):
            if _is_count(value := usage.get(theirs)):
                setattr(self, ours, value)
        details = usage.get("output_tokens_details")
        thinking = details.get("thinking_tokens") if isinstance(details, Mapping) else None
        if isinstance(thinking, int) and _is_count(thinking):
            self.thinking = thinking

    def to_usage(self) -> Usage:
        return usage_from_counts(
            input_tokens=self.input,
            output_tokens=self.output,
            cache_creation_input_tokens=self.cache_creation,
            cache_read_input_tokens=self.cache_read,
            thinking_tokens=self.thinking,
        )


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


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
        self._unusable: dict[str, str] = {}

    @property
    def stopped(self) -> bool:
        """Whether ``message_stop`` came: the turn is whole, whatever the stream sends next."""
        return self._stopped

    def feed(self, event: Mapping[str, Any]) -> list[Delta]:
        """One decoded event (the JSON of an SSE ``data`` field)."""
        kind = event.get("type")
        if kind == "message_start":
            message = _mapping(event, "message")
            model = message.get("model")
            self._model = model if isinstance(model, str) else None
            self._tokens.update(message.get("usage"))
        elif kind == "content_block_start":
            return self._start_block(_index(event), _mapping(event, "content_block"))
        elif kind == "content_block_delta":
            return self._delta(_index(event), _mapping(event, "delta"))
        elif kind == "message_delta":
            stop_reason = _mapping(event, "delta").get("stop_reason")
            self._stop_reason = stop_reason if isinstance(stop_reason, str) else None
            self._tokens.update(event.get("usage"))
        elif kind == "message_stop":
            self._stopped = True
        elif kind == "error":
            error = event.get("error")
            error = error if isinstance(error, Mapping) else {}
            raise stream_error(str(error.get("type") or ""), str(error.get("message") or ""))
        # ping, content_block_stop and event types added later carry nothing we need.
        return []

    def _start_block(self, index: int, block: Mapping[str, Any]) -> list[Delta]:
        kind = block.get("type")
        if kind == "text":
            text = _text(block, "text")
            self._blocks[index] = _Block("text", [text] if text else [])
            return [TextDelta(text)] if text else []
        if kind == "thinking":
            thinking = _text(block, "thinking")
            signature = _text(block, "signature") or None
            self._blocks[index] = _Block("thinking", [thinking] if thinking else [], signature)
            return [ReasoningDelta(thinking)] if thinking else []
        if kind == "tool_use":
            self._blocks[index] = _Block(
                "tool_use",
                tool_id=_text(block, "id"),
                tool_name=_text(block, "name"),
                tool_input=ToolInputAssembler(block.get("input")),
            )
            return []
        # TODO(#2): redacted thinking and server tool blocks are dropped from the turn.
        logger.debug("ignoring content block of type %s", kind)
        self._blocks[index] = _Block("other")
        return []

    def _delta(self, index: int, delta: Mapping[str, Any]) -> list[Delta]:
        block = self._blocks.get(index)
        if block is None:
            raise protocol_error(f"delta for content block {index} before its start")
        kind = delta.get("type")
        if kind == "text_delta":
            text = _text(delta, "text")
            block.text.append(text)
            return [TextDelta(text)] if text else []
        if kind == "thinking_delta":
            thinking = _text(delta, "thinking")
            block.text.append(thinking)
            return [ReasoningDelta(thinking)] if thinking else []
        if kind == "signature_delta":
            block.signature = (block.signature or "") + _text(delta, "signature")
        elif kind == "input_json_delta" and block.tool_input is not None:
            block.tool_input.feed(_text(delta, "partial_json"))
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
            unusable_inputs=dict(self._unusable),
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
            except UnusableToolInput as exc:
                self._unusable[block.tool_id] = str(exc)
                args = {}
            except ToolInputError as exc:
                raise protocol_error(f"tool {block.tool_name!r}: {exc}") from exc
            return ToolCallPart(tool_call_id=block.tool_id, tool_name=block.tool_name, args=args)
        return None


def _mapping(event: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = event.get(key)
    if not isinstance(value, Mapping):
        raise protocol_error(f"{event.get('type')} event without an object {key!r}")
    return value


def _index(event: Mapping[str, Any]) -> int:
    index = event.get("index")
    if not isinstance(index, int) or isinstance(index, bool):
        raise protocol_error(f"{event.get('type')} event without an integer index")
    return index


def _text(value: Mapping[str, Any], key: str) -> str:
    """A string field; absent or null is empty, any other type is a garbled stream."""
    text = value.get(key)
    if text is None:
        return ""
    if not isinstance(text, str):
        raise protocol_error(f"{value.get('type')}.{key} is {type(text).__name__}, not a string")
    return text


def protocol_error(message: str) -> ProviderError:
    # A garbled stream is the server's fault and usually transient: retry it.
    return ProviderError(f"malformed reply stream: {message}", retryable=True, kind="server")
