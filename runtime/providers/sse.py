"""Server-sent events: bytes in, ``(event name, data)`` pairs out.

The decoding rules of the HTML standard's event-stream format, reduced to what a reply stream
uses: the stream is UTF-8 whatever its content-type says, lines end at CRLF, LF or CR and
nowhere else (not at U+2028 or U+0085, which JSON strings may hold raw), ``event`` and ``data``
fields (several ``data`` lines join with a newline), comments (lines starting with ``:``) and
unknown fields ignored, a blank line ends an event, and an event without data is not
dispatched.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from dataclasses import dataclass

_LINE_END = re.compile(r"\r\n|\r|\n")


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


class LineSplitter:
    """Feed it chunks of bytes as they arrive; it gives back the complete lines they hold.

    A character split across chunks is decoded once whole (invalid bytes become U+FFFD); a
    chunk that ends in CR ends the line at once, and an LF opening the next chunk is then the
    rest of that CRLF. Each chunk is scanned once, however long a line grows.
    """

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._pending: list[str] = []
        self._after_cr = False

    def feed(self, chunk: bytes) -> Iterator[str]:
        text = self._decoder.decode(chunk)
        if self._after_cr and text.startswith("\n"):
            text = text[1:]
            self._after_cr = False
        if text:
            self._after_cr = text.endswith("\r")
        start = 0
        for end in _LINE_END.finditer(text):
            self._pending.append(text[start : end.start()])
            yield "".join(self._pending)
            self._pending.clear()
            start = end.end()
        if start < len(text):
            self._pending.append(text[start:])


async def server_sent_events(chunks: AsyncIterable[bytes]) -> AsyncIterator[ServerSentEvent]:
    splitter = LineSplitter()
    decoder = SseDecoder()
    async for chunk in chunks:
        for line in splitter.feed(chunk):
            if (event := decoder.feed(line)) is not None:
                yield event
    # A last line without its line break, and lines after the last blank line, are an
    # incomplete event: dropped, as the format says.
