"""The ``ingest`` flow: workspaces and event files into the Parquet dataset, and a task
the other flows use to ingest what a run left behind.

The runtime does not know whose run it is; the folders do. A root of per-user workspaces
(``workspaces/<user>/perstack/jobs``) and the captures folder (``captures/<user>-<id>/
events.jsonl``, which alone holds the launcher's events) are ingested user by user, each
with the user its folder names, so that runs that only the scheduled ingest sees
(cancelled, crashed) are labelled like the others.
"""

from __future__ import annotations

import asyncio
import logging
import stat
from collections.abc import Iterable
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import acreate_table_artifact
from prefect.cache_policies import NO_CACHE

from analytics import IngestReport, ingest
from flows.alerts import notify_failure
from flows.defaults import captures_root, dataset_root, workspaces_root
from flows.execution import CAPTURE_EVENTS, ExecutionResult, capture_owner
from flows.launcher import InvalidSpecError, user_workspace
from flows.run_context import tag_flow_run

logger = logging.getLogger(__name__)

# What to ingest under which user (None: no user).
ByUser = dict[str | None, list[Path]]


@task(name="ingest", cache_policy=NO_CACHE, persist_result=False)
async def ingest_paths(
    paths: list[Path], dataset: Path | None = None, user: str | None = None
) -> IngestReport:
    """Ingest ``paths`` into ``dataset`` (default: $PERSTACK_AUDIT_DATA, else
    ./.data/audit), all as ``user``'s, or, without one, roots of per-user folders user
    by user. Runs on a worker thread: ingestion is blocking file work."""
    logger = get_run_logger()
    root = dataset_root(dataset)
    groups = await asyncio.to_thread(paths_by_user, paths, user, captures_root())
    if not any(groups.values()):
        logger.info("nothing to ingest")
        return IngestReport()
    report = await asyncio.to_thread(ingest_by_user, groups, root)
    logger.info(
        "ingested %d files (%d unchanged) %s into %s in %.2f s: %s",
        report.files_read,
        report.files_skipped,
        _whose(groups),
        root,
        report.seconds,
        report.rows,
    )
    for note in report.notes:
        logger.info(note)
    for skipped in report.skipped:
        logger.warning("skipped %s", skipped)
    return report


def _whose(groups: ByUser) -> str:
    users = sorted(u for u, paths in groups.items() if u is not None and paths)
    if not users:
        return "with no user"
    return f"of {users[0]}" if len(users) == 1 else f"of {len(users)} users"


def paths_by_user(paths: Iterable[Path], user: str | None, captures: Path | None = None) -> ByUser:
    """Which user each path is ingested as. With ``user``, everything is theirs. Without,
    ``captures`` (the captures folder) and a folder of users' workspaces are split by the
    user each of their folders names, and only the traces are read: a capture's
    ``events.jsonl``, a workspace's ``perstack/jobs`` (not through a link). Anything else
    goes as it is, with no user."""
    if user is not None:
        return {user: list(paths)}
    found: ByUser = {}
    for path in paths:
        for owner, part in _split(path, captures):
            found.setdefault(owner, []).append(part)
    return found


def _split(path: Path, captures: Path | None) -> list[tuple[str | None, Path]]:
    if not _is_real_folder(path) or (path / "perstack").exists():
        return [(None, path)]  # a file, a stream, one workspace
    # Which kind of folder it is comes from where it is, never from what is in it: an
    # Expert controls what its workspace holds, even names like a capture's.
    is_captures = captures is not None and path.resolve() == captures.resolve()
    trace_of = _capture_of if is_captures else _workspace_of
    traces = [(child, trace_of(child)) for child in sorted(path.iterdir())]
    if not is_captures and all(trace is None for _, trace in traces):
        return [(None, path)]  # not a folder of users' workspaces
    found: list[tuple[str | None, Path]] = []
    for child, trace in traces:
        if trace is None:
            logger.info("%s: not a user's workspace or capture; not ingested", child)
        else:
            found.append(trace)
    return found


def _capture_of(folder: Path) -> tuple[str, Path] | None:
    """(user, captured stream) of a capture folder (``<user>-<id>``); else None."""
    owner = capture_owner(folder.name)
    if owner is None or not _valid_user(owner) or not _is_real_folder(folder):
        return None
    events = folder / CAPTURE_EVENTS
    return (owner, events) if events.is_file() and not events.is_symlink() else None


