"""Keys the reference's own configs carry that this runtime does not use, accepted with a
warning instead of failing the whole file.

Our rule stays: an unknown key is an error naming the key and the file. The reference's zod
objects silently drop unknown keys, and its own configs rely on that, so each case below was
decided on its own (and only these are let through):

- ``envPath`` under ``[provider]``: written after the ``[provider]`` table, TOML puts it
  there (20 of the reference's configs do). The reference drops it, so those configs read
  the default ``.env`` and ``.env.local``. We drop it too, with a warning saying to move it
  to the top level: honouring it would make the same file read other env files here than in
  the reference.
- ``providerTools``, ``providerSkills``, ``providerToolOptions`` on an Expert (newer
  reference versions: the provider's own tools, such as web search, and Anthropic skills):
  not supported here; dropped with a warning, so the Expert runs without them.
- ``name`` of an interactive tool: the reference accepts it and uses the table key; we
  accept it when it equals the key, and refuse it otherwise (which name would be meant?).
- ``timeout = 0``: the reference means 0 ms (every generation is aborted at once, it does
  not mean "no limit"); we accept it and mean the same, with a warning.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from runtime.errors import ConfigError

logger = logging.getLogger(__name__)

UNSUPPORTED_EXPERT_KEYS = ("providerTools", "providerSkills", "providerToolOptions")


def tolerate_reference_keys(data: dict[str, Any], path: Path) -> dict[str, Any]:
    """``data`` (parsed TOML) without the keys above, each dropped with a warning naming the
    file; ConfigError for an interactive tool ``name`` that is not the tool's key."""
    data = dict(data)
    provider = data.get("provider")
    if isinstance(provider, dict) and "envPath" in provider:
        data["provider"] = {k: v for k, v in provider.items() if k != "envPath"}
        logger.warning(
            "%s: envPath under [provider] is ignored, as by the reference (TOML puts a key "
            "there when it follows [provider]); move `envPath = [...]` above [provider], to "
            "the top level, for it to take effect",
            path,
        )
    if data.get("timeout") == 0 and not isinstance(data.get("timeout"), bool):
        logger.warning(
            "%s: timeout = 0 means 0 ms per generation, as in the reference: every "
            "generation times out at once; give the timeout in ms (default 300000)",
            path,
        )
    experts = data.get("experts")
    if isinstance(experts, dict):
        data["experts"] = {
            key: _tolerate_expert(key, expert, path) if isinstance(expert, dict) else expert
            for key, expert in experts.items()
        }
    return data


def _tolerate_expert(key: str, expert: dict[str, Any], path: Path) -> dict[str, Any]:
    unsupported = [name for name in UNSUPPORTED_EXPERT_KEYS if name in expert]
    if unsupported:
        logger.warning(
            '%s: experts."%s": %s not supported by this runtime (the provider\'s own tools '
            "and skills of newer reference versions); ignored, the Expert runs without them",
            path,
            key,
            " and ".join(unsupported) + (" is" if len(unsupported) == 1 else " are"),
        )
    expert = {k: v for k, v in expert.items() if k not in UNSUPPORTED_EXPERT_KEYS}
    skills = expert.get("skills")
    if isinstance(skills, dict):
        expert["skills"] = {
            name: _without_tool_names(key, name, skill, path) if isinstance(skill, dict) else skill
            for name, skill in skills.items()
        }
    return expert


def _without_tool_names(
    expert_key: str, skill_name: str, skill: dict[str, Any], path: Path
) -> dict[str, Any]:
    tools = skill.get("tools")
    if skill.get("type") != "interactiveSkill" or not isinstance(tools, dict):
        return skill
    cleaned: dict[str, Any] = {}
    for tool_name, tool in tools.items():
        if isinstance(tool, dict) and "name" in tool:
            if tool["name"] != tool_name:
                raise ConfigError(
                    f'{path}: experts."{expert_key}".skills."{skill_name}".tools."{tool_name}"'
                    f": name = {tool['name']!r} is not the tool's key {tool_name!r}; the key "
                    "is the tool's name: remove `name` or rename the table"
                )
            tool = {k: v for k, v in tool.items() if k != "name"}
        cleaned[tool_name] = tool
    return {**skill, "tools": cleaned}
