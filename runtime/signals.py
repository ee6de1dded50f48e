"""SIGTERM and SIGINT as cancellation: the work's own cleanup runs, then the caller learns
which signal stopped it (exit code 128 + its number, as shells report it).

Only the first signal cancels. Cleanup (stopping every MCP server's process group, the
final checkpoint, job.json) is bounded by its own timeouts; a second Ctrl-C or a
supervisor that repeats SIGTERM must not cancel it halfway and leave servers running, so
later signals are only logged."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Coroutine
from typing import Any, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


async def until_signalled(work: Awaitable[T], what: str) -> tuple[T | None, int | None]:
    """Await ``work``; SIGTERM or SIGINT cancel it. Returns (its result, None), or
    (None, the signal's number) when a signal stopped it."""
    task = asyncio.current_task()
    assert task is not None
    received: list[int] = []

    def stop(signum: int) -> None:
        name = signal.Signals(signum).name
        if received:
            logger.warning("received %s while stopping the %s: the cleanup goes on", name, what)
            return
        logger.warning("received %s: stopping the %s", name, what)
        received.append(signum)
        task.cancel()

    loop = asyncio.get_running_loop()
    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, stop, signum)
    try:
        return await work, None
    except asyncio.CancelledError:
        if not received:
            raise
        return None, received[0]
    finally:
        for signum in STOP_SIGNALS:
            loop.remove_signal_handler(signum)


async def finish_even_if_cancelled(cleanup: Coroutine[Any, Any, None]) -> None:
    """Run ``cleanup`` to its end even when the caller is cancelled meanwhile (a signal
    arriving while skills close), then let the cancellation go on. Only for cleanup whose
    own timeouts bound it."""
    task = asyncio.ensure_future(cleanup)
    cancelled = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            cancelled = True
    if not cancelled:
        task.result()  # the cleanup's own failure, if any
        return
    if not task.cancelled() and (error := task.exception()) is not None:
        logger.warning("cleanup failed while stopping: %s", error)
    raise asyncio.CancelledError
