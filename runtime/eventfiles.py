"""Event files written off the agent loop's path.

Every event becomes one file in the run's folder (the reference's layout), in which a
history already in a checkpoint file is pointed at, not repeated (runtime.histories). A
file costs its serialization and a few filesystem calls, which under load take longer than
the rest of a step, so a single writer thread does both, in order, while the loop goes on.
``close`` waits until every submitted event is on disk; the executor calls it on every way
out.
"""

from __future__ import annotations

import logging
import queue
import threading

from runtime.errors import StorageError
from runtime.events import Event, RunEvent
from runtime.storage import WorkspaceStore

logger = logging.getLogger(__name__)

# How long closing may wait for the writer to drain its queue (a backlog of thousands of
# small files takes well under a second on a healthy disk).
CLOSE_TIMEOUT_S = 30.0


class EventFileWriter:
    def __init__(self, store: WorkspaceStore) -> None:
        self._store = store
        self._queue: queue.SimpleQueue[tuple[Event, str | None] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.failures = 0

    def submit(self, event: Event, whole: str | None = None) -> None:
        """Write ``event``'s file; ``whole``: its JSON, if it was made already."""
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._drain, name="perstack-event-files", daemon=True
                    )
                    self._thread.start()
        self._queue.put((event, whole))

    def _drain(self) -> None:
        while (item := self._queue.get()) is not None:
            event, whole = item
            step = event.step_number if isinstance(event, RunEvent) else 0
            try:
                # Histories on disk already are pointed at (serialized here, off the loop).
                data = self._store.histories.file_json(event, whole).encode()
                self._store.write_event(
                    event.job_id, event.run_id, event.timestamp, step, event.type, data
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
