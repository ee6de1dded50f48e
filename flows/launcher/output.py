"""Splitting a byte stream into lines.

Lines are cut on b"\\n" as bytes and decoded only by whoever reads them whole, so a
multi-byte character split across two reads comes out intact, and a line of any length
up to ``MAX_LINE_BYTES`` stays one line.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

logger = logging.getLogger(__name__)

# One event line can carry a whole checkpoint (every message of a long run); past this
# size a line is surely runaway output, and holding more would only exhaust our memory.
MAX_LINE_BYTES = 64 * 1024 * 1024


class LineSplitter:
    """Feed chunks, get complete lines (without the newline) through ``on_line``."""

    def __init__(self, on_line: Callable[[bytes], None]) -> None:
        self._on_line = on_line
        self._pending = bytearray()
        self.lines = 0
        self.truncated = 0

    def feed(self, chunk: bytes) -> None:
        start = 0
        while (end := chunk.find(b"\n", start)) != -1:
            self._pending += chunk[start:end]
            self._deliver()
            start = end + 1
        self._pending += chunk[start:]
        if len(self._pending) > MAX_LINE_BYTES:
            logger.warning("a stdout line passed %d bytes; it is cut there", MAX_LINE_BYTES)
            self.truncated += 1
            self._deliver()

    def close(self) -> None:
        """The stream ended: a last line without a newline is still a line."""
        if self._pending:
            self._deliver()

    def _deliver(self) -> None:
        line = bytes(self._pending)
        self._pending.clear()
        self.lines += 1
        self._on_line(line)
