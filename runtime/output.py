"""stdout that outlives its reader.

`perstack run … | head -1` closes the pipe after one line. The run must not care: its
checkpoints and event files are what it is for, so it goes on and ends with its normal
exit code. The first write that fails with a broken pipe says so once on stderr; later
writes are dropped, and the descriptor is pointed at /dev/null so that the interpreter's
last flush at exit does not fail either.
"""

from __future__ import annotations

import contextlib
import errno
import io
import logging
import os
from typing import TextIO

logger = logging.getLogger(__name__)


class Output:
    """Writes to ``stream`` until its reader goes away, then nothing."""

    def __init__(self, stream: TextIO, what: str) -> None:
        self._stream: TextIO | None = stream
        self._what = what

    @property
    def gone(self) -> bool:
        return self._stream is None

    def write(self, text: str) -> None:
        """Write and flush ``text``; a reader that went away is not an error."""
        stream = self._stream
        if stream is None:
            return
        try:
            stream.write(text)
            stream.flush()
        except (BrokenPipeError, ValueError) as error:  # ValueError: closed by its owner
            self._lost(stream, error)
        except OSError as error:
            if error.errno != errno.EPIPE:
                raise
            self._lost(stream, error)

    def _lost(self, stream: TextIO, error: Exception) -> None:
        self._stream = None
        logger.warning(
            "stdout was closed (%s): %s no longer go there; the run goes on and its "
            "workspace files are complete",
            error.__class__.__name__,
            self._what,
        )
        with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation):
            fd = stream.fileno()
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, fd)
            os.close(devnull)
