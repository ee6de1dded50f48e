"""``McpSkill``: the tools of one MCP server (stdio, SSE or streamable HTTP).

Lifecycle. Without a lockfile the server is started with the run, since its tools must be
known before the first generation. With one, its tool definitions come from the lock and
the server is started (and the `mcp` SDK imported) only when one of its tools is first
called, unless the skill says ``lazyInit = false``. Events: ``skillStarting``,
``skillConnected`` (spawn, handshake, discovery milliseconds), one ``skillStderr`` per
stderr line, ``skillDisconnected`` (with ``reason`` when the server failed).

Failures. A tool's own failure (an ``isError`` result, or a JSON-RPC error answer) goes back
to the model as an error result. A server that cannot start, dies, or does not answer in time
raises ``McpSkillError``, which stops the run. Either way ``close`` stops the server's whole
process group, within ``McpTimeouts.close_bound_s``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runtime.config import McpSseSkill, McpStdioSkill
from runtime.errors import SkillError
from runtime.events import (
    Event,
    ServerInfo,
    SkillConnected,
    SkillDisconnected,
    SkillStarting,
    SkillStderr,
)
from runtime.skills.mcp.command import resolve_executable, server_command, server_environment
from runtime.skills.mcp.errors import McpSkillError
from runtime.skills.mcp.timeouts import CALL_ENV, START_ENV, McpTimeouts
from runtime.skills.skill import ToolDefinition, ToolOutcome

if TYPE_CHECKING:
    from runtime.skills.mcp.connection import Connection, Handshake, TransportFactory
    from runtime.skills.mcp.process import ServerProcess

logger = logging.getLogger(__name__)

Emit = Callable[[Event], None]


class McpSkill:
    emits_own_lifecycle_events = True

    def __init__(
        self,
        name: str,
        config: McpStdioSkill | McpSseSkill,
        *,
        expert_key: str,
        job_id: str,
        run_id: str,
        emit: Emit | None = None,
        locked: list[ToolDefinition] | None = None,
        environ: Mapping[str, str] | None = None,
        timeouts: McpTimeouts | None = None,
        cwd: Path | None = None,
    ) -> None:
        self._name = name
        self._config = config
        self._job_id = job_id
        self._run_id = run_id
        self._emit_event = emit
        self._locked = list(locked) if locked is not None else None
        environ = os.environ if environ is None else environ
        self._timeouts = timeouts or McpTimeouts.from_env(environ)
        self._cwd = cwd
        self._argv: list[str] = []
        self._env: dict[str, str] = {}
        if isinstance(config, McpStdioSkill):
            # Both raise ConfigError now: before any server of the run is spawned.
            self._argv = server_command(expert_key, name, config)
            self._env = server_environment(expert_key, name, config.required_env, environ)
        self._discovered: list[ToolDefinition] | None = None
        self._start_lock = asyncio.Lock()
        self._process: ServerProcess | None = None
        self._connection: Connection | None = None
        self._broken: str | None = None
        self._connected = False
        self._disconnect_emitted = False
        self._closed = False

    # --- the Skill protocol --------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._name

    @property
    def lazy(self) -> bool:
        """Started on first call: only when the lock knows its tools and lazyInit allows."""
        return self._locked is not None and self._config.lazy_init

    @property
    def process(self) -> ServerProcess | None:
        """The running stdio server, if any (tests and diagnostics)."""
        return self._process

    def tool_definitions(self) -> list[ToolDefinition]:
        source = self._discovered if self._discovered is not None else self._locked or []
        pick, omit = set(self._config.pick), set(self._config.omit)
        return [d for d in source if (not pick or d.name in pick) and d.name not in omit]

    async def start(self) -> None:
        async with self._start_lock:
            if self._closed:
                raise SkillError(self._name, "the skill is closed")
            if self._broken is not None:
                raise McpSkillError(self._name, self._broken, stderr=self._stderr_tail())
            if self._connected:
                return
            await self._connect()

    async def call_tool(self, tool_name: str, args: dict[str, Any]) -> ToolOutcome:
        offered = {d.name for d in self.tool_definitions()}
        if self._discovered is not None and tool_name not in offered:
            return ToolOutcome.text(
                f"Tool {tool_name!r} is not offered by skill {self._name!r}. "
                f"Available: {', '.join(sorted(offered)) or 'none'}.",
                is_error=True,
            )
        await self.start()
        return await self._call(tool_name, args)

    async def close(self) -> None:
        # A start under way finishes first (it is bounded): nothing is spawned after a close.
        async with self._start_lock:
            if self._closed:
                return
            self._closed = True
            await self._teardown()
            if self._connected:
                self._disconnected(None)
            elif self._process is not None:
                self._disconnected("closed before it finished starting")

    # --- starting --------------------------------------------------------------------------

    async def _connect(self) -> None:
        began = time.perf_counter()
        spawn_ms = 0
        factory: TransportFactory
        if isinstance(self._config, McpStdioSkill):
            # Spawn before importing the SDK: the server boots while we import.
            process, spawn_ms = await self._spawn()
            from runtime.skills.mcp.stdio import stdio_streams

            factory = lambda: stdio_streams(process)  # noqa: E731
        else:
            factory = self._http_factory(self._config.endpoint)
        from runtime.skills.mcp.connection import Connection

        connection = Connection(self._name, factory)
        self._connection = connection
        try:
            handshake = await asyncio.wait_for(connection.open(), timeout=self._timeouts.start_s)
        except TimeoutError:
            raise await self._start_failed(
                f"did not finish starting within {self._timeouts.start_s:g} s "
                f"(set {START_ENV} to change it)"
            ) from None
        except Exception as error:  # the SDK's errors vary by transport; all mean "no server"
            raise await self._start_failed(await self._describe_failure(error)) from error
        self._adopt(handshake, began, spawn_ms)

    async def _spawn(self) -> tuple[ServerProcess, int]:
        from runtime.skills.mcp.process import ServerProcess

        command, *args = self._argv
        self._emit(SkillStarting(**self._ids(), skill_name=self._name, command=command, args=args))
        executable = resolve_executable(command, self._env.get("PATH"))
        spawned = time.perf_counter()
        try:
            process = await ServerProcess.spawn(
                [executable, *args],
                env=self._env,
                cwd=str(self._cwd) if self._cwd else None,
                on_stderr=self._on_stderr,
            )
        except OSError as error:
            self._broken = f"could not start {command!r}: {error.strerror or error}"
            self._disconnected(self._broken)
            raise McpSkillError(self._name, self._broken) from error
        self._process = process
        return process, round((time.perf_counter() - spawned) * 1000)

    def _http_factory(self, endpoint: str) -> TransportFactory:
        from runtime.skills.mcp.remote import open_http_transport, transport_kind

        self._emit(
            SkillStarting(
                **self._ids(),
                skill_name=self._name,
                command=transport_kind(endpoint),
                args=[endpoint],
            )
        )
        return lambda: open_http_transport(endpoint)

    def _adopt(self, handshake: Handshake, began: float, spawn_ms: int) -> None:
        self._discovered = [
            ToolDefinition(
                skill_name=self._name,
                name=tool.name,
                description=tool.description or "",
                input_schema=dict(tool.input_schema),
            )
            for tool in handshake.tools
        ]
        self._warn_on_lock_drift()
        self._warn_on_unknown_picks()
        self._connected = True
        total = round((time.perf_counter() - began) * 1000)
        self._emit(
            SkillConnected(
                **self._ids(),
                skill_name=self._name,
                server_info=ServerInfo(
                    name=handshake.server_name, version=handshake.server_version
                ),
                spawn_duration_ms=spawn_ms,
                handshake_duration_ms=handshake.handshake_ms,
                tool_discovery_duration_ms=handshake.discovery_ms,
                connect_duration_ms=spawn_ms + handshake.handshake_ms,
                total_duration_ms=total,
            )
        )

    def _warn_on_lock_drift(self) -> None:
        if self._locked is None or self._discovered is None:
            return
        served = {d.name for d in self._discovered}
        gone = sorted(d.name for d in self._locked if d.name not in served)
        if gone:
            logger.warning(
                "skill %s: the server no longer offers %s, which perstack.lock lists; "
                "run `perstack install` again",
                self._name,
                ", ".join(gone),
            )

    def _warn_on_unknown_picks(self) -> None:
        """A name in pick or omit that the server does not offer is most likely a typo."""
        served = {d.name for d in self._discovered or ()}
        for label, names in (("pick", self._config.pick), ("omit", self._config.omit)):
            unknown = sorted(set(names) - served)
            if unknown:
                logger.warning(
                    "skill %s: %s names %s, which the server does not offer (it offers %s); "
                    "ignored",
                    self._name,
                    label,
                    ", ".join(unknown),
                    ", ".join(sorted(served)) or "no tools",
                )

    async def _start_failed(self, reason: str) -> McpSkillError:
        stderr = self._stderr_tail()
        await self._teardown()
        stderr = self._stderr_tail() or stderr
        self._broken = reason
        self._disconnected(reason)
        return McpSkillError(self._name, reason, stderr=stderr)

    async def _describe_failure(self, error: BaseException) -> str:
        process = self._process
        if process is not None:
            await process.settle(self._timeouts.stderr_drain_s)
            if process.returncode is not None:
                return f"the server exited with code {process.returncode}"
        if isinstance(self._config, McpSseSkill):
            return f"could not connect to {self._config.endpoint}: {_leaf_message(error)}"
        return f"could not connect: {_leaf_message(error)}"

    async def _teardown(self) -> None:
        # stdio: the spec's shutdown is the process's (stdin closed, then signals); its end
        # ends the session too. HTTP: closing the session is the shutdown (DELETE).
        if self._process is not None:
            await self._process.stop(self._timeouts)
        if self._connection is not None:
            await self._connection.close(self._timeouts.session_close_s)

    # --- calling ---------------------------------------------------------------------------

    async def _call(self, tool_name: str, args: dict[str, Any]) -> ToolOutcome:
        import anyio
        from mcp.shared.exceptions import MCPError
        from mcp_types import CONNECTION_CLOSED, REQUEST_TIMEOUT

        from runtime.skills.mcp.connection import ConnectionLost
        from runtime.skills.mcp.results import to_outcome

        assert self._connection is not None
        try:
            result = await self._connection.call_tool(tool_name, args, self._timeouts.call_s)
        except MCPError as error:
            if error.code == REQUEST_TIMEOUT:
                raise self._failed(
                    f"did not answer a call of {tool_name!r} within {self._timeouts.call_s:g} s "
                    f"(set {CALL_ENV} to change it)"
                ) from error
            if error.code == CONNECTION_CLOSED and not self._server_alive(error):
                raise await self._died(tool_name) from error
            return ToolOutcome.text(
                f"Error calling tool {tool_name}: {error.message}", is_error=True
            )
        except (ConnectionLost, anyio.ClosedResourceError, anyio.BrokenResourceError) as error:
            raise await self._died(tool_name) from error
        except (RuntimeError, ValueError) as error:  # an answer the SDK could not accept
            return ToolOutcome.text(f"Error calling tool {tool_name}: {error}", is_error=True)
        return to_outcome(tool_name, args, result)

    def _server_alive(self, error: Exception) -> bool:
        """A CONNECTION_CLOSED code from a live server is the server's own error answer."""
        from mcp.shared.exceptions import MCPError

        synthesized = isinstance(error, MCPError) and error.message == "Connection closed"
        connection = self._connection
        return not synthesized and connection is not None and connection.alive

    async def _died(self, tool_name: str) -> McpSkillError:
        process = self._process
        if process is not None:
            await process.settle(self._timeouts.stderr_drain_s)
        code = process.returncode if process is not None else None
        how = f"exited with code {code}" if code is not None else "closed the connection"
        return self._failed(f"the server {how} during a call of {tool_name!r}")

    def _failed(self, reason: str) -> McpSkillError:
        self._broken = reason
        self._disconnected(reason)
        return McpSkillError(self._name, reason, stderr=self._stderr_tail())

    # --- events ----------------------------------------------------------------------------

    def _on_stderr(self, line: str) -> None:
        logger.debug("skill %s stderr: %s", self._name, line)
        self._emit(SkillStderr(**self._ids(), skill_name=self._name, message=line))

    def _disconnected(self, reason: str | None) -> None:
        if self._disconnect_emitted:
            return
        self._disconnect_emitted = True
        self._emit(SkillDisconnected(**self._ids(), skill_name=self._name, reason=reason))

    def _emit(self, event: Event) -> None:
        if self._emit_event is not None:
            self._emit_event(event)

    def _ids(self) -> dict[str, str]:
        return {"job_id": self._job_id, "run_id": self._run_id}

    def _stderr_tail(self) -> list[str]:
        return self._process.stderr_tail() if self._process is not None else []


def _leaf_message(error: BaseException) -> str:
    """``Kind: message`` of the first real error inside the task groups' exception groups."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    kind, text = type(error).__name__, str(error)
    return f"{kind}: {text}" if text else kind
