"""Interactive skills: tools a person answers. Calling one stops the coordinator's run
(`stopRunByInteractiveTool`); `perstack run … --continue -i "answer"` resumes it with the
answer as the tool's result. Delegated Experts are never offered these tools."""

from __future__ import annotations

import json
from typing import Any, Literal

from runtime.config import InteractiveSkill as InteractiveSkillConfig
from runtime.errors import ConfigError, SkillError
from runtime.skills.skill import ToolDefinition, ToolOutcome


class InteractiveSkill:
    kind: Literal["interactive"] = "interactive"

    def __init__(self, name: str, config: InteractiveSkillConfig) -> None:
        self._name = name
        self._definitions = []
        for tool_name, tool in config.tools.items():
            try:
                schema = json.loads(tool.input_json_schema)
            except json.JSONDecodeError as error:
                raise ConfigError(
                    f'skills."{name}".tools."{tool_name}".inputJsonSchema is not valid JSON '
                    f"({error.msg} at column {error.colno}); write a JSON Schema object"
                ) from error
            if not isinstance(schema, dict):
                raise ConfigError(
                    f'skills."{name}".tools."{tool_name}".inputJsonSchema must be a JSON object'
                )
            self._definitions.append(
                ToolDefinition(
                    skill_name=name,
                    name=tool_name,
                    description=tool.description or config.description or tool_name,
                    input_schema=schema,
                )
            )

    @property
    def name(self) -> str:
        return self._name

    async def start(self) -> None:
        return None

    def tool_definitions(self) -> list[ToolDefinition]:
        return list(self._definitions)

    async def call_tool(self, tool_name: str, args: dict[str, Any]) -> ToolOutcome:
        raise SkillError(self._name, f"interactive tool {tool_name!r} is answered by a person")

    async def close(self) -> None:
        return None
