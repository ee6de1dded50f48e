"""The ``exec`` tool: run one command in the workspace, isolated from the runtime's secrets.

- Environment: a short allow-list of the runtime's variables (PATH, HOME, locale, TERM,
  proxies; see ``PASSED_THROUGH``) plus what the call passes in ``env``. Nothing else of
  the runtime's environment (API keys above all) reaches the command. Variables that
  change how programs are loaded (``PROTECTED``) cannot be set by a call, as in the
  reference.
- Working directory: ``cwd``, confined to the workspace like every other path.
- Lifetime: the command leads its own process group. On timeout the group gets SIGTERM,
  then SIGKILL after ``KILL_GRACE_SECONDS``; when the command ends (or the call is
  cancelled) whatever it left running in its group is killed too.
- Output: each stream is captured up to a cap; the rest is counted, dropped, and the
  result says so.

Only ``cwd`` is confined: the command itself can read whatever the runtime's user can,
the workspace's perstack/ folder included. The container is the boundary for that.
TODO(#2): a process that leaves the group (setsid, a daemon) outlives the call; a cgroup
or a child subreaper would catch it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shlex
import signal
import subprocess
from collections.abc import Mapping
from typing import Any

from runtime.skills.builtin.files import Args
from runtime.skills.builtin.outcomes import ToolFailure
from runtime.skills.builtin.paths import Workspace
from runtime.skills.environment import LOADER_ENV_NAMES, MINIMAL_ENV_NAMES

logger = logging.getLogger(__name__)

# The reference's default when a call gives no timeout.
DEFAULT_TIMEOUT_MS = 60_000
# One command may not hold a run for more than an hour, whatever the model asks.
MAX_TIMEOUT_MS = 3_600_000
# Time a command gets to exit after SIGTERM before its whole group is SIGKILLed.
KILL_GRACE_SECONDS = 2.0
# After the command exited, how long to wait for its pipes to reach end of file.
PIPE_DRAIN_SECONDS = 1.0
# Per stream: about 25k tokens of text, enough for a test report, not for a flood.
DEFAULT_OUTPUT_LIMIT_BYTES = 100 * 1024

# Where a child can find its inherited descriptors by path (Linux procfs).
_PROC_FD_AVAILABLE = os.path.isdir("/proc/self/fd")

NO_OUTPUT = "Command executed successfully, but produced no output."

PASSED_THROUGH = MINIMAL_ENV_NAMES
# A call may not set these: the loader's variables, and where programs and home are.
PROTECTED = LOADER_ENV_NAMES | {"PATH", "HOME", "SHELL"}


class ExecArgs(Args):
    command: str
    args: list[str]
    env: dict[str, str]
    cwd: str
    stdout: bool
    stderr: bool
    timeout: int | float = DEFAULT_TIMEOUT_MS


def minimal_environment(source: Mapping[str, str]) -> dict[str, str]:
    """The part of ``source`` a command may see."""
    env = {name: source[name] for name in PASSED_THROUGH if source.get(name)}
    env.setdefault("PATH", os.defpath)
    return env


class _Collector(asyncio.SubprocessProtocol):
    """Captures both pipes up to a cap and tells when the process exited and when the
    pipes closed (``Process.wait`` waits for both, which a background child can delay)."""

    def __init__(self, limit: int) -> None:
        loop = asyncio.get_running_loop()
        self.limit = limit
        self.data: dict[int, bytearray] = {1: bytearray(), 2: bytearray()}
        self.dropped = {1: 0, 2: 0}
        self.exited: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        kept = self.data[fd]
        room = max(self.limit - len(kept), 0)
        kept.extend(data[:room])
        self.dropped[fd] += max(len(data) - room, 0)

    def process_exited(self) -> None:
        if not self.exited.done():
            self.exited.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)

    def text(self, fd: int) -> str:
        text = self.data[fd].decode("utf-8", errors="replace")
        if self.dropped[fd]:
            name = "stdout" if fd == 1 else "stderr"
            text += f"\n[{name} truncated: {self.dropped[fd]} more bytes not shown]\n"
        return text


async def run_exec(
    ws: Workspace, args: ExecArgs, base_env: Mapping[str, str], output_limit: int
) -> dict[str, Any]:
    timeout_ms = _check_timeout(args.timeout)
    env = _environment(base_env, args.env)
    shown = shlex.join([args.command, *args.args])
    transport, collector = await _spawn(ws, args, env, output_limit)
    pid = transport.get_pid()
    timed_out = False
    try:
        try:
            await asyncio.wait_for(asyncio.shield(collector.exited), timeout_ms / 1000)
        except TimeoutError:
            timed_out = True
            await _terminate_group(pid, collector)
    finally:
        _signal_group(pid, signal.SIGKILL)  # whatever the command left running
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(collector.closed), PIPE_DRAIN_SECONDS)
        transport.close()
    return _result(args, shown, transport.get_returncode(), collector, timed_out, timeout_ms)


async def _spawn(
    ws: Workspace, args: ExecArgs, env: dict[str, str], output_limit: int
) -> tuple[asyncio.SubprocessTransport, _Collector]:
    cwd_target = ws.resolve(args.cwd or ".")
    loop = asyncio.get_running_loop()
    # The directory is opened by the link-free walk and the child enters it through its
    # descriptor, so a link swapped in after the check cannot move the command elsewhere.
    with ws.dir_fd(cwd_target) as cwd_fd:
        cwd = f"/proc/self/fd/{cwd_fd}" if _PROC_FD_AVAILABLE else str(cwd_target.absolute)
        try:
            return await loop.subprocess_exec(
                lambda: _Collector(output_limit),
                args.command,
                *args.args,
                stdin=subprocess.DEVNULL,
                # A stream the call does not want is not captured at all.
                stdout=subprocess.PIPE if args.stdout else subprocess.DEVNULL,
                stderr=subprocess.PIPE if args.stderr else subprocess.DEVNULL,
                cwd=cwd,
                pass_fds=(cwd_fd,),
                env=env,
                start_new_session=True,
            )
        except FileNotFoundError:
            raise ToolFailure(
                f"Command not found: {args.command!r} (searched PATH={env['PATH']!r}).",
                kind="CommandNotFound",
            ) from None
        except OSError as error:
            raise ToolFailure(
                f"Cannot start {args.command!r}: {error.strerror or error}.",
                kind="CommandFailed",
            ) from None
        except ValueError as error:  # e.g. a NUL byte inside the command or an argument
            raise ToolFailure(
                f"Cannot start {args.command!r}: {error}.", kind="InvalidArguments"
            ) from None


def _result(
    args: ExecArgs,
    shown: str,
    returncode: int | None,
    collector: _Collector,
    timed_out: bool,
    timeout_ms: int,
) -> dict[str, Any]:
    streams: dict[str, str] = {}
    if args.stdout:
        streams["stdout"] = collector.text(1)
    if args.stderr:
        streams["stderr"] = collector.text(2)
    if timed_out:
        raise ToolFailure(
            f"Command timed out after {timeout_ms}ms and was killed: {shown}",
            kind="Timeout",
            **{name: text for name, text in streams.items() if text},
        )
    if returncode != 0:
        how = (
            f"was killed by signal {-returncode}"
            if returncode is not None and returncode < 0
            else f"failed with exit code {returncode}"
        )
        raise ToolFailure(
            f"Command {how}: {shown}",
            kind="CommandFailed",
            exitCode=returncode,
            **{name: text for name, text in streams.items() if text},
        )
    output = "".join(streams.values())
    return {"output": output if output.strip() else NO_OUTPUT}


async def _terminate_group(pid: int, collector: _Collector) -> None:
    _signal_group(pid, signal.SIGTERM)
    try:
        await asyncio.wait_for(asyncio.shield(collector.exited), KILL_GRACE_SECONDS)
    except TimeoutError:
        logger.info("exec: pid %d ignored SIGTERM, killing its group", pid)
    _signal_group(pid, signal.SIGKILL)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(collector.exited), KILL_GRACE_SECONDS)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _check_timeout(value: int | float) -> int:
    if not 0 < value <= MAX_TIMEOUT_MS:
        raise ToolFailure(
            f"timeout must be between 1 and {MAX_TIMEOUT_MS} milliseconds, got {value!r}.",
            kind="InvalidArguments",
        )
    return max(int(value), 1)


def _environment(base_env: Mapping[str, str], extra: Mapping[str, str]) -> dict[str, str]:
    refused = sorted(name for name in extra if name.upper() in PROTECTED)
    if refused:
        raise ToolFailure(
            f"env may not set {', '.join(refused)}: these variables are fixed by the runtime. "
            "Remove them from env.",
            kind="InvalidArguments",
        )
    bad = sorted(name for name in extra if not name or "=" in name or "\x00" in name)
    if bad or any("\x00" in value for value in extra.values()):
        raise ToolFailure(
            f"env holds an invalid variable name or value: {bad!r}.", kind="InvalidArguments"
        )
    return {**base_env, **extra}
