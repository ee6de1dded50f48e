"""What every skill offers the agent loop."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from runtime.messages import ResultContent, TextPart


@dataclass(frozen=True)
class ToolDefinition:
    """One tool as the model sees it (and as `perstack.lock` records it)."""

    skill_name: str
    name: str
    description: str
    input_schema: dict[str, Any]


@dataclass
class ToolOutcome:
    """What a tool call gave back. ``is_error`` results go to the model, never stop the run."""

    contents: list[ResultContent] = field(default_factory=list)
    is_error: bool = False

    @classmethod
    def text(cls, text: str, *, is_error: bool = False) -> ToolOutcome:
        return cls(contents=[TextPart(text=text)], is_error=is_error)


class Skill(Protocol):
    """A source of tools. Implementations: the built-in skill, MCP skills, interactive skills."""

    @property
    def name(self) -> str: ...

    async def start(self) -> None:
        """Make the tools callable (spawn, connect, discover). Idempotent."""

    def tool_definitions(self) -> list[ToolDefinition]:
        """The tools offered to the model, after pick/omit. Valid before ``start`` when the
        definitions come from a lockfile."""
        ...

    async def call_tool(self, tool_name: str, args: dict[str, Any]) -> ToolOutcome:
        """Run one tool. Bad arguments and tool failures come back as ``is_error`` outcomes;
        only a broken skill (dead server, timeout) raises ``SkillError``."""
        ...

    async def close(self) -> None:
        """Release everything the skill holds. Idempotent; never raises for a dead peer."""
