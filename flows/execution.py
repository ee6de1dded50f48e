"""One execution, as plain async code: prepare the user's workspace, run `perstack run` in
a hardened container (or as a local process when no engine is there), follow its events,
and say how it ended. No Prefect here; the flows wrap this.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import docker.errors
from pydantic import BaseModel

from flows.errors import InfrastructureError
from flows.launcher import (
    EngineUnavailableError,
    ImageMissingError,
    InvalidSpecError,
    LauncherError,
    LaunchResult,
    LaunchSpec,
    Limits,
    NetworkPolicy,
    Outcome,
    connect,
    engine_unavailable_reason,
    launch_async,
    user_workspace,
)
from flows.process import ProcessResult, run_process
from flows.tally import Tally
from runtime.checkpoint import Usage
from runtime.ids import new_id

logger = logging.getLogger(__name__)

Mode = Literal["auto", "container", "process"]
RunMode = Literal["container", "process"]
EventCallback = Callable[[dict[str, Any]], None]

# The reference's run timeout is 300 s; an execution (start-up, skills, the run, the last
# checkpoint) gets a margin on top by default.
DEFAULT_TIMEOUT_SECONDS = 360.0
# After the wall clock the runtime gets SIGTERM and this long to write its last checkpoint.
GRACE_SECONDS = 10.0
# The container's own wall clock fires first; this backstop only matters if the engine
# stops answering, and it leaves the launcher time to stop and remove the container.
BACKSTOP_MARGIN_SECONDS = 30.0
# Linux caps one command-line argument at 32 pages (MAX_ARG_STRLEN), the NUL included.
MAX_QUERY_BYTES = 32 * 4096 - 1
# The files an execution is given besides its workspace: the scripted model's replies and
# a query too large for the command line (`--query-file`). They go in a folder of the
# capture dir that the container reads at /input, read-only (LaunchSpec.inputs), never in
# the workspace, which the Expert controls.
INPUTS_FOLDER = "input"
SCRIPT_INPUT = "script.json"
QUERY_INPUT = "query.txt"
INPUTS_IN_CONTAINER = "/input"
# Each execution's capture folder is named after its user and a fresh id (runtime.ids: a
# letter, then 23 lowercase base-36 characters), so that its user can be read back.
_CAPTURE_NAME = re.compile(r"^(?P<user>.+)-[a-z][0-9a-z]{23}$")
# The captured stdout (the launcher's and the process runner's name for it).
CAPTURE_EVENTS = "events.jsonl"
ANTHROPIC_DOMAIN = "api.anthropic.com"
DEFAULT_IMAGE = "perstack-runtime:latest"
# The runtime image's non-root user (Dockerfile: PERSTACK_UID); seeded files are handed
# to it so that the Expert can change them.
CONTAINER_USER = "10001:10001"


class ExecutionResult(BaseModel):
    """How one execution ended; what the flows return and the artifacts show."""

    expert: str
    user: str
    mode: RunMode
    outcome: str  # an ``Outcome`` value
    reason: str
    exit_code: int | None
    stop: str | None  # the coordinator's last stop event (completeRun, stopRunByError, ...)
    final_text: str | None
    error: str | None
    usage: Usage
    steps: int
    events: int
    job_id: str
    workspace: str
    events_path: str
    stderr_path: str
    started_ms: int
    duration_ms: float  # the whole execution as the caller saw it
    run_ms: float  # the runtime's own time: container (or process) start to exit
    # Why a local process ran although a container was wanted (mode auto); None otherwise.
    fallback: str | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == Outcome.COMPLETED.value


@dataclass(frozen=True)
class ExecutionPlan:
    """What to run and where. ``config`` is used by local processes; a container runs the
    configuration baked into ``image``. ``seed`` is copied into a workspace that does not
    exist yet. ``provider`` None means the configuration's; "scripted" needs ``script``."""

    expert: str
    query: str
    user: str
    workspaces: Path
    captures: Path
    config: Path | None = None
    seed: Path | None = None
    mode: Mode = "auto"
    provider: str | None = None
    script: Path | None = None
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    image: str = DEFAULT_IMAGE
    labels: Mapping[str, str] = field(default_factory=dict)
    # Settings for the runtime (e.g. PERSTACK_RETRY_BASE_DELAY_MS); no secrets here, they
    # would be logged as parameters. ANTHROPIC_API_KEY is taken from the host's environment.
    env: Mapping[str, str] = field(default_factory=dict)
    extra_domains: tuple[str, ...] = ()
    # Where a local process is recorded while it runs, for a clean-up hook that runs in
    # another process (flows.process_records); None: not recorded.
    process_records: Path | None = None

    def workspace(self) -> Path:
        return user_workspace(self.workspaces, self.user)


