"""The `perstack` command: `run` (JSON events on stdout) and `start` (the same run, shown
for a person).

Exit codes of `run` and `start`:
  0    the run completed
  1    the run stopped on an error (LLM, skill, storage); the last checkpoint says why
  2    bad usage or configuration; nothing was run
  3    the run reached maxSteps; resume it with a higher --max-steps
  4    the run is waiting for an answer to an interactive tool (see --continue -i)
  130  interrupted by SIGINT, 143 by SIGTERM; a final checkpoint was written
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path
from typing import TextIO

from runtime.config import find_config, load_config, load_env_files
from runtime.errors import ConfigError, PerstackError
from runtime.executor import ExecutionRequest, execute
from runtime.hardening import make_undumpable
from runtime.pid1 import become_init_if_pid1
from runtime.signals import until_signalled
from runtime.storage import WorkspaceStore
from runtime.version import RUNTIME_VERSION

logger = logging.getLogger("runtime.cli")

EXIT_COMPLETED = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_MAX_STEPS = 3
EXIT_WAITING_FOR_INPUT = 4
# How many job ids an unknown --continue-job lists, and checkpoint ids an unknown
# --resume-from.
JOBS_LISTED = 5
CHECKPOINTS_LISTED = 10
_EXIT_BY_STATUS = {
    "completed": EXIT_COMPLETED,
    "stoppedByError": EXIT_ERROR,
    "stoppedByExceededMaxSteps": EXIT_MAX_STEPS,
    "stoppedByInteractiveTool": EXIT_WAITING_FOR_INPUT,
    "stoppedByDelegate": EXIT_WAITING_FOR_INPUT,
}


def _whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def _positive_int(text: str) -> int:
    value = _whole_number(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    value = _whole_number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("expert", help="the Expert's key in perstack.toml")
    parser.add_argument("query", nargs="?", help="what to ask the Expert (or give --query-file)")
    parser.add_argument(
        "--query-file",
        metavar="PATH",
        help="read the query from this UTF-8 file ('-': standard input), for queries too "
        "large for a command-line argument",
    )
    parser.add_argument("--config", help="path to perstack.toml (default: nearest one)")
    parser.add_argument(
        "--workspace", help="folder the Expert works in and checkpoints go to (default: .)"
    )
    parser.add_argument(
        "--provider",
        help="LLM provider: anthropic or scripted (default: [provider] providerName in "
        "perstack.toml, else anthropic)",
    )
    parser.add_argument(
        "--model", help="model name (default: `model` in perstack.toml, else claude-sonnet-4-5)"
    )
    parser.add_argument("--script", help="script file for the scripted provider")
    parser.add_argument(
        "--max-steps",
        type=_positive_int,
        help="steps before stopping, counted over the whole job (default: maxSteps in "
        "perstack.toml, else 100)",
    )
    parser.add_argument(
        "--max-retries",
        type=_non_negative_int,
        help="retries of a failed generation (default: maxRetries in perstack.toml, else 5)",
    )
    parser.add_argument(
        "--timeout",
        type=_positive_int,
        help="per-generation timeout, ms (default: timeout in perstack.toml, else 300000)",
    )
    parser.add_argument("--job-id", help="id for a new job (default: a new one)")
    parser.add_argument(
        "--continue",
        dest="continue_latest",
        action="store_true",
        help="continue the latest job with a new run",
    )
    parser.add_argument(
        "--continue-job", metavar="JOB_ID", help="continue this job (its id or a unique prefix)"
    )
    parser.add_argument(
        "--resume-from",
        metavar="CHECKPOINT_ID",
        help="resume from this checkpoint of the job (its id or a unique prefix; requires "
        "--continue-job)",
    )
    parser.add_argument(
        "-i",
        "--interactive-tool-call-result",
        dest="interactive",
        action="store_true",
        help="the query is the answer to the interactive tool call the continued job is "
        "waiting for (exit code 4 said so); with --continue or --continue-job",
    )
    parser.add_argument(
        "--env-path", action="append", default=[], help="extra env file (repeatable)"
    )
    parser.add_argument(
        "--frozen",
        action="store_true",
        help="require a perstack.lock built from this config (error instead of a warning)",
    )
    parser.add_argument("--verbose", action="store_true", help="debug logs on stderr")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="perstack",
        description="Run Perstack Experts.",
        epilog=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"perstack {RUNTIME_VERSION}")
    commands = parser.add_subparsers(dest="command", required=True)
    exit_codes = __doc__.split("\n\n", 1)[1] if __doc__ else None
    run = commands.add_parser(
        "run",
        help="run an Expert; JSON events on stdout",
        epilog=exit_codes,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_run_arguments(run)
    start = commands.add_parser(
        "start",
        help="run an Expert and show it live for a person",
        epilog=exit_codes,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_run_arguments(start)
    install = commands.add_parser(
        "install", help="start every skill once and write perstack.lock next to the config"
    )
    install.add_argument("--config", help="path to perstack.toml (default: nearest one)")
    install.add_argument(
        "--env-path", action="append", default=[], help="extra env file (repeatable)"
    )
    install.add_argument("--verbose", action="store_true", help="debug logs on stderr")
    from runtime.log import add_log_parser  # `perstack log`: runtime/log/

    add_log_parser(commands)
    return parser


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not verbose:
        for noisy in ("httpx", "httpcore", "anthropic"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


def _continued_job(args: argparse.Namespace, workspace: Path) -> str | None:
    if args.resume_from and not args.continue_job:
        raise ConfigError("--resume-from needs --continue-job JOB_ID")
    if args.interactive and not (args.continue_latest or args.continue_job):
        raise ConfigError("-i answers a waiting job: add --continue or --continue-job JOB_ID")
    if args.job_id and (args.continue_latest or args.continue_job):
        raise ConfigError("--job-id names a new job; it cannot be combined with --continue")
    if args.continue_job:
        return _job_named(str(args.continue_job), workspace)
    if not args.continue_latest:
        return None
    latest = WorkspaceStore(workspace).latest_job_id()
    if latest is None:
        raise ConfigError(f"--continue: there is no job in {workspace} to continue")
    return latest


def _job_named(wanted: str, workspace: Path) -> str:
    """The job ``--continue-job`` names: its id, or a prefix that only one job id starts with."""
    store = WorkspaceStore(workspace)
    jobs = store.job_ids()
    if wanted in jobs:
        return wanted
    matches = [job for job in jobs if job.startswith(wanted)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise ConfigError(
            f"--continue-job {wanted}: several jobs start with it ({', '.join(matches)}); "
            "give more of the id"
        )
    known = ", ".join(jobs[:JOBS_LISTED]) + (", …" if len(jobs) > JOBS_LISTED else "")
    raise ConfigError(
        f"--continue-job {wanted}: no such job in {store.jobs_dir}"
        + (f"; its jobs, newest first: {known}" if jobs else " (it holds no jobs)")
        + "; check --workspace"
    )


def _query(args: argparse.Namespace) -> str:
    if (args.query is None) == (args.query_file is None):
        raise ConfigError("give the query either as an argument or with --query-file, once")
    if args.query_file is None:
        return str(args.query)
    try:
        if args.query_file == "-":
            return sys.stdin.read()
        return Path(args.query_file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"--query-file {args.query_file}: cannot read it ({error})") from None


def _workspace(given: str | None) -> Path:
    """The workspace folder, checked; a missing one is created only by ``_create_workspace``,
    once the run is sure to start (a rejected run leaves no folder behind)."""
    workspace = Path(given or ".").resolve()
    if workspace.exists() and not workspace.is_dir():
        raise ConfigError(f"--workspace {workspace} is a file; give a folder")
    # A new folder is made, but not a whole new path: that is more often a typo.
    if not workspace.is_dir() and not workspace.parent.is_dir():
        raise ConfigError(
            f"--workspace {workspace}: its parent folder {workspace.parent} does not exist; "
            "check the path, or create it first"
        )
    return workspace


def _create_workspace(workspace: Path) -> None:
    if workspace.is_dir():
        return
    try:
        workspace.mkdir()
    except OSError as error:
        raise ConfigError(f"--workspace {workspace} cannot be created: {error.strerror}") from None
    logger.warning("created the workspace folder %s", workspace)


def _checkpoint_named(wanted: str, job_id: str, workspace: Path) -> str:
    """The checkpoint ``--resume-from`` names in the job: its id, or a prefix that only one
    of the job's checkpoint ids starts with (the ids are the checkpoint files' names)."""
    folder = WorkspaceStore(workspace).job_dir(job_id) / "checkpoints"
    files = folder.glob("*.json") if folder.is_dir() else iter(())
    newest_first = sorted(files, key=_mtime, reverse=True)
    ids = [p.stem for p in newest_first if not p.name.startswith(".")]
    if wanted in ids:
        return wanted
    matches = [i for i in ids if i.startswith(wanted)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise ConfigError(
            f"--resume-from {wanted}: several checkpoints of job {job_id} start with it "
            f"({', '.join(matches)}); give more of the id"
        )
    known = ", ".join(ids[:CHECKPOINTS_LISTED]) + (", …" if len(ids) > CHECKPOINTS_LISTED else "")
    raise ConfigError(
        f"--resume-from {wanted}: job {job_id} has no such checkpoint"
        + (f"; its checkpoints, newest first: {known}" if ids else " (it has none)")
        + f"; `perstack log --workspace {workspace} --job {job_id} --json` lists them "
        "with their steps"
    )


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _request(args: argparse.Namespace) -> ExecutionRequest:
    loaded = load_config(find_config(args.config))
    load_env_files(loaded, args.env_path)
    workspace = _workspace(args.workspace)
    continue_job = _continued_job(args, workspace)
    if args.resume_from and continue_job:
        args.resume_from = _checkpoint_named(str(args.resume_from), continue_job, workspace)
    return ExecutionRequest(
        loaded=loaded,
        expert_key=args.expert,
        query=_query(args),
        workspace=workspace,
        provider=args.provider,
        model=args.model,
        script=args.script,
        max_steps=args.max_steps,
        max_retries=args.max_retries,
        timeout_ms=args.timeout,
        job_id=args.job_id,
        continue_job=continue_job,
        resume_from=args.resume_from,
        interactive_answer=args.interactive,
        frozen_lock=args.frozen,
        verbose=args.verbose,
        before_first_write=lambda: _create_workspace(workspace),
    )


async def _install(args: argparse.Namespace) -> int:
    from runtime.install import install_until_signalled

    loaded = load_config(find_config(args.config))
    load_env_files(loaded, args.env_path)
    return await install_until_signalled(loaded, progress=print)


async def _run(args: argparse.Namespace) -> int:
    request = _request(args)
    stdout: TextIO | None = sys.stdout
    if args.command == "start":
        from runtime.display import HumanDisplay

        request.listeners.append(HumanDisplay(sys.stdout))
        stdout = None
    outcome, signum = await until_signalled(execute(request, stdout), "run")
    if outcome is None:
        assert signum is not None
        return 128 + signum
    return _EXIT_BY_STATUS.get(outcome.status, EXIT_ERROR)


def main(argv: list[str] | None = None) -> int:
    # As a container's PID 1, first split off the init that reaps and forwards signals.
    become_init_if_pid1()
    args = build_parser().parse_args(argv)
    if args.command == "log":
        from runtime.log import run_log_command

        return run_log_command(args)
    _configure_logging(args.verbose)
    # Before any secret is used: children must not read it from /proc/<our pid>/environ.
    make_undumpable()
    try:
        return asyncio.run(_install(args) if args.command == "install" else _run(args))
    except PerstackError as error:
        sys.stderr.write(f"perstack: {error}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
