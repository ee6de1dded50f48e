"""Event files written off the agent loop's path.

Every event becomes one file in the run's folder (the reference's layout). A file costs a
few filesystem calls, which under load takes longer than the rest of a step, so a single
writer thread does it, in order, while the loop goes on. ``close`` waits until every
submitted event is on disk; the executor calls it on every way out.
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass

from runtime.errors import StorageError
from runtime.storage import WorkspaceStore

logger = logging.getLogger(__name__)

# How long closing may wait for the writer to drain its queue (a backlog of thousands of
# small files takes well under a second on a healthy disk).
CLOSE_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class _EventFile:
    job_id: str
    run_id: str
    timestamp: int
    step: int
    event_type: str
    data: bytes


class EventFileWriter:
    def __init__(self, store: WorkspaceStore) -> None:
        self._store = store
        self._queue: queue.SimpleQueue[_EventFile | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.failures = 0

    def submit(
        self, job_id: str, run_id: str, timestamp: int, step: int, event_type: str, data: bytes
    ) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._drain, name="perstack-event-files", daemon=True
                    )
                    self._thread.start()
        self._queue.put(_EventFile(job_id, run_id, timestamp, step, event_type, data))

    def _drain(self) -> None:
        while (item := self._queue.get()) is not None:
            try:
                self._store.write_event(
                    item.job_id,
                    item.run_id,
                    item.timestamp,
                    item.step,
                    item.event_type,
                    item.data,
                )
            except StorageError as error:
                self.failures += 1
                if self.failures == 1:  # one message, not one per event, on a full disk
                    logger.error("event files are not being written: %s", error)

    def close(self, timeout_s: float = CLOSE_TIMEOUT_S) -> None:
        thread = self._thread
        if thread is None:
            return
        self._queue.put(None)
        thread.join(timeout_s)
        if thread.is_alive():
            logger.error(
                "event files still being written after %.0f s; some may be missing", timeout_s
            )
        self._thread = None
