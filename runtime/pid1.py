"""The runtime as its container's init, when nothing else is.

A container started without an init runs ``perstack`` as PID 1. Two jobs then fall to it
that an init does elsewhere: reaping orphaned processes (an ``exec`` command's background
children end up as PID 1's children, and their zombies would count against the pids limit)
and passing SIGTERM on. So PID 1 forks: the child goes on as the runtime, the parent stays
behind as a small init that forwards stop signals to it, reaps every process that exits, and
leaves with the runtime's exit code.

Why not the engine's own init (``docker run --init``): it runs as the container's user and
is dumpable, so any process of the Expert could read the container's whole environment,
API key included, from ``/proc/1/environ``, and write forged lines to the container's
stdout through ``/proc/1/fd/1``. This init is marked not dumpable before it forks, like the
runtime itself, so its ``/proc`` files are closed to them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from types import FrameType

from runtime.hardening import make_undumpable

logger = logging.getLogger(__name__)

# Signals an init passes on to the process it runs.
FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)


def become_init_if_pid1() -> None:
    """Return at once unless this process is PID 1; otherwise fork, return in the child (the
    runtime) and never return in the parent (the init)."""
    if os.getpid() != 1:
        return
    make_undumpable()
    child = os.fork()
    if child == 0:
        return
    os._exit(supervise(child))


def supervise(child: int) -> int:
    """Forward stop signals to ``child`` and reap every exited process until ``child`` is
    one of them; its exit code (128 + N when signal N killed it)."""

    def forward(signum: int, _frame: FrameType | None) -> None:
        # It may have exited already: its status is then about to be reaped.
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signum)

    for signum in FORWARDED_SIGNALS:
        signal.signal(signum, forward)
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            # Nothing left to wait for, yet the runtime was never reaped: cannot happen
            # unless someone else reaped it.
            logger.error("the runtime (pid %d) vanished without an exit status", child)
            return 1
        if pid == child:
            code = os.waitstatus_to_exitcode(status)
            return 128 - code if code < 0 else code
