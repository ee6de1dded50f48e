"""The stdio transport: newline-delimited JSON-RPC between the SDK's session streams and a
``ServerProcess``'s pipes. Stopping the process is the skill's job (``ServerProcess.stop``),
so that it happens on every path, whatever the SDK does on the way out."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import mcp_types
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.client._transport import TransportStreams
from mcp.shared.message import SessionMessage
from pydantic import ValidationError

from runtime.skills.mcp.process import ServerProcess

logger = logging.getLogger(__name__)

_READ_CHUNK = 64 * 1024
# One JSON-RPC message larger than this is refused: it would only exhaust memory.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


@asynccontextmanager
async def stdio_streams(process: ServerProcess) -> AsyncIterator[TransportStreams]:
    to_session, from_server = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    to_server, from_session = anyio.create_memory_object_stream[SessionMessage](0)
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(_pump_stdout, process, to_session)
        tasks.start_soon(_pump_stdin, process, from_session)
        try:
            yield from_server, to_server
        finally:
            tasks.cancel_scope.cancel()
            for stream in (to_session, from_server, to_server, from_session):
                stream.close()


async def _pump_stdout(
    process: ServerProcess, to_session: MemoryObjectSendStream[SessionMessage | Exception]
) -> None:
    """Server stdout to the session; at end of stream the session sees the connection close."""
    pending = b""
    async with to_session:
        while True:
            chunk = await process.stdout.read(_READ_CHUNK)
            if not chunk:
                return
            *lines, pending = (pending + chunk).split(b"\n")
            if len(pending) > MAX_MESSAGE_BYTES:
                logger.error(
                    "MCP server pid %d sent a message over %d bytes; dropping the connection",
                    process.pid,
                    MAX_MESSAGE_BYTES,
                )
                return
            for line in lines:
                if line.strip():
                    try:
                        await to_session.send(_parse(line))
                    except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                        return


def _parse(line: bytes) -> SessionMessage | Exception:
    try:
        message = mcp_types.jsonrpc_message_adapter.validate_json(line, by_name=False)
    except ValidationError as error:
        logger.warning("MCP server wrote a line that is not JSON-RPC: %.200r", line)
        return error
    return SessionMessage(message)


async def _pump_stdin(
    process: ServerProcess, from_session: MemoryObjectReceiveStream[SessionMessage]
) -> None:
    async with from_session:
        async for message in from_session:
            data = message.message.model_dump_json(by_alias=True, exclude_unset=True)
            try:
                process.stdin.write(data.encode() + b"\n")
                await process.stdin.drain()
            except (OSError, RuntimeError):
                # The server is gone; its stdout's end tells the session so.
                logger.debug("MCP server pid %d no longer reads its stdin", process.pid)
                return
