"""Attaching to a container's stdout and stderr as one multiplexed stream.

``client.api.attach(stream=True)`` hands out a generator and keeps the connection it
reads from, which is then never closed; this keeps the socket in our hands instead.

The frames are read here rather than by docker-py's ``frames_iter``, whose reads wait on
the socket with no timeout: a thread blocked there runs no Python code while a silent
container sleeps, so a SIGINT the kernel handed to another thread was not acted on by
the waiting main thread while the container stayed silent (up to its wall-clock limit).
Waiting at most ``WAKE_SECONDS`` at a time, the reader runs pending handlers promptly.
"""

from __future__ import annotations

import contextlib
import select
import struct
from collections.abc import Iterator
from typing import Any

import docker
from docker.utils.socket import STDERR, STDOUT, read

__all__ = ["STDERR", "STDOUT", "AttachedStream"]

WAKE_SECONDS = 0.5
# Each frame: stream id (1 byte), 3 bytes of padding, payload size (4 bytes, big-endian).
_HEADER = struct.Struct(">BxxxL")


class AttachedStream:
    """Opened before the container starts, so no output is missed; close it when done."""

    def __init__(self, client: docker.DockerClient, container_id: str) -> None:
        params = {"stdout": 1, "stderr": 1, "stream": 1}
        self._socket: Any = client.api.attach_socket(container_id, params=params)
        self._poller = select.poll()
        self._poller.register(self._socket, select.POLLIN | select.POLLPRI)

    def frames(self) -> Iterator[tuple[int, bytes]]:
        """(stream id, data) until the container's streams end; a frame's payload may come
        in several pieces."""
        while True:
            header = self._read_exactly(_HEADER.size)
            if header is None:
                return
            stream_id, left = _HEADER.unpack(header)
            while left > 0:
                data = self._read(left)
                if not data:
                    return
                left -= len(data)
                yield stream_id, data

    def _read_exactly(self, size: int) -> bytes | None:
        """``size`` bytes, or None at the end of the stream (a partial header included)."""
        data = b""
        while len(data) < size:
            chunk = self._read(size - len(data))
            if not chunk:
                return None
            data += chunk
        return data

    def _read(self, size: int) -> bytes:
        """Up to ``size`` bytes once some are there; empty at the end of the stream."""
        while True:
            if not self._poller.poll(WAKE_SECONDS * 1000):
                continue  # back in Python between waits: signal handlers run here
            data = read(self._socket, size)
            if data is not None:  # None: interrupted or not ready after all; wait again
                return bytes(data)

    def close(self) -> None:
        # The response, then the socket.socket under the SocketIO docker-py hands out:
        # an upgraded connection is not returned to any pool, so nobody else closes it.
        response = getattr(self._socket, "_response", None)
        with contextlib.suppress(OSError, ValueError):
            if response is not None:
                response.close()
        for sock in (getattr(self._socket, "_sock", None), self._socket):
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.close()
