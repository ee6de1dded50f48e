"""Our messages and tools in the Messages API's request shape.

The shape follows what the reference sends (see the recorded ``requests.jsonl``): the
instruction becomes one ``system`` text block, cached when the message asks for it; tool results
go back in a ``user`` turn; consecutive messages of the same role merge into one turn.
"""

from __future__ import annotations

import base64
import binascii
import logging
from typing import Any

from runtime.messages import (
    AnyMessage,
    ExpertMessage,
    FileBinaryPart,
    FileInlinePart,
    FileUrlPart,
    ImageBinaryPart,
    ImageInlinePart,
    ImageUrlPart,
    InstructionMessage,
    ResultContent,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolMessage,
    ToolResultPart,
    UserContent,
    UserMessage,
)
from runtime.providers.provider import GenerationRequest
from runtime.skills.skill import ToolDefinition

logger = logging.getLogger(__name__)

Block = dict[str, Any]
EPHEMERAL = {"type": "ephemeral"}
# The Messages API refuses a request with more cache_control blocks than this.
MAX_CACHE_BREAKPOINTS = 4


def request_body(request: GenerationRequest) -> dict[str, Any]:
    """The Messages API request body of one generation (the caller adds ``stream``)."""
    system, messages = convert_messages(request.messages)
    body: dict[str, Any] = {"model": request.model, "max_tokens": request.max_tokens}
    if request.reasoning_budget:
        body["thinking"] = {"type": "enabled", "budget_tokens": request.reasoning_budget}
    elif request.temperature is not None:
        # Extended thinking accepts no temperature but the default; only set it without thinking.
        body["temperature"] = request.temperature
    if system:
        body["system"] = system
    body["messages"] = messages
    if request.tools:
        body["tools"] = [tool_param(tool) for tool in request.tools]
        body["tool_choice"] = {"type": "auto"}
    return body


def tool_param(tool: ToolDefinition) -> Block:
    return {"name": tool.name, "description": tool.description, "input_schema": tool.input_schema}


def convert_messages(messages: list[AnyMessage]) -> tuple[list[Block], list[Block]]:
    """(system blocks, conversation turns). Same-role neighbours merge into one turn."""
    system: list[Block] = []
    turns: list[Block] = []
    breakpoints = _cache_breakpoints(messages)
    for index, message in enumerate(messages):
        if isinstance(message, InstructionMessage):
            system.extend(_system_blocks(message))
            continue
        role, blocks = _turn(message)
        if not blocks:
            continue
        if index in breakpoints:
            blocks[-1] = {**blocks[-1], "cache_control": EPHEMERAL}
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    return system, turns


def _cache_breakpoints(messages: list[AnyMessage]) -> set[int]:
    """Which conversation messages get a cache breakpoint: those marked ``cache``, the latest
    first, as many as the API allows beside the instruction's."""
    marked = [
        i for i, m in enumerate(messages) if m.cache and not isinstance(m, InstructionMessage)
    ]
    room = MAX_CACHE_BREAKPOINTS - any(
        m.cache for m in messages if isinstance(m, InstructionMessage)
    )
    return set(marked[len(marked) - room :]) if room > 0 else set()


def _system_blocks(message: InstructionMessage) -> list[Block]:
    # Trimmed, as the reference sends it (its instruction ends in blank lines).
    text = "".join(part.text for part in message.contents).strip()
    if not text:
        return []
    block: Block = {"type": "text", "text": text}
    if message.cache:
        block["cache_control"] = EPHEMERAL
    return [block]


def _turn(message: UserMessage | ExpertMessage | ToolMessage) -> tuple[str, list[Block]]:
    if isinstance(message, UserMessage):
        return "user", [b for part in message.contents if (b := _user_block(part)) is not None]
    if isinstance(message, ExpertMessage):
        return "assistant", [
            b for part in message.contents if (b := _assistant_block(part)) is not None
        ]
    return "user", [_tool_result_block(part) for part in message.contents]


def _assistant_block(part: TextPart | ThinkingPart | ToolCallPart) -> Block | None:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text} if part.text else None
    if isinstance(part, ThinkingPart):
        # The API refuses thinking it cannot verify: an unsigned thought is dropped.
        if not part.signature:
            return None
        return {"type": "thinking", "thinking": part.thinking, "signature": part.signature}
    args = part.args if isinstance(part.args, dict) else {}
    return {"type": "tool_use", "id": part.tool_call_id, "name": part.tool_name, "input": args}


def _user_block(part: UserContent) -> Block | None:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text} if part.text else None
    if isinstance(part, ImageUrlPart):
        return {"type": "image", "source": {"type": "url", "url": part.url}}
    if isinstance(part, ImageInlinePart):
        return _image_base64(part.mime_type, part.encoded_data)
    if isinstance(part, ImageBinaryPart):
        return _image_base64(part.mime_type, part.data)
    if isinstance(part, FileUrlPart):
        return {"type": "document", "source": {"type": "url", "url": part.url}}
    return _document(part)


def _image_base64(mime_type: str, data: str) -> Block:
    return {"type": "image", "source": {"type": "base64", "media_type": mime_type, "data": data}}


def _document(part: FileInlinePart | FileBinaryPart) -> Block:
    data = part.encoded_data if isinstance(part, FileInlinePart) else part.data
    if part.mime_type.startswith("text/"):
        return {
            "type": "document",
            "source": {"type": "text", "media_type": "text/plain", "data": _decode_text(data)},
        }
    return {
        "type": "document",
        "source": {"type": "base64", "media_type": part.mime_type, "data": data},
    }


def _decode_text(data: str) -> str:
    try:
        return base64.b64decode(data, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return data


def _tool_result_block(part: ToolResultPart) -> Block:
    block: Block = {
        "type": "tool_result",
        "tool_use_id": part.tool_call_id,
        "content": _tool_result_content(part.contents),
    }
    if part.is_error:
        block["is_error"] = True
    return block


def _tool_result_content(contents: list[ResultContent]) -> str | list[Block]:
    # As the reference: text alone goes as a plain string.
    if all(isinstance(c, TextPart) for c in contents):
        return "".join(c.text for c in contents if isinstance(c, TextPart))
    blocks: list[Block] = []
    for content in contents:
        if isinstance(content, TextPart):
            if content.text:
                blocks.append({"type": "text", "text": content.text})
        elif isinstance(content, ImageInlinePart):
            blocks.append(_image_base64(content.mime_type, content.encoded_data))
        else:
            blocks.append(_document(content))
    return blocks
