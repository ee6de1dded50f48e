"""Build the skill objects of one Expert from its configuration."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from runtime.config import (
    BASE_SKILL_NAME,
    ExpertConfig,
    InteractiveSkill,
    LoadedConfig,
    McpSseSkill,
    McpStdioSkill,
    SkillConfig,
)
from runtime.errors import ConfigError
from runtime.events import Event
from runtime.skills.skill import Skill, ToolDefinition


@dataclass(frozen=True)
class SkillContext:
    """What skills of one run share."""

    workspace: Path
    job_id: str
    run_id: str
    # A delegated run: no interactive tools.
    delegated: bool = False
    # Where skills that report their own lifecycle (MCP) send their events.
    emit: Callable[[Event], None] | None = None
    # From perstack.lock: the tool definitions of each skill (by name); None without a lock.
    locked_tools: dict[str, list[ToolDefinition]] | None = None
    extra: dict[str, object] = field(default_factory=dict)


def build_skills(
    expert_key: str,
    expert: ExpertConfig,
    context: SkillContext,
    delegates: dict[str, str] | None = None,
) -> list[Skill]:
    """The Expert's skills in declaration order, then its delegates (key to description)."""
    skills: list[Skill] = []
    for name, config in expert.effective_skills().items():
        if name == BASE_SKILL_NAME:
            skills.append(_builtin(config, context))
        elif isinstance(config, McpStdioSkill | McpSseSkill):
            skills.append(_mcp(expert_key, name, config, context))
        elif isinstance(config, InteractiveSkill):
            if context.delegated:
                continue  # delegated Experts cannot ask a person
            from runtime.skills.interactive import InteractiveSkill as Interactive

            skills.append(Interactive(name, config))
    if delegates:
        from runtime.skills.delegates import delegate_skills

        skills.extend(delegate_skills(delegates))
    return skills


def _mcp(
    expert_key: str, name: str, config: McpStdioSkill | McpSseSkill, context: SkillContext
) -> Skill:
    from runtime.skills.mcp.skill import McpSkill  # not the SDK: that waits for a start

    locked = context.locked_tools.get(name) if context.locked_tools is not None else None
    return McpSkill(
        name,
        config,
        expert_key=expert_key,
        job_id=context.job_id,
        run_id=context.run_id,
        emit=context.emit,
        locked=locked,
        cwd=context.workspace,
    )


def _builtin(config: SkillConfig, context: SkillContext) -> Skill:
    from runtime.skills.builtin.skill import BuiltinSkill

    pick = getattr(config, "pick", [])
    omit = getattr(config, "omit", [])
    return BuiltinSkill(context.workspace, pick=pick, omit=omit)


def check_skills(loaded: LoadedConfig, expert_key: str) -> None:
    """Check, before anything starts or is written, what can be known without starting a
    server: that every delegate is defined, and each stdio skill's command line and its
    ``requiredEnv``, for the Expert and every Expert it may delegate to."""
    from runtime.skills.delegates import check_delegate_tool_names
    from runtime.skills.mcp.command import server_command, server_environment

    loaded.check_delegates(expert_key)
    pending, seen = [expert_key], set()
    while pending:
        key = pending.pop()
        if key in seen:
            continue
        seen.add(key)
        expert = loaded.expert(key)
        try:
            check_delegate_tool_names(expert.delegates, _known_tool_names(expert))
        except ConfigError as error:
            raise ConfigError(f'{loaded.path}: experts."{key}": {error}') from error
        for name, config in expert.effective_skills().items():
            if name == BASE_SKILL_NAME or not isinstance(config, McpStdioSkill):
                continue
            try:
                server_command(key, name, config)
                server_environment(key, name, config.required_env, os.environ)
            except ConfigError as error:
                raise ConfigError(f"{loaded.path}: {error}") from error
        pending.extend(expert.delegates)


# TODO(#2): an MCP tool named like a delegate is found only when the server starts, after
# the job's first files are written (still exit 2, naming both and the file); with a
# lock it could be refused up front like the others.
def _known_tool_names(expert: ExpertConfig) -> list[str]:
    """The tools an Expert offers that are known without starting anything: the built-in
    ones it picks and its interactive ones (MCP servers' tools are checked as they start)."""
    from runtime.skills.builtin.schemas import TOOL_NAMES

    names: list[str] = []
    for name, config in expert.effective_skills().items():
        if name == BASE_SKILL_NAME:
            pick, omit = getattr(config, "pick", []), getattr(config, "omit", [])
            names += [t for t in TOOL_NAMES if (not pick or t in pick) and t not in omit]
        elif isinstance(config, InteractiveSkill):
            names += list(config.tools)
    return names