def _workspace_of(folder: Path) -> tuple[str, Path] | None:
    """(user, job folders) of a user's workspace that has run; else None."""
    if not _valid_user(folder.name) or not _is_real_folder(folder):
        return None
    jobs = _real_folder(folder, "perstack", "jobs")
    return (folder.name, jobs) if jobs is not None else None


def _valid_user(name: str) -> bool:
    try:
        user_workspace(Path("/"), name)
    except InvalidSpecError:
        return False
    return True


def _is_real_folder(path: Path) -> bool:
    try:
        return stat.S_ISDIR(path.lstat().st_mode)
    except OSError:
        return False


def ingest_by_user(groups: ByUser, root: Path) -> IngestReport:
    """One ingest per user (the rows' label is per ingest), users first: the same event
    reached both labelled and not lands labelled. The catalog is refreshed once, at the
    end."""
    order = sorted(groups, key=lambda user: (user is None, user or ""))
    todo = [(user, groups[user]) for user in order if groups[user]]
    total = IngestReport()
    for index, (user, paths) in enumerate(todo):
        report = ingest(paths, root, user=user, refresh=index == len(todo) - 1)
        total.files_read += report.files_read
        total.files_skipped += report.files_skipped
        total.bytes_read += report.bytes_read
        total.seconds += report.seconds
        total.skipped += report.skipped
        total.notes += report.notes
        for table, count in report.rows.items():
            total.add(table, count)
    return total


def trace_paths(result: ExecutionResult) -> list[Path]:
    """What one execution left to audit: its job folder in the workspace, and the captured
    stream, which alone holds the launcher's events (container status, proxy decisions,
    an outcome decided outside the container). The same event in both lands once.

    The Expert controls its workspace: a job folder reached through a link (to another
    user's jobs, say) is left out, so that no one's trace is ingested under this user.
    """
    paths = []
    job_folder = _real_folder(Path(result.workspace), "perstack", "jobs", result.job_id)
    if job_folder is not None:
        paths.append(job_folder)
    if result.events_path and Path(result.events_path).exists():
        paths.append(Path(result.events_path))
    return paths


def _real_folder(top: Path, *parts: str) -> Path | None:
    """``top/parts...`` when each part is a folder and none is a link; else None."""
    path = top
    for part in parts:
        path = path / part
        try:
            mode = path.lstat().st_mode
        except OSError:
            return None
        if not stat.S_ISDIR(mode):
            if stat.S_ISLNK(mode):
                logger.warning("%s is a link; the run's job folder is not ingested", path)
            return None
    return path


async def ingest_after_run(paths: list[Path], dataset: Path | None, user: str) -> None:
    """Ingest right after executions. A failure here (the catalog busy, a bad file) is
    logged, never turned into a failed execution: the scheduled ingest picks it up."""
    try:
        await ingest_paths(paths, dataset, user)
    except Exception as error:  # noqa: BLE001 - the run's own outcome must stand
        get_run_logger().error(
            "ingesting the run's trace failed (%s: %s); the next ingest will pick it up",
            type(error).__name__,
            error,
        )


def default_paths() -> list[Path]:
    """The workspaces and captures of $PERSTACK_DATA (those that exist)."""
    return [p for p in (workspaces_root(), captures_root()) if p.is_dir()]


@flow(name="ingest", on_failure=[notify_failure], persist_result=False)
async def ingest_flow(
    paths: list[Path] | None = None, dataset: Path | None = None, user: str | None = None
) -> dict[str, int]:
    """Ingest workspaces (folders with perstack/jobs/...) and JSONL event files (default:
    the workspaces and captures of $PERSTACK_DATA, user by user); returns the rows
    written per table, also published as a table artifact."""
    await tag_flow_run()
    report = await ingest_paths(default_paths() if paths is None else paths, dataset, user)
    await acreate_table_artifact(
        key="ingest",
        table=[{"table": t, "rows": n} for t, n in sorted(report.rows.items())],
        description=f"{report.files_read} files read, {report.files_skipped} unchanged",
    )
    return dict(report.rows)
