"""Execute a Job: the coordinator's Run, a Run per delegation, and continuing a stopped Job.

Everything a Run needs (provider, skills, the job's files) is set up here and torn down on
every way out: skills are closed even when the run fails or is interrupted, and job.json
always ends with a final status.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from runtime.budget import JobUsage, StepBudget
from runtime.checkpoint import (
    JOB_STATUS,
    Checkpoint,
    CheckpointError,
    DelegatedBy,
    ExpertRef,
    Job,
    JobStatus,
    ToolCall,
    ToolResult,
    Usage,
)
from runtime.config import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_MAX_STEPS,
    DEFAULT_TIMEOUT_MS,
    REASONING_BUDGET_TOKENS,
    LoadedConfig,
)
from runtime.errors import ConfigError, SkillError, StorageError
from runtime.eventbus import EventBus, Listener
from runtime.eventfiles import EventFileWriter
from runtime.events import InitializeRuntime
from runtime.generation import RetryPolicy
from runtime.ids import new_id, now_ms
from runtime.joblock import lock_job
from runtime.jobs import derived_job
from runtime.lockfile import lock_for_run
from runtime.messages import TextPart
from runtime.prompt import build_instruction
from runtime.providers.factory import ProviderChoice, build_provider, choose_provider
from runtime.providers.provider import Provider
from runtime.resume import Resume, ResumeRequest, resume_point
from runtime.run import INTERRUPTED, RunLoop, RunOutcome, RunParams
from runtime.setting import (
    DEFAULT_PERSTACK_API_BASE_URL,
    DEFAULT_TEMPERATURE,
    InteractiveToolCallResult,
    ProviderConfig,
    RunInput,
    RunSetting,
)
from runtime.signals import finish_even_if_cancelled
from runtime.skills.delegates import DelegateSkill, result_skill_name
from runtime.skills.factory import SkillContext, build_skills, check_skills
from runtime.skills.manager import SkillManager
from runtime.skills.skill import Skill
from runtime.storage import CheckpointScan, WorkspaceStore
from runtime.version import RUNTIME_VERSION

logger = logging.getLogger(__name__)

# How deep delegations may nest (the coordinator is level 0). Real hierarchies are two or
# three levels deep; every level keeps its own skills (MCP servers) running, and an Expert
# that delegates to itself would otherwise nest until maxSteps.
MAX_DELEGATION_DEPTH = 8


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
    # Continuing: the job to continue (--continue resolves to the latest), the checkpoint to
    # resume from (default: the coordinator's last), and whether the query answers the
    # pending interactive tool call (-i).
    continue_job: str | None = None
    resume_from: str | None = None
    interactive_answer: bool = False
    # Refuse to run without a perstack.lock built from this very config (production images).
    frozen_lock: bool = False
    verbose: bool = False
    listeners: list[Listener] = field(default_factory=list)
    # Called once everything that can be checked without running was (and passed), right
    # before the job's first file is written: the CLI creates a new workspace folder here,
    # so that a rejected run (exit 2) leaves none behind.
    before_first_write: Callable[[], None] | None = None


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


class JobSession:
    """One invocation of the runtime: a Job's coordinator Run and its delegations."""

    def __init__(self, request: ExecutionRequest, stdout: TextIO | None) -> None:
        self.request = request
        self.loaded = request.loaded
        self.limits = Limits.resolve(request)
        self.choice = choose_provider(
            request.loaded, provider=request.provider, model=request.model, script=request.script
        )
        self.store = WorkspaceStore(request.workspace)
        self.bus = EventBus(
            stdout=stdout, files=EventFileWriter(self.store), listeners=request.listeners
        )
        self.lock = lock_for_run(request.loaded, frozen=request.frozen_lock)
        self.retry = RetryPolicy.from_env(self.limits.max_retries)
        self._provider: Provider | None = None

    @property
    def provider(self) -> Provider:
        if self._provider is None:
            self._provider = build_provider(self.choice)
        return self._provider

    async def execute(self) -> RunOutcome:
        request = self.request
        # What can be checked before anything is written is checked first: an unknown
        # Expert, a skill's command or variables, the provider's key.
        self.loaded.expert(request.expert_key)
        check_skills(self.loaded, request.expert_key)
        self.provider  # noqa: B018 - building it checks its configuration
        job_id = request.continue_job or request.job_id or new_id()
        if request.before_first_write is not None:
            request.before_first_write()  # the lock file is the job's first
        lock = lock_job(self.store, job_id, new=not request.continue_job)
        try:
            return await self._execute_job(job_id)
        finally:
            lock.release()

    async def _execute_job(self, job_id: str) -> RunOutcome:
        """The Job's next Run, with the Job held by this process."""
        request = self.request
        scan = self.store.scan_checkpoints(job_id) if request.continue_job else CheckpointScan()
        previous = self._previous_job(job_id, scan)
        resume: Resume | None = None
        if previous is not None:
            resume = resume_point(self.store, scan, self._resume_request(previous))
        job = self._open_job(job_id, previous)
        last_step, used = _progress(job, scan)
        self.steps = StepBudget(self.limits.max_steps, last_step)
        self.usage = JobUsage(used)
        first_step = self.steps.take()
        if first_step is None:
            logger.warning(
                "job %s has used all %d steps of its maxSteps: continue it with a higher "
                "--max-steps (for example --max-steps %d)",
                job_id,
                self.limits.max_steps,
                2 * self.limits.max_steps,
            )
        outcome: RunOutcome | None = None
        try:
            outcome = await self.run_expert(
                request.expert_key,
                request.query,
                resume=resume,
                job_id=job_id,
                first_step=first_step,
            )
            return outcome
        finally:
            if self._provider is not None:
                await finish_even_if_cancelled(self._provider.aclose())
            self.bus.close()
            self._close_job(job, outcome)

    async def run_expert(
        self,
        expert_key: str,
        query: str,
        *,
        job_id: str,
        first_step: int | None,
        resume: Resume | None = None,
        delegated_by: DelegatedBy | None = None,
        depth: int = 0,
    ) -> RunOutcome:
        """One Run of ``expert_key`` at ``first_step`` (taken from the Job's steps; None
        only when a continued Job has none left): set up, loop, tear down. ``depth``: how
        many delegations deep it is."""
        expert = self.loaded.expert(expert_key)
        run_id = new_id()
        self.store.write_run_setting(self._run_setting(expert_key, query, job_id, run_id, resume))
        self.bus.emit(self._initialize_event(expert_key, query, job_id, run_id, resume))
        delegates = {key: self.loaded.expert(key).description or key for key in expert.delegates}
        context = SkillContext(
            workspace=self.request.workspace,
            job_id=job_id,
            run_id=run_id,
            delegated=delegated_by is not None,
            emit=self.bus.emit,
            locked_tools=self.lock.tools_by_skill(expert_key) if self.lock else None,
        )
        skills = build_skills(expert_key, expert, context, delegates)
        manager = SkillManager(
            skills, emit=self.bus.emit, job_id=job_id, run_id=run_id, source=str(self.loaded.path)
        )
        try:
            loop = RunLoop(
                self._run_params(expert_key, expert.version, job_id, run_id, delegated_by),
                provider=self.provider,
                skills=manager,
                emit=self.bus.emit,
                save_checkpoint=self.store.write_checkpoint,
                steps=self.steps,
                usage=self.usage,
                has_open_todos=lambda: _open_todos(skills),
                delegate=self._delegate_for(skills, expert_key, expert.version, depth),
            )
            if resume is not None and first_step is None:
                # No step left: no generation, so no skill needs to start either.
                return await loop.resume(
                    resume.checkpoint,
                    resume.messages,
                    first_step=None,
                    answers_pending_calls=resume.answers_pending_calls,
                )
            assert first_step is not None, "a new run always has a step (checked by the caller)"
            resumed = resume.checkpoint if resume else None
            try:
                await manager.start_eager(_is_eager)
            except SkillError as error:
                # A server that cannot start ends the run like any skill failure: with a
                # stop event and a checkpoint, not only a message.
                return loop.stop_before_start(
                    CheckpointError(name="SkillError", message=str(error), is_retryable=False),
                    resumed,
                    first_step=first_step,
                )
            except asyncio.CancelledError:
                loop.stop_before_start(INTERRUPTED, resumed, first_step=first_step)
                raise
            if resume is not None:
                return await loop.resume(
                    resume.checkpoint,
                    resume.messages,
                    first_step=first_step,
                    answers_pending_calls=resume.answers_pending_calls,
                )
            instruction = build_instruction(
                expert_key,
                expert,
                delegate_descriptions=delegates,
                workspace_label=str(self.request.workspace),
            )
            return await loop.start(instruction, query, first_step=first_step)
        finally:
            await finish_even_if_cancelled(manager.close())

    # --- delegation -------------------------------------------------------------------

    def _delegate_for(
        self, skills: list[Skill], parent_key: str, parent_version: str, parent_depth: int
    ) -> Any:
        experts = {s.tool_name: s.expert_key for s in skills if isinstance(s, DelegateSkill)}
        if not experts:
            return None

        async def delegate(call: ToolCall, parent: Checkpoint) -> ToolResult:
            expert_key = experts[call.tool_name]
            query = call.args.get("query")
            if not isinstance(query, str) or not query.strip():
                return _result(call, expert_key, "A delegation needs a non-empty `query`.", True)
            refusal = self._delegation_refused(expert_key, parent_depth + 1)
            if refusal is not None:
                return _result(call, expert_key, refusal, True)
            # Taken before anything is awaited: delegates called in one turn cannot share it.
            first_step = self.steps.take()
            if first_step is None:
                return _result(call, expert_key, self._no_step_left(expert_key), True)
            delegated_by = DelegatedBy(
                expert=ExpertRef(key=parent_key, name=parent_key, version=parent_version),
                tool_call_id=call.id,
                tool_name=call.tool_name,
                checkpoint_id=parent.id,
                run_id=parent.run_id,
            )
            outcome = await self.run_expert(
                expert_key,
                query,
                job_id=parent.job_id,
                first_step=first_step,
                delegated_by=delegated_by,
                depth=parent_depth + 1,
            )
            if outcome.status == "completed":
                return _result(call, expert_key, outcome.text or "", False)
            reason = outcome.error.message if outcome.error else outcome.status
            return _result(call, expert_key, f"The Expert {expert_key!r} failed: {reason}", True)

        return delegate

    def _delegation_refused(self, expert_key: str, depth: int) -> str | None:
        if depth <= MAX_DELEGATION_DEPTH:
            return None
        return (
            f"The Expert {expert_key!r} was not started: delegations may nest at most "
            f"{MAX_DELEGATION_DEPTH} levels deep and this one would be level {depth}. "
            "Do this part yourself, or answer with what you have."
        )

    def _no_step_left(self, expert_key: str) -> str:
        return (
            f"The Expert {expert_key!r} was not started: the job has used all "
            f"{self.steps.max_steps} steps of its maxSteps, which count every Expert's steps."
        )

    # --- the job's files -------------------------------------------------------------------

    def _previous_job(self, job_id: str, scan: CheckpointScan) -> Job | None:
        """The job continued (None for a new one); ConfigError when it cannot be."""
        exists = self.store.has_job(job_id)
        if not self.request.continue_job:
            if exists:
                raise ConfigError(
                    f"job {job_id} already exists in {self.store.jobs_dir}; continue it with "
                    "--continue-job, or choose a new --job-id"
                )
            return None
        if not exists:
            # A job the reference started has no job.json: its checkpoints tell.
            return derived_job(self.store, job_id, scan.checkpoints)
        try:
            return self.store.read_job(job_id)
        except StorageError as error:
            raise ConfigError(
                f"{error}; restore the file, or start a new job (perstack log --job {job_id} "
                "still shows this one)"
            ) from error

    def _resume_request(self, job: Job) -> ResumeRequest:
        request = self.request
        return ResumeRequest(
            job=job,
            expert_key=request.expert_key,
            query=request.query,
            resume_from=request.resume_from,
            interactive_answer=request.interactive_answer,
        )

    def _open_job(self, job_id: str, previous: Job | None) -> Job:
        job = Job(
            id=job_id,
            status="running",
            coordinator_expert_key=(
                previous.coordinator_expert_key if previous else self.request.expert_key
            ),
            total_steps=previous.total_steps if previous else 0,
            max_steps=self.limits.max_steps,
            usage=previous.usage if previous else Usage(),
            started_at=previous.started_at if previous else now_ms(),
        )
        self.store.write_job(job)
        return job

    def _close_job(self, job: Job, outcome: RunOutcome | None) -> None:
        status: JobStatus = JOB_STATUS[outcome.status] if outcome else "stoppedByError"
        closed = job.model_copy(
            update={
                "status": status,
                "total_steps": max(job.total_steps, self.steps.last),
                "usage": self.usage.total,
                "finished_at": now_ms(),
            }
        )
        try:
            self.store.write_job(closed)
        except StorageError as error:  # the run's own result matters more than the summary
            logger.error("could not update job.json of job %s: %s", job.id, error)

    # --- settings and events -----------------------------------------------------------

    def _run_params(
        self,
        expert_key: str,
        version: str,
        job_id: str,
        run_id: str,
        delegated_by: DelegatedBy | None,
    ) -> RunParams:
        return RunParams(
            job_id=job_id,
            run_id=run_id,
            expert_key=expert_key,
            expert_name=expert_key,
            expert_version=version,
            model=self.choice.model,
            timeout_s=self.limits.timeout_ms / 1000,
            retry=self.retry,
            reasoning_budget=reasoning_budget_tokens(self.loaded),
            temperature=self.loaded.config.temperature,
            delegated_by=delegated_by,
        )

    def _initialize_event(
        self, expert_key: str, query: str, job_id: str, run_id: str, resume: Resume | None
    ) -> InitializeRuntime:
        interactive = resume.interactive if resume else None
        return InitializeRuntime(
            job_id=job_id,
            run_id=run_id,
            runtime_version=RUNTIME_VERSION,
            runtime="local",
            expert_name=expert_key,
            experts=list(self.loaded.config.experts),
            model=self.choice.model,
            temperature=self.loaded.config.temperature,
            max_steps=self.limits.max_steps,
            max_retries=self.limits.max_retries,
            timeout=self.limits.timeout_ms,
            query=None if interactive else query,
            interactive_tool_call=interactive,
        )

    def _run_setting(
        self, expert_key: str, query: str, job_id: str, run_id: str, resume: Resume | None
    ) -> RunSetting:
        return build_run_setting(
            self.loaded,
            self.choice,
            self.limits,
            expert_key,
            job_id,
            run_id,
            _run_input(query, resume),
            verbose=self.request.verbose,
        )


