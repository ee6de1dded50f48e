"""One generation's turn as the agent loop uses it: its tool calls and text, its contents
cleaned for the history, and tool outcomes as results and result parts."""

from __future__ import annotations

from runtime.checkpoint import ToolCall, ToolResult
from runtime.messages import (
    ExpertContent,
    ResultContent,
    TextPart,
    ToolCallPart,
    ToolResultPart,
)
from runtime.providers.provider import Generation
from runtime.skills.skill import ToolOutcome
from runtime.text import scrub, scrub_text


def tool_calls_of(generation: Generation) -> list[ToolCallPart]:
    return [part for part in generation.contents if isinstance(part, ToolCallPart)]


def text_of(generation: Generation) -> str:
    return "".join(part.text for part in generation.contents if isinstance(part, TextPart))


def to_result(call: ToolCall, skill_name: str, outcome: ToolOutcome) -> ToolResult:
    return ToolResult(
        id=call.id,
        skill_name=skill_name,
        tool_name=call.tool_name,
        result=[_scrubbed(part) for part in outcome.contents],
        is_error=True if outcome.is_error else None,
    )


def clean_contents(generation: Generation) -> list[ExpertContent]:
    """The turn as it enters the history: text and arguments that are valid Unicode."""
    cleaned: list[ExpertContent] = []
    for part in generation.contents:
        if isinstance(part, ToolCallPart) and part.args:
            part = part.model_copy(update={"args": scrub(part.args)})
        elif isinstance(part, TextPart):
            part = part.model_copy(update={"text": scrub_text(part.text)})
        cleaned.append(part)
    return cleaned


def _scrubbed(part: ResultContent) -> ResultContent:
    if isinstance(part, TextPart) and (clean := scrub_text(part.text)) is not part.text:
        return part.model_copy(update={"text": clean})
    return part


def result_part(result: ToolResult) -> ToolResultPart:
    return ToolResultPart(
        tool_call_id=result.id,
        tool_name=result.tool_name,
        contents=list(result.result),
        is_error=result.is_error,
    )


def unusable_input_result(call: ToolCall, reason: str) -> ToolResult:
    """The error result of a call whose input could not be used: the tool is not run."""
    text = (
        f"The arguments of this call could not be used: {reason}. Nothing was run; call "
        f"{call.tool_name} again with arguments that fit its input schema."
    )
    return ToolResult(
        id=call.id,
        skill_name=call.skill_name,
        tool_name=call.tool_name,
        result=[TextPart(text=text)],
        is_error=True,
    )
