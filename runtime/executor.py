"""Execute one Expert: set up the job, the run, its skills and provider, run the loop, and
leave the job's files consistent on every way out."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from runtime.checkpoint import Job, JobStatus, Usage
from runtime.config import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_MAX_STEPS,
    DEFAULT_TIMEOUT_MS,
    REASONING_BUDGET_TOKENS,
    LoadedConfig,
)
from runtime.errors import ConfigError, StorageError
from runtime.eventbus import EventBus, Listener
from runtime.events import InitializeRuntime
from runtime.generation import RetryPolicy
from runtime.ids import new_id, now_ms
from runtime.prompt import build_instruction
from runtime.providers.factory import ProviderChoice, build_provider, choose_provider
from runtime.run import RunLoop, RunOutcome, RunParams
from runtime.setting import ProviderConfig, RunInput, RunSetting
from runtime.skills.factory import SkillContext, build_skills
from runtime.skills.manager import SkillManager
from runtime.skills.skill import Skill
from runtime.storage import WorkspaceStore
from runtime.version import RUNTIME_VERSION

logger = logging.getLogger(__name__)

_JOB_STATUS: dict[str, JobStatus] = {
    "completed": "completed",
    "stoppedByExceededMaxSteps": "stoppedByMaxSteps",
    "stoppedByInteractiveTool": "stoppedByInteractiveTool",
    "stoppedByError": "stoppedByError",
    "stoppedByDelegate": "running",
}


@dataclass
class ExecutionRequest:
    loaded: LoadedConfig
    expert_key: str
    query: str
    workspace: Path
    provider: str | None = None
    model: str | None = None
    script: str | None = None
    max_steps: int | None = None
    max_retries: int | None = None
    timeout_ms: int | None = None
    job_id: str | None = None
    verbose: bool = False
    listeners: list[Listener] = field(default_factory=list)


@dataclass(frozen=True)
class Limits:
    max_steps: int
    max_retries: int
    timeout_ms: int

    @classmethod
    def resolve(cls, request: ExecutionRequest) -> Limits:
        config = request.loaded.config
        return cls(
            max_steps=_first(request.max_steps, config.max_steps, DEFAULT_MAX_STEPS),
            max_retries=_first(request.max_retries, config.max_retries, DEFAULT_MAX_RETRIES),
            timeout_ms=_first(request.timeout_ms, config.timeout, DEFAULT_TIMEOUT_MS),
        )


def _first(*values: int | None) -> int:
    return next(v for v in values if v is not None)


def reasoning_budget_tokens(loaded: LoadedConfig) -> int | None:
    budget = loaded.config.reasoning_budget
    if budget is None or isinstance(budget, int):
        return budget
    return REASONING_BUDGET_TOKENS[budget]


async def execute(request: ExecutionRequest, stdout: TextIO | None) -> RunOutcome:
    """Run the Expert once as a new job (or a new run of ``request.job_id``)."""
    expert = request.loaded.expert(request.expert_key)
    limits = Limits.resolve(request)
    choice = choose_provider(
        request.loaded, provider=request.provider, model=request.model, script=request.script
    )
    store = WorkspaceStore(request.workspace)
    bus = EventBus(stdout=stdout, store=store, listeners=request.listeners)
    job_id = request.job_id or new_id()
    run_id = new_id()
    started = now_ms()
    job = _open_job(store, job_id, request.expert_key, limits, started)
    setting = _run_setting(request, choice, limits, job_id, run_id, started)
    store.write_run_setting(setting)
    bus.emit(
        InitializeRuntime(
            job_id=job_id,
            run_id=run_id,
            runtime_version=RUNTIME_VERSION,
            runtime="local",
            expert_name=request.expert_key,
            experts=list(request.loaded.config.experts),
            model=choice.model,
            temperature=request.loaded.config.temperature,
            max_steps=limits.max_steps,
            max_retries=limits.max_retries,
            timeout=limits.timeout_ms,
            query=request.query,
        )
    )
    provider = build_provider(choice)
    context = SkillContext(workspace=request.workspace, job_id=job_id, run_id=run_id)
    skills = build_skills(request.expert_key, expert, context)
    manager = SkillManager(skills, emit=bus.emit, job_id=job_id, run_id=run_id)
    outcome: RunOutcome | None = None
    try:
        await manager.start_eager(_is_eager)
        loop = RunLoop(
            RunParams(
                job_id=job_id,
                run_id=run_id,
                expert_key=request.expert_key,
                expert_name=request.expert_key,
                expert_version=expert.version,
                model=choice.model,
                max_steps=limits.max_steps,
                timeout_s=limits.timeout_ms / 1000,
                retry=RetryPolicy.from_env(limits.max_retries),
                reasoning_budget=reasoning_budget_tokens(request.loaded),
                temperature=request.loaded.config.temperature,
            ),
            provider=provider,
            skills=manager,
            emit=bus.emit,
            save_checkpoint=store.write_checkpoint,
            has_open_todos=lambda: _open_todos(skills),
        )
        delegates = {
            key: request.loaded.expert(key).description or key for key in expert.delegates
        }
        instruction = build_instruction(
            request.expert_key,
            expert,
            delegate_descriptions=delegates,
            workspace_label=str(request.workspace),
        )
        outcome = await loop.start(instruction, request.query)
        return outcome
    finally:
        await manager.close()
        await provider.aclose()
        _close_job(store, job, outcome, loop_checkpoint_usage(outcome))


def _is_eager(skill: Skill) -> bool:
    return not getattr(skill, "lazy", False)


def _open_todos(skills: list[Skill]) -> bool:
    for skill in skills:
        probe = getattr(skill, "has_open_todos", None)
        if callable(probe) and probe():
            return True
    return False


def loop_checkpoint_usage(outcome: RunOutcome | None) -> Usage:
    return outcome.usage if outcome is not None else Usage()


def _open_job(
    store: WorkspaceStore, job_id: str, expert_key: str, limits: Limits, started: int
) -> Job:
    previous: Job | None = None
    if (store.job_dir(job_id) / "job.json").is_file():
        previous = store.read_job(job_id)
    job = Job(
        id=job_id,
        status="running",
        coordinator_expert_key=previous.coordinator_expert_key if previous else expert_key,
        total_steps=previous.total_steps if previous else 0,
        max_steps=limits.max_steps,
        usage=previous.usage if previous else Usage(),
        started_at=previous.started_at if previous else started,
    )
    store.write_job(job)
    return job


def _close_job(
    store: WorkspaceStore, job: Job, outcome: RunOutcome | None, usage: Usage
) -> None:
    status: JobStatus = _JOB_STATUS[outcome.status] if outcome else "stoppedByError"
    steps = outcome.checkpoint.step_number if outcome else job.total_steps
    closed = job.model_copy(
        update={
            "status": status,
            "total_steps": max(job.total_steps, steps),
            "usage": job.usage + usage,
            "finished_at": now_ms(),
        }
    )
    try:
        store.write_job(closed)
    except StorageError:  # the run's own result matters more than the job summary
        logger.exception("could not update job.json of job %s", job.id)


def _run_setting(
    request: ExecutionRequest,
    choice: ProviderChoice,
    limits: Limits,
    job_id: str,
    run_id: str,
    started: int,
) -> RunSetting:
    experts: dict[str, Any] = {
        key: {"key": key, "name": key, **expert.model_dump(mode="json", exclude_none=True)}
        for key, expert in request.loaded.config.experts.items()
    }
    return RunSetting(
        model=choice.model,
        provider_config=ProviderConfig(
            provider_name=choice.name,
            base_url=choice.base_url,
            header_names=sorted(choice.headers) if choice.headers else None,
        ),
        job_id=job_id,
        run_id=run_id,
        expert_key=request.expert_key,
        input=RunInput(text=request.query),
        experts=experts,
        temperature=request.loaded.config.temperature,
        max_steps=limits.max_steps,
        max_retries=limits.max_retries,
        timeout=limits.timeout_ms,
        started_at=started,
        updated_at=started,
        verbose=request.verbose or None,
        runtime_version=RUNTIME_VERSION,
        reasoning_budget=reasoning_budget_tokens(request.loaded),
    )


__all__ = ["ConfigError", "ExecutionRequest", "execute"]