def _run_input(query: str, resume: Resume | None) -> RunInput:
    if resume is None or resume.interactive is None:
        return RunInput(text=query)
    call = resume.interactive
    return RunInput(
        interactive_tool_call_result=InteractiveToolCallResult(
            tool_call_id=call.tool_call_id,
            tool_name=call.tool_name,
            skill_name=call.skill_name or "",
            text=call.text,
        )
    )


def build_run_setting(
    loaded: LoadedConfig,
    choice: ProviderChoice,
    limits: Limits,
    expert_key: str,
    job_id: str,
    run_id: str,
    run_input: RunInput,
    *,
    verbose: bool = False,
) -> RunSetting:
    experts: dict[str, Any] = {
        key: {"key": key, "name": key, **expert.model_dump(mode="json", exclude_none=True)}
        for key, expert in loaded.config.experts.items()
    }
    started = now_ms()
    return RunSetting(
        model=choice.model,
        provider_config=ProviderConfig(
            provider_name=choice.name,
            base_url=choice.base_url,
            header_names=sorted(choice.headers) if choice.headers else None,
        ),
        job_id=job_id,
        run_id=run_id,
        expert_key=expert_key,
        input=run_input,
        experts=experts,
        temperature=(
            DEFAULT_TEMPERATURE if loaded.config.temperature is None else loaded.config.temperature
        ),
        max_steps=limits.max_steps,
        max_retries=limits.max_retries,
        timeout=limits.timeout_ms,
        started_at=started,
        updated_at=started,
        perstack_api_base_url=(
            loaded.config.perstack_api_base_url or DEFAULT_PERSTACK_API_BASE_URL
        ),
        verbose=verbose or None,
        runtime_version=RUNTIME_VERSION,
        reasoning_budget=reasoning_budget_tokens(loaded),
    )


