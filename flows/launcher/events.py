"""The launcher's own events, and the sink every event goes through.

The launcher's events are the runtime's models (``dockerContainerStatus``,
``proxyAccess``); they are built here alone. The sink hands each event (the container's
stdout lines and the launcher's own) to the caller's callback and appends it to
events.jsonl as it arrives; the proxy's log thread and the main thread share it.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from runtime.events import DockerContainerStatus, ProxyAccess

logger = logging.getLogger(__name__)

EventCallback = Callable[[dict[str, Any]], None]
ContainerStatus = Literal["starting", "running", "healthy", "unhealthy", "stopped", "error"]


def container_status(
    job_id: str, run_id: str, status: ContainerStatus, service: str, message: str | None = None
) -> dict[str, Any]:
    event = DockerContainerStatus(
        job_id=job_id, run_id=run_id, status=status, service=service, message=message
    )
    return event.to_wire()


def proxy_access(
    job_id: str,
    run_id: str,
    action: Literal["allowed", "blocked"],
    domain: str,
    port: int,
    reason: str | None,
) -> dict[str, Any]:
    event = ProxyAccess(
        job_id=job_id, run_id=run_id, action=action, domain=domain, port=port, reason=reason
    )
    return event.to_wire()


# Parsing builds a Python object per JSON object or array: a 60 MiB line of `[{},{},...]`
# took the launcher past 1.5 GB. Real events, checkpoints with long histories included,
# hold far fewer (a 10,000-message checkpoint: about 100,000).
MAX_PARSED_CONTAINERS = 2_000_000


class EventSink:
    """Appends each line to the events file (flushed at once) and calls the callback.

    The launcher's events carry the job and run ids it was given until the container's
    first event says which ones the runtime uses; from then on, those.
    """

    def __init__(
        self, path: Path, callback: EventCallback | None, job_id: str, run_id: str
    ) -> None:
        self._file = path.open("ab")
        self._callback = callback
        self._lock = threading.Lock()
        self.job_id = job_id
        self.run_id = run_id
        self._ids_adopted = False
        self.callback_errors = 0

    def status(self, status: ContainerStatus, service: str, message: str | None = None) -> None:
        self.emit(container_status(self.job_id, self.run_id, status, service, message))

    def proxy(
        self, action: Literal["allowed", "blocked"], domain: str, port: int, reason: str | None
    ) -> None:
        self.emit(proxy_access(self.job_id, self.run_id, action, domain, port, reason))

    def emit(self, event: dict[str, Any]) -> None:
        """A launcher event."""
        line = json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()
        self._write(line, event)

    def container_line(self, raw: bytes) -> None:
        """One stdout line of the container, written verbatim; JSON objects go to the
        callback too. Anything else is kept in the file but not parsed further."""
        event: dict[str, Any] | None = None
        if raw.count(b"{") + raw.count(b"[") > MAX_PARSED_CONTAINERS:
            logger.warning(
                "stdout line of %d bytes holds too many JSON objects and arrays to parse; "
                "kept in the events file only",
                len(raw),
            )
            self._write(raw, None)
            return
        try:
            decoded = json.loads(raw)
        except (ValueError, RecursionError):  # not JSON, or nested too deep to read
            logger.debug("stdout line of %d bytes is not JSON", len(raw))
        else:
            if isinstance(decoded, dict):
                event = decoded
                self._adopt_ids(event)
        self._write(raw, event)

    def _adopt_ids(self, event: dict[str, Any]) -> None:
        job_id, run_id = event.get("jobId"), event.get("runId")
        if not self._ids_adopted and isinstance(job_id, str) and isinstance(run_id, str):
            self.job_id, self.run_id = job_id, run_id
            self._ids_adopted = True

    def close(self) -> None:
        with self._lock:
            self._file.close()

    def _write(self, line: bytes, event: dict[str, Any] | None) -> None:
        with self._lock:
            if self._file.closed:  # a thread that outlived the execution: nothing to add
                logger.debug("event after the execution ended: %r", event and event.get("type"))
                return
            self._file.write(line + b"\n")
            self._file.flush()
            if event is None or self._callback is None:
                return
            try:
                self._callback(event)
            except Exception:  # the caller's code: report it, keep following the output
                self.callback_errors += 1
                logger.exception("event callback failed on a %r event", event.get("type"))
