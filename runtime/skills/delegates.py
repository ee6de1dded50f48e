"""Delegates: each Expert named in `delegates` is offered to the model as a tool that takes
a `query`. The agent loop runs those calls as new Runs of the same Job; these skills only
describe them.

Names follow the reference (its DelegateSkillManager): one skill per delegated Expert,
named after the Expert's key, so a call's ``skillName`` is the key; the tool is named after
the key's last ``/`` segment (``@org/github-issue-bot`` is offered as
``github-issue-bot``). A delegation's result carries ``skillName = "delegate/<key>"``.
Earlier versions of ours named every delegate call's skill ``delegates``, its result's the
key, and the tool the whole key with ``@``, ``/`` and ``.`` replaced by ``_``; readers
(`perstack log`, the audit tables) take both.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Literal

from runtime.errors import ConfigError, SkillError
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
# The skillName of a delegation's result: the reference's prefix.
RESULT_SKILL_PREFIX = "delegate/"
# What earlier versions of ours wrote as a delegate call's skillName.
LEGACY_SKILL_NAME = "delegates"


def delegate_tool_name(expert_key: str) -> str:
    """The tool name for an Expert key: its last ``/`` segment, as the reference names it,
    with any character the Messages API refuses in a tool name (``.``, ``@``) replaced by
    ``_``."""
    last = expert_key.rsplit("/", 1)[-1] or expert_key
    return _INVALID_TOOL_CHARS.sub("_", last)[:MAX_TOOL_NAME]


def result_skill_name(expert_key: str) -> str:
    return RESULT_SKILL_PREFIX + expert_key


def delegated_expert(skill_name: str, tool_name: str) -> str:
    """The Expert a stored delegate call or result names, in either naming: the key itself
    (a call), ``delegate/<key>`` (a result), or ours before: ``delegates`` and the tool."""
    if skill_name == LEGACY_SKILL_NAME:
        return tool_name
    return skill_name.removeprefix(RESULT_SKILL_PREFIX)


def check_delegate_tool_names(delegates: Iterable[str], other_tools: Iterable[str]) -> None:
    """ConfigError when two delegates would be offered under one tool name, or one under
    the name of another tool; the message names both (the caller adds the file)."""
    taken = {name: f"tool {name!r}" for name in other_tools}
    for key in delegates:
        tool = delegate_tool_name(key)
        other = taken.get(tool)
        if other is not None:
            raise ConfigError(
                f"the delegate {key!r} would be offered as tool {tool!r}, and so would "
                f"{other}; delegate tools are named after the last '/' segment of the "
                "Expert's key: rename one of the Experts (or `omit` the other tool)"
            )
        taken[tool] = f"the delegate {key!r}"


class DelegateSkill:
    """One delegated Expert, offered as one tool."""

    kind: Literal["delegate"] = "delegate"
    # The manager announces no skillConnected/skillDisconnected for it (nor does the
    # reference): there is nothing to connect to.
    emits_own_lifecycle_events = True

    def __init__(self, expert_key: str, description: str) -> None:
        self.expert_key = expert_key
        self.tool_name = delegate_tool_name(expert_key)
        self._description = description

    @property
    def name(self) -> str:
        return self.expert_key

    async def start(self) -> None:
        return None

    def tool_definitions(self) -> list[ToolDefinition]:
        return [
            ToolDefinition(
                skill_name=self.expert_key,
                name=self.tool_name,
                description=(
                    f"Delegate a task to the Expert {self.expert_key!r}: {self._description}"
                ),
                input_schema=DELEGATE_INPUT_SCHEMA,
            )
        ]

    async def call_tool(self, tool_name: str, args: dict[str, Any]) -> ToolOutcome:
        raise SkillError(self.name, f"delegate {tool_name!r} must be run by the agent loop")

    async def close(self) -> None:
        return None


def delegate_skills(delegates: dict[str, str]) -> list[DelegateSkill]:
    """One skill per delegate (Expert key to its description), in the config's order."""
    check_delegate_tool_names(delegates, ())
    return [DelegateSkill(key, description) for key, description in delegates.items()]
