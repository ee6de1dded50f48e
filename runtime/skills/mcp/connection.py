"""An MCP client session kept open by a task of its own.

The SDK's session and transports are async context managers whose scopes must be entered
and left by one task, while a skill is started, called and closed from whichever tasks the
agent loop uses. So one owner task holds the contexts open until ``close``; calls from other
tasks go through the session object, which the SDK allows.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import mcp_types
from mcp.client._transport import TransportStreams
from mcp.client.session import ClientSession

from runtime.version import RUNTIME_VERSION

logger = logging.getLogger(__name__)

CLIENT_INFO = mcp_types.Implementation(name="perstack-py", version=RUNTIME_VERSION)
# A server that pages its tool list forever must not hang discovery.
MAX_TOOL_PAGES = 100

TransportFactory = Callable[[], AbstractAsyncContextManager[TransportStreams]]


@dataclass(frozen=True)
class Handshake:
    server_name: str
    server_version: str
    tools: list[mcp_types.Tool]
    handshake_ms: int
    discovery_ms: int


class ConnectionLost(Exception):
    """The session ended before or while it was used (the peer closed or died)."""


class Connection:
    def __init__(self, name: str, open_transport: TransportFactory) -> None:
        self._name = name
        self._open_transport = open_transport
        loop = asyncio.get_running_loop()
        self._ready: asyncio.Future[Handshake] = loop.create_future()
        # Read by open() or, after a start timeout, by nobody: mark it read either way.
        self._ready.add_done_callback(lambda ready: ready.cancelled() or ready.exception())
        self._closing = asyncio.Event()
        self._session: ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self.failure: BaseException | None = None

    async def open(self) -> Handshake:
        """Connect, initialize and list the tools. The caller bounds the time (``close``
        after a timeout); errors are the SDK's or ``ConnectionLost``."""
        self._task = asyncio.create_task(self._own(), name=f"mcp-{self._name}")
        return await asyncio.shield(self._ready)

    @property
    def alive(self) -> bool:
        return self._task is not None and not self._task.done() and self._session is not None

    async def call_tool(
        self, tool_name: str, args: dict[str, Any], timeout_s: float
    ) -> mcp_types.CallToolResult:
        if self._session is None or not self.alive:
            raise ConnectionLost(f"the connection is closed ({self.failure or 'not open'})")
        result = await self._session.call_tool(tool_name, args, read_timeout_seconds=timeout_s)
        assert isinstance(result, mcp_types.CallToolResult)
        return result

    async def close(self, timeout_s: float) -> None:
        """End the session (bounded); the owner task is cancelled if it does not finish."""
        self._closing.set()
        task = self._task
        if task is None or task.done():
            return
        done, _ = await asyncio.wait({task}, timeout=timeout_s)
        if not done:
            logger.debug(
                "MCP session %s did not close in %.1f s; cancelling it", self._name, timeout_s
            )
            task.cancel()
            await asyncio.wait({task}, timeout=timeout_s)

    async def _own(self) -> None:
        try:
            async with (
                self._open_transport() as (read, write),
                ClientSession(read, write, client_info=CLIENT_INFO) as session,
            ):
                handshake = await _handshake(session)
                self._session = session
                self._ready.set_result(handshake)
                await self._closing.wait()
        except asyncio.CancelledError:
            self._settle(ConnectionLost("cancelled while connecting"))
            raise
        except Exception as error:  # the owner task's top level: hand the error to the caller
            self._settle(error)
        else:
            self._settle(ConnectionLost("the server closed the connection"))
        finally:
            self._session = None

    def _settle(self, error: BaseException) -> None:
        if self.failure is None and not self._closing.is_set():
            self.failure = error
        if not self._ready.done():
            self._ready.set_exception(error)


async def _handshake(session: ClientSession) -> Handshake:
    began = time.perf_counter()
    init = await session.initialize()
    initialized = time.perf_counter()
    tools: list[mcp_types.Tool] = []
    cursor: str | None = None
    for _ in range(MAX_TOOL_PAGES):
        params = mcp_types.PaginatedRequestParams(cursor=cursor) if cursor else None
        page = await session.list_tools(params=params)
        tools.extend(page.tools)
        cursor = page.next_cursor
        if not cursor:
            break
    listed = time.perf_counter()
    return Handshake(
        server_name=init.server_info.name,
        server_version=init.server_info.version,
        tools=tools,
        handshake_ms=round((initialized - began) * 1000),
        discovery_ms=round((listed - initialized) * 1000),
    )
