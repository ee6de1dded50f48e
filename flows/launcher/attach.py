"""Attaching to a container's stdout and stderr as one multiplexed stream.

``client.api.attach(stream=True)`` hands out a generator and keeps the connection it
reads from, which is then never closed; this keeps the socket in our hands instead.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import docker
from docker.utils.socket import STDERR, STDOUT, frames_iter

__all__ = ["STDERR", "STDOUT", "AttachedStream"]


class AttachedStream:
    """Opened before the container starts, so no output is missed; close it when done."""

    def __init__(self, client: docker.DockerClient, container_id: str) -> None:
        params = {"stdout": 1, "stderr": 1, "stream": 1}
        self._socket: Any = client.api.attach_socket(container_id, params=params)

    def frames(self) -> Iterator[tuple[int, bytes]]:
        """(stream id, data) until the container's streams end."""
        yield from frames_iter(self._socket, tty=False)

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
