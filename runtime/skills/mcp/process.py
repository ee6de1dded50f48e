"""A stdio MCP server as an operating-system process: spawned in a session (and so a
process group) of its own, its stderr relayed line by line, and the whole group stopped on
close: stdin closed, then SIGTERM to the group, then SIGKILL after a bounded grace. Wrapper
scripts and anything else the server started go with it; a child that starts a new
session of its own escapes by design.

TODO(#3): a runtime killed with SIGKILL leaves its servers running (no PR_SET_PDEATHSIG);
in production the container's removal ends them, locally they are orphaned.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable

from runtime.skills.mcp.timeouts import McpTimeouts

logger = logging.getLogger(__name__)

STDERR_TAIL_LINES = 20  # the last lines of stderr kept for error messages
# A stderr "line" longer than this becomes an event of its own: memory stays bounded.
MAX_STDERR_LINE_BYTES = 64 * 1024
_READ_CHUNK = 64 * 1024
_GROUP_POLL_S = 0.01  # how often we look whether the group is gone while stopping it


class ServerProcess:
    """One spawned server. ``on_stderr`` gets each stderr line (without its newline)."""

    def __init__(self, process: asyncio.subprocess.Process, on_stderr: Callable[[str], None]):
        self._process = process
        self.pid = process.pid
        self.pgid = process.pid  # start_new_session makes the server its group's leader
        self._on_stderr = on_stderr
        self._tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)
        self._stderr_task = asyncio.create_task(self._relay_stderr(), name=f"stderr-{self.pid}")
        self._stopped = False

    @classmethod
    async def spawn(
        cls,
        argv: list[str],
        *,
        env: dict[str, str],
        cwd: str | None,
        on_stderr: Callable[[str], None],
    ) -> ServerProcess:
        """Start ``argv``; raises OSError when it cannot be started at all."""
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            cwd=cwd,
            start_new_session=True,
            limit=_READ_CHUNK,
        )
        logger.debug("spawned MCP server pid %d: %s", process.pid, argv)
        return cls(process, on_stderr)

    @property
    def stdin(self) -> asyncio.StreamWriter:
        assert self._process.stdin is not None
        return self._process.stdin

    @property
    def stdout(self) -> asyncio.StreamReader:
        assert self._process.stdout is not None
        return self._process.stdout

    @property
    def returncode(self) -> int | None:
        return self._process.returncode

    def stderr_tail(self) -> list[str]:
        return list(self._tail)

    async def settle(self, timeout_s: float) -> None:
        """Wait (bounded) for the process to exit and its stderr to be read to the end:
        used after a failure so the error can quote the server's last words."""
        began = time.monotonic()
        await self._wait_exit(timeout_s)
        remaining = max(timeout_s - (time.monotonic() - began), 0.01)
        await asyncio.wait({self._stderr_task}, timeout=remaining)

    async def _relay_stderr(self) -> None:
        stream = self._process.stderr
        assert stream is not None
        pending = b""
        while True:
            chunk = await stream.read(_READ_CHUNK)
            if not chunk:
                break
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                self._emit_line(line)
            if len(pending) > MAX_STDERR_LINE_BYTES:  # no newline in sight: cut it here
                self._emit_line(pending[:MAX_STDERR_LINE_BYTES])
                pending = b""
        if pending:
            self._emit_line(pending)

    def _emit_line(self, raw: bytes) -> None:
        line = raw.decode("utf-8", errors="replace").rstrip("\r")
        self._tail.append(line)
        try:
            self._on_stderr(line)
        except Exception:  # a listener's fault must not stop the relay (and block the pipe)
            logger.exception("stderr listener failed for MCP server pid %d", self.pid)

    async def stop(self, timeouts: McpTimeouts) -> None:
        """Stop the whole process group, within a bounded time. Idempotent, never raises."""
        if self._stopped:
            return
        self._stopped = True
        began = time.monotonic()
        with contextlib.suppress(OSError, RuntimeError):
            self.stdin.close()
        if not await self._wait_exit(timeouts.stdin_close_grace_s):
            logger.debug("MCP server pid %d still running after stdin closed", self.pid)
        # Even when the leader is gone, a wrapper's children may be left in the group.
        if _group_alive(self.pgid):
            _signal_group(self.pgid, signal.SIGTERM)
            if not await _wait_group_gone(self.pgid, timeouts.term_grace_s):
                logger.warning(
                    "MCP server group %d ignored SIGTERM for %.1f s; killing it",
                    self.pgid,
                    timeouts.term_grace_s,
                )
                _signal_group(self.pgid, signal.SIGKILL)
                if not await _wait_group_gone(self.pgid, timeouts.kill_reap_s):
                    logger.error("MCP server group %d survived SIGKILL", self.pgid)
        await self._wait_exit(timeouts.kill_reap_s)
        self._stderr_task.cancel()
        await asyncio.gather(self._stderr_task, return_exceptions=True)
        logger.debug(
            "MCP server pid %d stopped in %.0f ms (exit %s)",
            self.pid,
            (time.monotonic() - began) * 1000,
            self.returncode,
        )

    async def _wait_exit(self, timeout_s: float) -> bool:
        # Not Process.wait(): it also waits for the pipes, which a surviving child holds.
        deadline = time.monotonic() + timeout_s
        while self.returncode is None:
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(_GROUP_POLL_S)
        return True


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        pass
    except PermissionError:
        logger.warning("no permission to signal MCP server group %d", pgid)


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of group ``pgid``, from /proc; Linux only."""
    members = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        state, group = fields[0], int(fields[2])
        if group == pgid and state not in (b"Z", b"X"):
            members.append(int(entry.name))
    return members


def _group_alive(pgid: int) -> bool:
    if os.path.isdir("/proc/self"):
        # Zombies stay in the group until reaped by whoever inherited them: they are dead.
        return bool(group_members(pgid))
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def _wait_group_gone(pgid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while _group_alive(pgid):
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(_GROUP_POLL_S)
    return True
