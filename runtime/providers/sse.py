"""Server-sent events: lines in, ``(event name, data)`` pairs out.

The decoding rules of the HTML standard's event-stream format, reduced to what a reply stream
uses: ``event`` and ``data`` fields (several ``data`` lines join with a newline), comments
(lines starting with ``:``) and unknown fields ignored, a blank line ends an event, and an event
without data is not dispatched. Lines arrive already split (without their terminator).
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass


@dataclass(frozen=True)
class ServerSentEvent:
    event: str
    data: str


class SseDecoder:
    """Feed it lines one at a time; a blank line returns the event they made, if any."""

    def __init__(self) -> None:
        self._event = ""
        self._data: list[str] = []

    def feed(self, line: str) -> ServerSentEvent | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        event, data = self._event or "message", self._data
        self._event, self._data = "", []
        if not data:
            return None
        return ServerSentEvent(event, "\n".join(data))


async def server_sent_events(lines: AsyncIterable[str]) -> AsyncIterator[ServerSentEvent]:
    decoder = SseDecoder()
    async for line in lines:
        if (event := decoder.feed(line)) is not None:
            yield event
    # Lines after the last blank line are an incomplete event: dropped, as the format says.
