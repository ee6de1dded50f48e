"""Process-level protection of the runtime's own secrets.

The runtime holds the provider's API key in its environment. Its children (``exec``
commands, MCP servers) get a minimal environment of their own, but on Linux a process of
the same user can read another's *initial* environment from ``/proc/<pid>/environ``.
Marking the runtime not dumpable makes its ``/proc`` files owned by root and unreadable to
its children (in the container: user 10001, no capabilities). It also disables core dumps,
which would contain the key as well.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

logger = logging.getLogger(__name__)

_PR_SET_DUMPABLE = 4
_PR_GET_DUMPABLE = 3


def _prctl(option: int, value: int = 0) -> int:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    result: int = libc.prctl(option, value, 0, 0, 0)
    return result


def make_undumpable() -> bool:
    """Hide the runtime's environment and memory from processes of the same user.

    Returns whether it worked (always False off Linux)."""
    if not sys.platform.startswith("linux"):
        return False
    if _prctl(_PR_SET_DUMPABLE, 0) != 0:
        logger.warning("could not mark the runtime not dumpable; children may read its env")
        return False
    return True


def is_dumpable() -> bool:
    return sys.platform.startswith("linux") and _prctl(_PR_GET_DUMPABLE) == 1
