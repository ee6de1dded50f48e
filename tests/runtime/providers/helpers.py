"""Requests and stream collection shared by the provider tests."""

from __future__ import annotations

from runtime.messages import InstructionMessage, TextPart, UserMessage
from runtime.providers.provider import (
    Generation,
    GenerationRequest,
    Provider,
    ReasoningDelta,
    TextDelta,
)
from runtime.skills.skill import ToolDefinition


def make_request(
    *,
    tools: list[ToolDefinition] | None = None,
    reasoning_budget: int | None = None,
    timeout_s: float = 10.0,
    query: str = "Create notes.txt",
) -> GenerationRequest:
    return GenerationRequest(
        model="claude-sonnet-4-5",
        messages=[
            InstructionMessage(contents=[TextPart(text="You are a test expert.")], cache=True),
            UserMessage(contents=[TextPart(text=query)]),
        ],
        tools=tools,
        max_tokens=64000,
        timeout_s=timeout_s,
        reasoning_budget=reasoning_budget,
    )


READ_TOOL = ToolDefinition(
    skill_name="@perstack/base",
    name="readTextFile",
    description="Read a text file.",
    input_schema={"type": "object", "properties": {"path": {"type": "string"}}},
)


async def collect(
    provider: Provider, request: GenerationRequest
) -> tuple[list[ReasoningDelta | TextDelta], Generation]:
    """Every delta, and the one Generation that must come last."""
    deltas: list[ReasoningDelta | TextDelta] = []
    generations: list[Generation] = []
    async for item in provider.stream(request):
        assert not generations, "nothing may follow the Generation"
        if isinstance(item, Generation):
            generations.append(item)
        else:
            deltas.append(item)
    assert len(generations) == 1
    return deltas, generations[0]
