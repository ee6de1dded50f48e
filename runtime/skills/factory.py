"""Build the skill objects of one Expert from its configuration."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from runtime.config import (
    BASE_SKILL_NAME,
    ExpertConfig,
    InteractiveSkill,
    McpSseSkill,
    McpStdioSkill,
    SkillConfig,
)
from runtime.errors import ConfigError
from runtime.skills.skill import Skill


@dataclass(frozen=True)
class SkillContext:
    """What skills of one run share."""

    workspace: Path
    job_id: str
    run_id: str
    # A delegated run: no interactive tools.
    delegated: bool = False
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
            raise ConfigError(
                f'experts."{expert_key}".skills."{name}": MCP skills are not supported yet '
                "by this runtime"  # TODO(#3): MCP skills over stdio, SSE and streamable HTTP
            )
        elif isinstance(config, InteractiveSkill):
            if context.delegated:
                continue  # delegated Experts cannot ask a person
            from runtime.skills.interactive import InteractiveSkill as Interactive

            skills.append(Interactive(name, config))
    if delegates:
        from runtime.skills.delegates import DelegateSkill

        skills.append(DelegateSkill(delegates))
    return skills


def _builtin(config: SkillConfig, context: SkillContext) -> Skill:
    from runtime.skills.builtin.skill import BuiltinSkill

    pick = getattr(config, "pick", [])
    omit = getattr(config, "omit", [])
    return BuiltinSkill(context.workspace, pick=pick, omit=omit)
