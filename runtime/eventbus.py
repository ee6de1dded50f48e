"""Where events go: stdout (one JSON line each), the workspace's event files (written by a
background writer, see runtime.eventfiles), listeners.

stdout carries events and nothing else; a reader that closes it early does not stop the
run (see runtime.output). A listener that raises is logged and skipped; the events after
it still reach everyone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TextIO

from runtime.eventfiles import EventFileWriter
from runtime.events import Event
from runtime.output import Output

logger = logging.getLogger(__name__)

Listener = Callable[[Event], None]


class EventBus:
    def __init__(
        self,
        *,
        stdout: TextIO | None = None,
        files: EventFileWriter | None = None,
        listeners: list[Listener] | None = None,
    ) -> None:
        self._stdout = Output(stdout, "events") if stdout is not None else None
        self._files = files
        self._listeners: list[Listener] = list(listeners or [])

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def close(self) -> None:
        """Wait until every event file is written."""
        if self._files is not None:
            self._files.close()

    def emit(self, event: Event) -> None:
        line: str | None = None
        if self._stdout is not None and not self._stdout.gone:
            line = event.to_json()
            self._stdout.write(line + "\n")
        if self._files is not None:
            self._files.submit(event, line)
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:  # a listener's fault must not cost the others their events
                logger.exception("event listener %r failed on %s", listener, event.type)