def choose_mode(requested: Mode, image: str = DEFAULT_IMAGE) -> tuple[RunMode, str | None]:
    """The mode to run in, and why a container was not chosen (None when it was): auto
    means a container when an engine answers and has ``image``."""
    if requested != "auto":
        return requested, None
    reason = engine_unavailable_reason()
    if reason is not None:
        return "process", reason
    client = connect()
    try:
        client.images.get(image)
    except docker.errors.ImageNotFound:
        return "process", f"image {image!r} is not built (run .ci/setup-docker.sh)"
    except docker.errors.APIError as error:
        return "process", f"the engine could not inspect {image!r}: {error}"
    finally:
        client.close()
    return "container", None


def prepare_workspace(plan: ExecutionPlan, mode: RunMode) -> Path:
    """The user's workspace, seeded on first use. Nothing else is ever written into it:
    the Expert controls it, and a link or FIFO it left there would redirect or block the
    write. For a container, the seed belongs to the container's user (when we may)."""
    workspace = plan.workspace()
    if not workspace.exists() and plan.seed is not None:
        shutil.copytree(plan.seed, workspace, symlinks=True)
        if mode == "container" and os.geteuid() == 0:
            _hand_to_container_user(workspace)
    workspace.mkdir(parents=True, exist_ok=True)
    return workspace.resolve()


def write_inputs(plan: ExecutionPlan, capture: Path) -> Path | None:
    """The execution's input files in a fresh folder of its capture dir (None when it
    needs none): readable by the container's user, written by no one else."""
    script = plan.script if plan.provider == "scripted" else None
    by_file = query_by_file(plan.query)
    if script is None and not by_file:
        return None
    folder = capture / INPUTS_FOLDER
    folder.mkdir(parents=True)
    if script is not None:
        shutil.copyfile(script, folder / SCRIPT_INPUT)
    if by_file:
        (folder / QUERY_INPUT).write_text(plan.query, encoding="utf-8")
    for item in folder.iterdir():
        item.chmod(0o644)
    folder.chmod(0o755)
    return folder


def capture_folder(captures: Path, user: str) -> Path:
    return captures / f"{user}-{new_id()}"


def capture_owner(name: str) -> str | None:
    """The user a capture folder's name says (None: not a capture folder's name)."""
    found = _CAPTURE_NAME.match(name)
    return found["user"] if found else None


def _hand_to_container_user(path: Path) -> None:
    uid, _, gid = CONTAINER_USER.partition(":")
    for item in [path, *(path.rglob("*") if path.is_dir() else ())]:
        os.chown(item, int(uid), int(gid), follow_symlinks=False)


def query_by_file(query: str) -> bool:
    """Whether ``query`` is too large for a command-line argument and goes by file."""
    return len(query.encode()) > MAX_QUERY_BYTES


def runtime_args(plan: ExecutionPlan, script_path: str | None) -> tuple[str, ...]:
    args: tuple[str, ...] = ()
    if plan.provider is not None:
        args += ("--provider", plan.provider)
    if plan.provider == "scripted":
        if script_path is None:
            raise InvalidSpecError("the scripted provider needs a script file")
        args += ("--script", script_path)
    return args


async def execute(
    plan: ExecutionPlan,
    mode: RunMode,
    on_event: EventCallback | None = None,
) -> ExecutionResult:
    """Run ``plan`` once. Raises ``InfrastructureError`` when it could not run at all
    (worth retrying); any way the run itself ends is a result. Cancelling the awaiting
    task stops the container or process and removes the container."""
    workspace = await asyncio.to_thread(prepare_workspace, plan, mode)
    capture = capture_folder(plan.captures, plan.user)
    inputs = await asyncio.to_thread(write_inputs, plan, capture)
    tally = Tally(plan.expert)

    def follow(event: dict[str, Any]) -> None:
        tally.add(event)
        if on_event is not None:
            on_event(event)

    began = time.monotonic()
    started_ms = int(time.time() * 1000)
    if mode == "container":
        launched = await _in_container(plan, workspace, capture, inputs, follow)
        run = _from_launch(launched)
    else:
        run = await _as_process(plan, workspace, capture, inputs, follow)
    reason = run.reason
    if run.outcome.value != "completed" and tally.error is None:
        # Nothing in the events says why (the runtime refused to start, say): its stderr does.
        said = _stderr_tail(Path(run.stderr_path))
        reason = f"{reason}: {said}" if said else reason
    return ExecutionResult(
        expert=plan.expert,
        user=plan.user,
        mode=mode,
        outcome=run.outcome.value,
        reason=reason,
        exit_code=run.exit_code,
        stop=tally.stop,
        final_text=tally.final_text,
        error=tally.error,
        usage=tally.usage(),
        steps=tally.steps,
        events=tally.events,
        job_id=tally.job_id or run.job_id,
        workspace=str(workspace),
        events_path=str(run.events_path),
        stderr_path=str(run.stderr_path),
        started_ms=started_ms,
        duration_ms=round((time.monotonic() - began) * 1000, 1),
        run_ms=run.run_ms,
    )