def _result(call: ToolCall, expert_key: str, text: str, is_error: bool) -> ToolResult:
    return ToolResult(
        id=call.id,
        skill_name=result_skill_name(expert_key),  # the reference's "delegate/<key>"
        tool_name=call.tool_name,
        result=[TextPart(text=text)],
        is_error=True if is_error else None,
    )


def _progress(job: Job, scan: CheckpointScan) -> tuple[int, Usage]:
    """The job's last step and the tokens it used: job.json says them once the job stopped
    cleanly, its checkpoints (each with the job's usage so far) when the runtime was killed
    before that."""
    last, usage = job.total_steps, job.usage
    for checkpoint in scan.checkpoints:
        last = max(last, checkpoint.step_number)
        usage = _at_least(usage, checkpoint.usage)
    return last, usage


def _at_least(usage: Usage, other: Usage) -> Usage:
    """Each count the larger of the two (both are running totals of the same job)."""
    mine, theirs = usage.model_dump(), other.model_dump()
    return Usage.model_validate({key: max(value, theirs[key]) for key, value in mine.items()})


def _is_eager(skill: Skill) -> bool:
    return not getattr(skill, "lazy", False)


def _open_todos(skills: list[Skill]) -> bool:
    for skill in skills:
        probe = getattr(skill, "has_open_todos", None)
        if callable(probe) and probe():
            return True
    return False


async def execute(request: ExecutionRequest, stdout: TextIO | None) -> RunOutcome:
    """Run the Expert: a new Job, a new Run of ``job_id``, or a continued Job."""
    return await JobSession(request, stdout).execute()
