"""Delegates: each Expert named in `delegates` is offered to the model as a tool that takes
a `query`. The agent loop runs those calls as new Runs of the same Job; this skill only
describes them."""

from __future__ import annotations

import re
from typing import Any, Literal

from runtime.errors import SkillError
from runtime.skills.skill import ToolDefinition, ToolOutcome

DELEGATE_INPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "query": {"type": "string", "description": "The task for the delegated Expert."}
    },
    "required": ["query"],
}
_INVALID_TOOL_CHARS = re.compile(r"[^a-zA-Z0-9_-]")
# The Messages API's limit on tool names.
MAX_TOOL_NAME = 64


def delegate_tool_name(expert_key: str) -> str:
    """The tool name for an Expert key: the key itself when the API accepts it, otherwise
    the key with each character the API refuses (``@``, ``/``, ``.``) replaced by ``_``."""
    return _INVALID_TOOL_CHARS.sub("_", expert_key)[:MAX_TOOL_NAME]


class DelegateSkill:
    kind: Literal["delegate"] = "delegate"

    def __init__(self, delegates: dict[str, str]) -> None:
        """``delegates``: Expert key to its description."""
        self._by_tool = {delegate_tool_name(key): key for key in delegates}
        self._descriptions = delegates

    @property
    def name(self) -> str:
        return "delegates"

    def expert_for(self, tool_name: str) -> str:
        return self._by_tool[tool_name]

    async def start(self) -> None:
        return None

    def tool_definitions(self) -> list[ToolDefinition]:
        return [
            ToolDefinition(
                skill_name=key,
                name=tool,
                description=f"Delegate a task to the Expert {key!r}: {self._descriptions[key]}",
                input_schema=DELEGATE_INPUT_SCHEMA,
            )
            for tool, key in self._by_tool.items()
        ]

    async def call_tool(self, tool_name: str, args: dict[str, Any]) -> ToolOutcome:
        raise SkillError(self.name, f"delegate {tool_name!r} must be run by the agent loop")

    async def close(self) -> None:
        return None
