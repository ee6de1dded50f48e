"""Whatever happens to the caller, the container is removed."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time

import pytest

from flows.launcher import ImageMissingError, Limits, Outcome, launch, launch_async

pytestmark = pytest.mark.docker


async def test_cancelling_the_awaiting_task_stops_and_removes_the_container(
    make_spec, docker_client, leftovers
):
    loop = asyncio.get_running_loop()
    running = asyncio.Event()

    def on_event(event: dict) -> None:
        if event.get("status") == "running":
            loop.call_soon_threadsafe(running.set)

    spec = make_spec(entrypoint=("sleep",), args=("600",), limits=Limits(grace_seconds=1))
    task = asyncio.create_task(launch_async(spec, on_event=on_event, client=docker_client))
    await asyncio.wait_for(running.wait(), 30)
    assert leftovers() != []
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert leftovers() == []


@pytest.fixture
def sigint_raises():
    """SIGINT raises KeyboardInterrupt, as in an interactive Python, whatever the test
    process inherited: a shell starts a background job (`make test &`) with SIGINT
    ignored, and Python then installs no handler of its own."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_a_keyboard_interrupt_removes_the_container(
    make_spec, docker_client, leftovers, sigint_raises
):
    assert threading.current_thread() is threading.main_thread()

    def on_event(event: dict) -> None:
        if event.get("status") == "running":
            # A real SIGINT, from another thread, while the launcher reads the stream.
            threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()

    spec = make_spec(entrypoint=("sleep",), args=("600",))
    with pytest.raises(KeyboardInterrupt):
        launch(spec, on_event=on_event, client=docker_client)
    assert leftovers() == []


def test_a_sigint_another_thread_caught_still_stops_the_launch_promptly(
    make_spec, docker_client, leftovers, sigint_raises
):
    # Regression: the stream was read with no timeout, so a SIGINT the kernel gave to
    # another thread (Python runs its handler in the main thread only) was not acted on
    # while the container stayed silent: here until its wall-clock limit ended it.
    def interrupt_this_thread() -> None:
        signal.pthread_kill(threading.get_ident(), signal.SIGINT)

    def on_event(event: dict) -> None:
        if event.get("status") == "running":
            threading.Timer(0.3, interrupt_this_thread).start()

    spec = make_spec(entrypoint=("sleep",), args=("600",), limits=Limits(wall_clock_seconds=60))
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        launch(spec, on_event=on_event, client=docker_client)
    assert time.monotonic() - started < 30  # the limit would have ended it at 60
    assert leftovers() == []


def test_setting_the_cancel_event_reports_cancelled(make_spec, docker_client, leftovers):
    cancel = threading.Event()

    def on_event(event: dict) -> None:
        if event.get("status") == "running":
            cancel.set()

    spec = make_spec(entrypoint=("sleep",), args=("600",), limits=Limits(grace_seconds=1))
    result = launch(spec, on_event=on_event, cancel=cancel, client=docker_client)
    assert result.outcome is Outcome.CANCELLED
    assert leftovers() == []


def test_a_missing_image_is_an_error_that_says_how_to_build_it(make_spec, docker_client):
    spec = make_spec(image="perstack-runtime:does-not-exist")
    with pytest.raises(ImageMissingError, match="setup-docker.sh"):
        launch(spec, client=docker_client)


def test_a_launch_cancelled_before_its_container_starts_runs_nothing(
    make_spec, docker_client, leftovers
):
    # Regression: the cancel event was first looked at after the start, so the Expert's
    # code ran for a poll interval and a grace period.
    cancel = threading.Event()

    def on_event(event: dict) -> None:
        if event.get("status") == "starting":
            cancel.set()

    spec = make_spec(entrypoint=("sh", "-c"), args=("touch /workspace/ran; sleep 600",))
    result = launch(spec, on_event=on_event, cancel=cancel, client=docker_client)
    assert result.outcome is Outcome.CANCELLED
    assert "before it started" in result.reason
    assert not (spec.workspace / "ran").exists()
    assert leftovers() == []
