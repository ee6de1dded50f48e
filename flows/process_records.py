"""Records of the local runtime processes under way, so that a clean-up hook that runs in
another process can find and end them: Prefect's workers run ``on_crashed`` and
``on_cancellation`` hooks in a process of their own, where nothing of the flow run's
memory is.

One file per process, ``<folder>/<job id>.json``, written when it starts and removed when
it has ended: its pid (which is also its process group: it leads a session of its own)
and its start time in clock ticks since boot, which tells it apart from a later process
that was given the same pid.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import time
from pathlib import Path

logger = logging.getLogger(__name__)

# How often a hook looks whether a process it asked to stop has stopped.
POLL_SECONDS = 0.1


def record(folder: Path, job_id: str, pid: int) -> Path | None:
    """Write the record of ``pid``; None when the process is already gone."""
    started = start_ticks(pid)
    if started is None:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{job_id}.json"
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps({"pid": pid, "started": started, "job_id": job_id}))
    partial.replace(path)
    return path


def forget(path: Path | None) -> None:
    """Remove a record (and its folder, once empty)."""
    if path is None:
        return
    path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        path.parent.rmdir()


def end_recorded(folder: Path, grace_seconds: float) -> int:
    """End every recorded process under ``folder`` that still runs: SIGTERM to its group,
    ``grace_seconds`` for its last checkpoint, then SIGKILL to the group and to every
    process it started (MCP servers and commands lead sessions of their own). Returns how
    many were still running."""
    live = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else ():
        pid = _live_pid(path)
        if pid is not None:
            live.append(pid)
            _signal_group(pid, signal.SIGTERM)
        else:
            forget(path)
    deadline = time.monotonic() + grace_seconds
    while any(start_ticks(pid) is not None for pid in live) and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
    for pid in live:
        if start_ticks(pid) is not None:
            for child in descendants(pid):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(child, signal.SIGKILL)
            _signal_group(pid, signal.SIGKILL)
    for path in folder.glob("*.json") if folder.is_dir() else ():
        forget(path)
    if live:
        logger.warning("ended %d local runtime processes left by %s", len(live), folder.name)
    return len(live)


def _live_pid(path: Path) -> int | None:
    """The recorded pid when that very process still runs."""
    try:
        found = json.loads(path.read_text())
        pid, started = int(found["pid"]), int(found["started"])
    except (OSError, ValueError, KeyError, TypeError):
        logger.warning("%s: not a process record; ignored", path)
        return None
    return pid if start_ticks(pid) == started else None


def start_ticks(pid: int) -> int | None:
    """When ``pid`` started (clock ticks since boot); None if it is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # the name may hold spaces and ')'
    if fields[0] == "Z":
        return None
    return int(fields[19])  # field 22 of proc(5); the list starts at field 3


def descendants(pid: int) -> list[int]:
    """Every living process below ``pid``, found through /proc's parent pids."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)
