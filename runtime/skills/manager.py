"""The tools of one run: which skill serves which tool, their lifecycle, and their events.

Tool names must be unique across an Expert's skills, because the model calls tools by bare
name. A name offered by two skills is a configuration error naming both skills; use `pick`
or `omit` on one of them to choose.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from runtime.errors import ConfigError, SkillError
from runtime.events import Event, SkillConnected, SkillDisconnected
from runtime.skills.skill import Skill, ToolDefinition, ToolOutcome

logger = logging.getLogger(__name__)


class SkillManager:
    def __init__(
        self,
        skills: list[Skill],
        *,
        emit: Callable[[Event], None],
        job_id: str,
        run_id: str,
        source: str | None = None,
    ) -> None:
        """``source``: the config file the skills come from, named in configuration errors."""
        self._skills = skills
        self._source = source
        self._emit = emit
        self._job_id = job_id
        self._run_id = run_id
        self._by_tool: dict[str, Skill] = {}
        self._definitions: list[ToolDefinition] = []
        self._started: set[str] = set()

    @property
    def skills(self) -> list[Skill]:
        return list(self._skills)

    def index_tools(self) -> None:
        """Collect the tool definitions; raises ConfigError on a name offered twice."""
        self._by_tool.clear()
        self._definitions.clear()
        for skill in self._skills:
            for definition in skill.tool_definitions():
                other = self._by_tool.get(definition.name)
                if other is not None:
                    prefix = f"{self._source}: " if self._source else ""
                    raise ConfigError(prefix + _offered_twice(definition.name, other, skill))
                self._by_tool[definition.name] = skill
                self._definitions.append(definition)

    async def start(self, skill: Skill) -> None:
        if skill.name in self._started:
            return
        began = time.perf_counter()
        await skill.start()
        self._started.add(skill.name)
        if not getattr(skill, "emits_own_lifecycle_events", False):
            elapsed = round((time.perf_counter() - began) * 1000)
            self._emit(
                SkillConnected(
                    job_id=self._job_id,
                    run_id=self._run_id,
                    skill_name=skill.name,
                    spawn_duration_ms=0,
                    handshake_duration_ms=elapsed,
                    tool_discovery_duration_ms=0,
                    connect_duration_ms=elapsed,
                    total_duration_ms=elapsed,
                )
            )

    async def start_eager(self, is_eager: Callable[[Skill], bool]) -> None:
        """Start the skills that do not wait for their first call, all at once (servers
        start in parallel), then index the tools. The first failure is raised once every
        start has ended; ``close`` then stops whatever did start."""
        results = await asyncio.gather(
            *(self.start(skill) for skill in self._skills if is_eager(skill)),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result
        self.index_tools()

    def tool_definitions(self) -> list[ToolDefinition]:
        return list(self._definitions)

    def skill_for(self, tool_name: str) -> Skill | None:
        return self._by_tool.get(tool_name)

    async def call(self, tool_name: str, args: dict[str, Any]) -> tuple[str, ToolOutcome]:
        """Run one tool: (skill name, outcome). An unknown tool is an error result for the
        model; a broken skill raises SkillError."""
        skill = self._by_tool.get(tool_name)
        if skill is None:
            known = ", ".join(sorted(self._by_tool)) or "none"
            return "unknown", ToolOutcome.text(
                f"There is no tool named {tool_name!r}. Available tools: {known}.", is_error=True
            )
        await self.start(skill)
        return skill.name, await skill.call_tool(tool_name, args)

    async def close(self) -> None:
        """Close every skill, even when closing one of them fails."""
        for skill in reversed(self._skills):
            try:
                await skill.close()
            except (SkillError, OSError) as error:
                logger.warning("closing skill %s failed: %s", skill.name, error)
            except Exception:  # one bad close must not leave the other skills running
                logger.exception("closing skill %s failed", skill.name)
            if skill.name in self._started and not getattr(
                skill, "emits_own_lifecycle_events", False
            ):
                self._emit(
                    SkillDisconnected(
                        job_id=self._job_id, run_id=self._run_id, skill_name=skill.name
                    )
                )
        self._started.clear()


def _offered_twice(tool: str, first: Skill, second: Skill) -> str:
    delegates = [s for s in (first, second) if getattr(s, "kind", None) == "delegate"]
    if not delegates:
        return (
            f"tool {tool!r} is offered by both skill {first.name!r} and skill {second.name!r}; "
            "add it to `omit` of one of them"
        )
    other = second if delegates[0] is first else first
    what = f"the delegate {other.name!r}" if other in delegates else f"skill {other.name!r}"
    fix = (
        "rename one of the Experts"
        if other in delegates
        else f"rename the Expert, or add {tool!r} to `omit` of {what}"
    )
    return (
        f"tool {tool!r} is offered by both the delegate {delegates[0].name!r} and {what}; "
        f"delegate tools are named after the last '/' segment of the Expert's key: {fix}"
    )
