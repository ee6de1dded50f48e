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

The launcher enforces the wall clock from outside. Should the launcher die first, the
container would run on with nobody to stop it, so the launcher also names a deadline
(``PERSTACK_DEADLINE_SECONDS``, past its own wall clock and grace): at it the init sends
SIGTERM, and a grace period later it exits, which ends every process of the container.
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
DEADLINE_ENV = "PERSTACK_DEADLINE_SECONDS"
# Between the deadline's SIGTERM and the init's exit: time for a last checkpoint.
DEADLINE_GRACE_SECONDS = 10.0
# The exit code of a container ended by its own deadline, as if SIGKILLed.
DEADLINE_EXIT_CODE = 128 + signal.SIGKILL


def become_init_if_pid1() -> None:
    """Return at once unless this process is PID 1; otherwise fork, return in the child (the
    runtime) and never return in the parent (the init)."""
    if os.getpid() != 1:
        return
    make_undumpable()
    child = os.fork()
    if child == 0:
        return
    os._exit(supervise(child, deadline_from_env()))


def deadline_from_env() -> float | None:
    """Seconds from now to the container's deadline, when the launcher named one."""
    text = os.environ.get(DEADLINE_ENV)
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds < float("inf"):
        logger.warning("ignoring %s=%r: not a positive number of seconds", DEADLINE_ENV, text)
        return None
    return seconds


def supervise(
    child: int, deadline: float | None = None, grace: float = DEADLINE_GRACE_SECONDS
) -> int:
    """Forward stop signals to ``child`` and reap every exited process until ``child`` is
    one of them; its exit code (128 + N when signal N killed it). At ``deadline`` seconds
    the child gets SIGTERM, and ``grace`` seconds later the init exits."""

    def forward(signum: int, _frame: FrameType | None) -> None:
        # It may have exited already: its status is then about to be reaped.
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signum)

    def expire(_signum: int, _frame: FrameType | None) -> None:
        if expired:
            os._exit(DEADLINE_EXIT_CODE)  # the kernel ends every process of the container
        expired.append(True)
        logger.error("the container's deadline passed; stopping the runtime")
        forward(signal.SIGTERM, None)
        signal.setitimer(signal.ITIMER_REAL, grace)

    expired: list[bool] = []
    for signum in FORWARDED_SIGNALS:
        signal.signal(signum, forward)
    if deadline is not None:
        signal.signal(signal.SIGALRM, expire)
        signal.setitimer(signal.ITIMER_REAL, deadline)
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