# How much of the end of a failed run's stderr goes into its reason.
STDERR_TAIL_BYTES = 2048


def _stderr_tail(path: Path) -> str:
    """The last line a failed runtime wrote on stderr (its own error message)."""
    try:
        with path.open("rb") as handle:
            handle.seek(max(0, path.stat().st_size - STDERR_TAIL_BYTES))
            lines = handle.read().decode("utf-8", errors="replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1].strip() if lines else ""


def _from_launch(result: LaunchResult) -> ProcessResult:
    return ProcessResult(
        outcome=result.outcome,
        reason=result.reason,
        exit_code=result.exit_code,
        job_id=result.job_id,
        events_path=result.captured.events,
        stderr_path=result.captured.stderr,
        run_ms=result.timings.run_ms,
    )


async def _in_container(
    plan: ExecutionPlan,
    workspace: Path,
    capture: Path,
    inputs: Path | None,
    follow: EventCallback,
) -> LaunchResult:
    anthropic = plan.provider != "scripted"
    domains = [ANTHROPIC_DOMAIN, *plan.extra_domains] if anthropic else list(plan.extra_domains)
    by_file = query_by_file(plan.query)
    query_args = ("--query-file", f"{INPUTS_IN_CONTAINER}/{QUERY_INPUT}") if by_file else ()
    spec = LaunchSpec.for_expert(
        plan.expert,
        None if by_file else plan.query,
        workspace=workspace,
        capture_dir=capture,
        inputs=inputs,
        runtime_args=runtime_args(plan, f"{INPUTS_IN_CONTAINER}/{SCRIPT_INPUT}") + query_args,
        image=plan.image,
        env=dict(plan.env),
        env_from_host=("ANTHROPIC_API_KEY",) if anthropic else (),
        limits=Limits(wall_clock_seconds=plan.timeout_seconds, grace_seconds=GRACE_SECONDS),
        network=NetworkPolicy.allow(domains) if domains else NetworkPolicy.none(),
        labels=dict(plan.labels),
        user=CONTAINER_USER,
    )
    backstop = plan.timeout_seconds + GRACE_SECONDS + BACKSTOP_MARGIN_SECONDS
    try:
        async with asyncio.timeout(backstop):
            return await launch_async(spec, on_event=follow)
    except (ImageMissingError, InvalidSpecError):
        raise  # retrying cannot help: the setup must change
    except (EngineUnavailableError, LauncherError) as error:
        raise InfrastructureError(f"the container could not be run: {error}") from error
    except TimeoutError as error:
        raise InfrastructureError(
            f"the engine did not end the container within {backstop:.0f} s"
        ) from error


def process_args(plan: ExecutionPlan, workspace: Path, inputs: Path | None) -> list[str]:
    """`perstack` arguments of a local run; paths absolute, as the process may run
    anywhere."""
    script = str(plan.script.resolve()) if plan.script is not None else None
    if inputs is not None and query_by_file(plan.query):
        query = ["--query-file", str((inputs / QUERY_INPUT).resolve())]
    else:
        query = [plan.query]
    args = ["run", plan.expert, *query, "--workspace", str(workspace)]
    if plan.config is not None:
        args += ["--config", str(plan.config.resolve())]
    return args + list(runtime_args(plan, script))


async def _as_process(
    plan: ExecutionPlan,
    workspace: Path,
    capture: Path,
    inputs: Path | None,
    follow: EventCallback,
) -> ProcessResult:
    try:
        return await run_process(
            process_args(plan, workspace, inputs),
            capture=capture,
            on_event=follow,
            timeout_seconds=plan.timeout_seconds,
            grace_seconds=GRACE_SECONDS,
            env={**os.environ, **plan.env},
            job_id=new_id(),
            records=plan.process_records,
        )
    except OSError as error:
        raise InfrastructureError(f"the runtime process could not start: {error}") from error
