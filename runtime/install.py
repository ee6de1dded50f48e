"""`perstack install`: start every skill of every Expert once, and write what they offer to
perstack.lock next to the config (format: ``runtime.lockfile``)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from runtime.config import ExpertConfig, LoadedConfig
from runtime.events import Event, SkillConnected, SkillStderr
from runtime.ids import now_ms
from runtime.lockfile import LockedExpert, Lockfile, config_hash, lockfile_path, write_lockfile
from runtime.signals import until_signalled
from runtime.skills.factory import SkillContext, build_skills
from runtime.skills.manager import SkillManager
from runtime.skills.skill import ToolDefinition

logger = logging.getLogger(__name__)

INSTALL_ID = "install"  # the job and run id skill events carry during an install

Progress = Callable[[str], None]


async def install(loaded: LoadedConfig, *, progress: Progress | None = None) -> Path:
    """Build and write the lock; returns its path. Fails (ConfigError, SkillError) without
    touching an existing lock."""
    say = progress or (lambda _: None)
    experts = loaded.config.experts
    say(f"Found {len(experts)} expert(s)")
    locked: dict[str, LockedExpert] = {}
    for key in sorted(experts):
        say(f"Collecting tool definitions for {key}...")
        definitions = await collect_tool_definitions(key, experts[key], loaded)
        say(f"  Found {len(definitions)} tool(s)")
        locked[key] = _locked_expert(key, experts[key], definitions)
    lock = Lockfile(
        generated_at=now_ms(),
        config_path=loaded.path.name,
        config_hash=config_hash(loaded.raw_bytes),
        experts=locked,
    )
    path = lockfile_path(loaded)
    if write_lockfile(path, lock):
        say(f"Generated {path}")
    else:
        say(f"{path} is up to date (left unchanged)")
    return path


async def install_until_signalled(loaded: LoadedConfig, *, progress: Progress | None = None) -> int:
    """``install`` for the CLI: SIGTERM and SIGINT stop it cleanly, every server it started
    closed. Returns 0, or 128 + the signal's number."""
    _, signum = await until_signalled(install(loaded, progress=progress), "install")
    return 0 if signum is None else 128 + signum


async def collect_tool_definitions(
    key: str, expert: ExpertConfig, loaded: LoadedConfig
) -> list[ToolDefinition]:
    """Start all of the Expert's skills at once, list their (picked) tools, close them all."""
    context = SkillContext(
        workspace=loaded.root, job_id=INSTALL_ID, run_id=INSTALL_ID, emit=_log_event
    )
    skills = build_skills(key, expert, context)
    manager = SkillManager(
        skills, emit=_log_event, job_id=INSTALL_ID, run_id=INSTALL_ID, source=str(loaded.path)
    )
    try:
        # Every start ends (each is bounded) before the closing below: none is left
        # half-open. A tool name offered twice fails here, as in a run.
        await manager.start_eager(lambda skill: True)
        return manager.tool_definitions()
    finally:
        await manager.close()


def _locked_expert(
    key: str, expert: ExpertConfig, definitions: list[ToolDefinition]
) -> LockedExpert:
    skills: dict[str, dict[str, Any]] = {}
    for name, config in expert.effective_skills().items():
        table = config.model_dump(mode="json", by_alias=True, exclude_none=True)
        skills[name] = {"type": table.pop("type"), "name": name, **table}
    return LockedExpert(
        key=key,
        name=key,
        version=expert.version,
        description=expert.description,
        instruction=expert.instruction,
        skills=skills,
        delegates=list(expert.delegates),
        tags=list(expert.tags),
        tool_definitions=definitions,
    )


def _log_event(event: Event) -> None:
    if isinstance(event, SkillStderr):
        logger.debug("skill %s stderr: %s", event.skill_name, event.message)
    elif isinstance(event, SkillConnected):
        logger.info("skill %s connected in %s ms", event.skill_name, event.total_duration_ms)


__all__ = ["collect_tool_definitions", "install", "install_until_signalled"]
