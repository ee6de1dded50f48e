"""An offline, deterministic provider that plays a script of assistant turns.

Each generation plays the next turn of the script (``runtime/providers/script.py``): reasoning
first, then text, in small chunks like a real stream, then the finished turn with its tool calls.
Its model name, ``scripted:<script file>``, says where the replies came from.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path

from runtime.checkpoint import Usage
from runtime.messages import AnyMessage, ExpertContent, TextPart, ThinkingPart, ToolCallPart
from runtime.providers.anthropic_errors import status_error, stream_error
from runtime.providers.anthropic_stream import usage_from_counts
from runtime.providers.provider import (
    Generation,
    GenerationRequest,
    ProviderError,
    ReasoningDelta,
    StreamItem,
    TextDelta,
)
from runtime.providers.script import ScriptEntry, load_script

logger = logging.getLogger(__name__)

CHUNK_CHARS = 8  # characters per streamed delta
CHARS_PER_TOKEN = 4  # the usual rough estimate for English text and JSON


class ScriptedProvider:
    """Plays ``script`` (a script file, or parsed entries) one turn per generation."""

    name = "scripted"

    def __init__(self, script: str | Path | Sequence[ScriptEntry], *, name: str | None = None):
        if isinstance(script, str | Path):
            self._entries = load_script(script)
            self.script_name = name or Path(script).name
            self._source = str(script)
        else:
            self._entries = list(script)
            self.script_name = name or "inline"
            self._source = f"<{self.script_name} script>"
        self._next = 0

    @property
    def model(self) -> str:
        """The model name events and checkpoints carry: says the replies were scripted."""
        return f"scripted:{self.script_name}"

    @property
    def turns_played(self) -> int:
        return self._next

    @property
    def turns_total(self) -> int:
        return len(self._entries)

    async def stream(self, request: GenerationRequest) -> AsyncIterator[StreamItem]:
        turn_number, entry = self._take()
        await asyncio.sleep(entry.delay_first_byte_s)
        if entry.http_error is not None:
            fault = entry.http_error
            message = fault.message or fault.type or "scripted HTTP error"
            raise status_error(fault.status, message, retry_after_s=fault.retry_after)
        deltas = list(_deltas(entry))
        failure = _failure(entry, len(deltas))
        for sent, delta in enumerate(deltas):
            if failure is not None and sent >= failure[0]:
                raise failure[1]
            if sent:
                await asyncio.sleep(entry.delay_between_events_s)
            yield delta
        if failure is not None:
            raise failure[1]
        logger.debug("scripted turn %d of %s played", turn_number, self.script_name)
        default_stop = "tool_use" if entry.turn.tool_use else "end_turn"
        yield Generation(
            contents=self._contents(entry, turn_number),
            usage=_usage(request.messages, entry),
            stop_reason=str(entry.extra.get("stop_reason") or default_stop),
            model=self.model,
        )

    async def aclose(self) -> None:
        return None

    def _take(self) -> tuple[int, ScriptEntry]:
        if self._next >= len(self._entries):
            raise ProviderError(
                f"script {self._source} has no turn left: all {len(self._entries)} turn(s) "
                "were played; add turns to the script for the requests that follow",
                retryable=False,
                kind="script",
            )
        self._next += 1
        return self._next - 1, self._entries[self._next - 1]

    def _contents(self, entry: ScriptEntry, turn_number: int) -> list[ExpertContent]:
        turn = entry.turn
        contents: list[ExpertContent] = []
        if turn.thinking:
            # Unsigned unless the script signs it: a real API would refuse a made-up signature.
            signature = entry.extra.get("signature")
            contents.append(
                ThinkingPart(
                    thinking=turn.thinking, signature=str(signature) if signature else None
                )
            )
        if turn.text:
            contents.append(TextPart(text=turn.text))
        for index, call in enumerate(turn.tool_use):
            call_id = str(call.get("id") or self._tool_call_id(turn_number, index))
            contents.append(
                ToolCallPart(tool_call_id=call_id, tool_name=str(call["name"]), args=call["input"])
            )
        return contents

    def _tool_call_id(self, turn_number: int, index: int) -> str:
        seed = f"{self.script_name}:{turn_number}:{index}".encode()
        return "toolu_" + hashlib.sha256(seed).hexdigest()[:24]


def _deltas(entry: ScriptEntry) -> Iterator[ReasoningDelta | TextDelta]:
    for chunk in _chunks(entry.turn.thinking or ""):
        yield ReasoningDelta(chunk)
    for chunk in _chunks(entry.turn.text or ""):
        yield TextDelta(chunk)


def _failure(entry: ScriptEntry, delta_count: int) -> tuple[int, ProviderError] | None:
    """After how many deltas the turn fails, and how; None when it plays through."""
    if entry.turn.stream_error is not None:
        error = entry.turn.stream_error
        return delta_count // 2, stream_error(error["type"], error["message"])
    if entry.drop_after_events is not None:
        dropped = ProviderError(
            "the connection to the model was dropped mid-reply (scripted)",
            retryable=True,
            kind="connection",
        )
        return entry.drop_after_events, dropped
    return None


def _chunks(text: str) -> Iterator[str]:
    for start in range(0, len(text), CHUNK_CHARS):
        yield text[start : start + CHUNK_CHARS]


def _usage(messages: list[AnyMessage], entry: ScriptEntry) -> Usage:
    given = entry.extra.get("usage")
    if isinstance(given, dict):
        return usage_from_counts(
            input_tokens=int(given.get("input_tokens", 0)),
            output_tokens=int(given.get("output_tokens", 0)),
            cache_creation_input_tokens=int(given.get("cache_creation_input_tokens", 0)),
            cache_read_input_tokens=int(given.get("cache_read_input_tokens", 0)),
        )
    prompt = _tokens(sum(_message_chars(m) for m in messages))
    turn = entry.turn
    output_chars = len(turn.text or "") + sum(
        len(json.dumps(call.get("input", {}))) + len(str(call["name"])) for call in turn.tool_use
    )
    reasoning = _tokens(len(turn.thinking or ""))
    output = _tokens(output_chars) + reasoning
    return Usage(
        input_tokens=prompt,
        output_tokens=output,
        reasoning_tokens=reasoning,
        total_tokens=prompt + output,
        cached_input_tokens=0,
    )


def _message_chars(message: AnyMessage) -> int:
    total = 0
    for part in message.contents:
        for value in vars(part).values():
            if isinstance(value, str):
                total += len(value)
            elif isinstance(value, dict | list):
                total += len(json.dumps(value, default=str))
    return total


def _tokens(chars: int) -> int:
    return math.ceil(chars / CHARS_PER_TOKEN)
