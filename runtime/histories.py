"""Event files that point at the checkpoint holding a history instead of repeating it.

Events carry whole message histories: each step's startGeneration and continueToNextStep
(checkpoint and nextCheckpoint), and each run's start and stop. Written out in full, one
file per event, a history of H bytes cost about 4·H per step, so a run's event files grew
with the square of its length: one 11 MiB file write then 10 small steps made 877 MB of
event files next to 277 MB of checkpoints. The checkpoint written at the end of each step
holds the same history once. So in an event file, a history that begins with the messages
of a checkpoint already on disk keeps only the messages after them, and says where the
rest is (``elidedMessages``: that checkpoint's id and how many of its messages). Every
event is still written, in its own file; stdout keeps each event whole, as the reference
writes it. ``perstack log`` and the analytics read these files (the history of an event
is in the checkpoint files of the same job). Measured on that run: event files 877 MB →
92 MB (the new megabytes appear in step 1's events only), stdout unchanged.

TODO(#2): the checkpoints still hold the whole history each, one file per step (the
reference's format): on that run 12 checkpoints of 23 MB, 277 MB, which still grows with
the square of the run's length and counts against the container's workspace limit.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from runtime.checkpoint import Checkpoint, ElidedMessages
from runtime.events import Event, StartGeneration
from runtime.messages import Message

# The fields of an event that hold a checkpoint, with its history.
_CHECKPOINT_FIELDS = ("checkpoint", "next_checkpoint", "initial_checkpoint")


class StoredHistories:
    """The histories of the checkpoints on disk (written or read by this process).

    A history only ever grows by appending, and message ids are unique, so a checkpoint's
    history is known by its last message's id and its length."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # fed by the loop, read by the event-file writer
        self._by_end: dict[tuple[str, str, int], str] = {}

    def add(self, checkpoint: Checkpoint) -> None:
        """``checkpoint`` is on disk: histories that begin with its messages may point at it."""
        if checkpoint.messages:
            key = (checkpoint.job_id, checkpoint.messages[-1].id, len(checkpoint.messages))
            with self._lock:
                self._by_end.setdefault(key, checkpoint.id)

    def elide(
        self, job_id: str, messages: Sequence[Message]
    ) -> tuple[ElidedMessages, list[Message]] | None:
        """The longest stored prefix of ``messages`` and the messages after it."""
        with self._lock:
            for count in range(len(messages), 0, -1):
                found = self._by_end.get((job_id, messages[count - 1].id, count))
                if found is not None:
                    elided = ElidedMessages(checkpoint_id=found, count=count)
                    return elided, list(messages[count:])
        return None

    def file_json(self, event: Event, whole: str | None = None) -> str:
        """The JSON of ``event`` for its file: histories on disk already left out.
        ``whole``: the event's JSON when it was written already (to stdout)."""
        updates: dict[str, Any] = {}
        for name in _CHECKPOINT_FIELDS:
            checkpoint = getattr(event, name, None)
            if isinstance(checkpoint, Checkpoint) and (found := self._elide(checkpoint)):
                elided, rest = found
                updates[name] = checkpoint.model_copy(
                    update={"messages": rest, "elided_messages": elided}
                )
        if isinstance(event, StartGeneration) and (
            found := self.elide(event.job_id, event.messages)
        ):
            updates["elided_messages"], updates["messages"] = found
        if updates:
            return event.model_copy(update=updates).to_json()
        return whole if whole is not None else event.to_json()

    def _elide(self, checkpoint: Checkpoint) -> tuple[ElidedMessages, list[Message]] | None:
        return self.elide(checkpoint.job_id, checkpoint.messages)
