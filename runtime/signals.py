"""SIGTERM and SIGINT as cancellation: the work's own cleanup runs, then the caller learns
which signal stopped it (exit code 128 + its number, as shells report it)."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable
from typing import TypeVar

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
        logger.warning("received %s: stopping the %s", signal.Signals(signum).name, what)
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
