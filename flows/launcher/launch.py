"""Run one execution in a fresh hardened container and say how it ended.

``launch`` blocks; ``launch_async`` runs it on a worker thread and turns cancellation of
the awaiting task into a stop of the container. On every path, an exception or a
KeyboardInterrupt included, the container, the proxy and the network are removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import docker
import docker.errors
import requests.exceptions

from flows.launcher.attach import STDERR, STDOUT, AttachedStream
from flows.launcher.container import runtime_container_kwargs
from flows.launcher.engine import connect, remove_orphans
from flows.launcher.errors import ImageMissingError, LauncherError
from flows.launcher.events import EventCallback, EventSink
from flows.launcher.limits import Limits
from flows.launcher.output import LineSplitter
from flows.launcher.proxy import EgressProxy
from flows.launcher.result import Captured, LaunchResult, Outcome, Timings
from flows.launcher.spec import LaunchSpec
from flows.launcher.watchdog import Watchdog
from flows.launcher.workspace import WORKSPACE_MODE, measure_workspace, prepare_workspace
from runtime.ids import new_id, now_ms
from runtime.pid1 import DEADLINE_ENV

logger = logging.getLogger(__name__)

_SIGKILL_EXIT_CODE = 128 + 9
# How long one wait for the container's exit blocks before checking it is still there.
EXIT_POLL_SECONDS = 1.0
# The container's own deadline (runtime.pid1) comes this long after the wall clock and
# the grace period: it only acts when the launcher is gone, never before the launcher.
DEADLINE_MARGIN_SECONDS = 30.0
# Loopback inside the container never goes through the proxy (a local MCP SSE server).
_NO_PROXY = "localhost,127.0.0.1,::1"


def launch(
    spec: LaunchSpec,
    on_event: EventCallback | None = None,
    cancel: threading.Event | None = None,
    client: docker.DockerClient | None = None,
) -> LaunchResult:
    """Run ``spec`` to its end. ``on_event`` gets every event (the container's stdout
    lines that are JSON objects, and the launcher's own) on the calling thread or the
    proxy's log thread, one at a time. Setting ``cancel`` stops the container.

    Raises ``LauncherError`` when the execution could not be run at all.
    """
    execution = _Execution(
        spec=spec,
        execution_id=new_id(),
        job_id=spec.job_id or new_id(),
        run_id=spec.run_id or new_id(),
        cancel=cancel or threading.Event(),
    )
    own_client = client is None
    docker_client = client or connect()
    try:
        return execution.run(docker_client, on_event)
    finally:
        if own_client:
            docker_client.close()


async def launch_async(
    spec: LaunchSpec,
    on_event: EventCallback | None = None,
    client: docker.DockerClient | None = None,
) -> LaunchResult:
    """``launch`` on a worker thread. Cancelling the awaiting task stops the container
    (SIGTERM, grace, SIGKILL), waits for its removal, then lets the cancellation through."""
    cancel = threading.Event()
    future = asyncio.ensure_future(asyncio.to_thread(launch, spec, on_event, cancel, client))
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        cancel.set()
        with contextlib.suppress(LauncherError):
            await future
        raise


@dataclass
class _Execution:
    spec: LaunchSpec
    execution_id: str
    job_id: str
    run_id: str
    cancel: threading.Event
    marks: dict[str, float] = field(default_factory=dict)
    first_output: float | None = None
    stdout_lines: int = 0

    def run(self, client: docker.DockerClient, on_event: EventCallback | None) -> LaunchResult:
        spec = self.spec
        self.marks["begin"] = time.monotonic()
        started_ms = now_ms()
        spec.capture_dir.mkdir(parents=True, exist_ok=True)
        captured = Captured(
            events=spec.capture_dir / "events.jsonl",
            stderr=spec.capture_dir / "stderr.log",
            proxy_log=spec.capture_dir / "proxy.log" if spec.network.mode != "none" else None,
        )
        prepare_workspace(spec.workspace, spec.user)
        env = {**spec.resolved_env(), DEADLINE_ENV: f"{_deadline_seconds(spec.limits):g}"}
        _require_image(client, spec.image)
        _remove_orphans(client)
        sink = EventSink(captured.events, on_event, self.job_id, self.run_id)
        proxy: EgressProxy | None = None
        container_id: str | None = None
        try:
            network = "none"
            if spec.network.mode == "allowList":
                _require_image(client, spec.proxy_image)
                assert captured.proxy_log is not None
                proxy = EgressProxy(client, spec, self.execution_id, sink, captured.proxy_log)
                env.update(_proxy_env(proxy.start()))
                network = proxy.network_name
            self.marks["prepared"] = time.monotonic()
            if self.cancel.is_set():  # cancelled while the proxy started: run nothing
                return self._not_started(sink, captured, started_ms)
            sink.status("starting", "runtime")
            kwargs = runtime_container_kwargs(spec, self.execution_id, env, network)
            container_id = _translate(lambda: client.containers.create(**kwargs).id)
            self.marks["created"] = time.monotonic()
            return self._run_container(client, container_id, sink, captured, started_ms)
        finally:
            if container_id is not None:
                _remove(client, container_id)
            if proxy is not None:
                proxy.stop()
            sink.close()

    def _run_container(
        self,
        client: docker.DockerClient,
        container_id: str,
        sink: EventSink,
        captured: Captured,
        started_ms: int,
    ) -> LaunchResult:
        # Attached before start, so not a byte of a container that exits at once is lost.
        stream = AttachedStream(client, container_id)
        try:
            return self._start_and_follow(client, container_id, stream, sink, captured, started_ms)
        finally:
            stream.close()

    def _start_and_follow(
        self,
        client: docker.DockerClient,
        container_id: str,
        stream: AttachedStream,
        sink: EventSink,
        captured: Captured,
        started_ms: int,
    ) -> LaunchResult:
        if self.cancel.is_set():  # cancelled while the container was created
            return self._not_started(sink, captured, started_ms)
        _translate(lambda: client.api.start(container_id))
        self.marks["started"] = time.monotonic()
        sink.status("running", "runtime")
        watchdog = Watchdog(
            client, container_id, self.spec.workspace, self.spec.limits, self.cancel
        )
        watchdog.start()
        try:
            self._follow(stream, sink, captured)
            # The output can end before the process does (it may close stdout and stderr
            # and go on): the limits stay enforced until the container has exited.
            _wait_for_exit(client, container_id)
        finally:
            watchdog.finish()
        self.marks["exited"] = time.monotonic()
        state = client.api.inspect_container(container_id)["State"]
        outcome, reason = _classify(state, watchdog, self.spec.limits.memory_bytes)
        sink.status("stopped", "runtime", f"{outcome.value}: {reason}")
        logger.info("execution %s ended %s: %s", self.execution_id, outcome.value, reason)
        return LaunchResult(
            execution_id=self.execution_id,
            job_id=sink.job_id,
            run_id=sink.run_id,
            outcome=outcome,
            exit_code=state.get("ExitCode"),
            reason=reason,
            oom_killed=bool(state.get("OOMKilled")),
            timings=self._timings(started_ms),
            captured=captured,
            stdout_lines=self.stdout_lines,
            workspace_bytes=_final_workspace_bytes(self.spec.workspace),
        )

    def _follow(self, stream: AttachedStream, sink: EventSink, captured: Captured) -> None:
        def on_line(line: bytes) -> None:
            if self.first_output is None:
                self.first_output = time.monotonic()
            sink.container_line(line)

        stdout = LineSplitter(on_line)
        with captured.stderr.open("ab") as stderr:
            for stream_id, data in stream.frames():
                if stream_id == STDOUT:
                    stdout.feed(data)
                elif stream_id == STDERR:
                    _append(stderr, data)
        stdout.close()
        self.stdout_lines = stdout.lines

    def _not_started(self, sink: EventSink, captured: Captured, started_ms: int) -> LaunchResult:
        """The result of an execution cancelled before its container started."""
        reason = "the caller cancelled the execution before it started"
        now = time.monotonic()
        for mark in ("prepared", "created", "started", "exited"):
            self.marks.setdefault(mark, now)
        sink.status("stopped", "runtime", f"{Outcome.CANCELLED.value}: {reason}")
        return LaunchResult(
            execution_id=self.execution_id,
            job_id=sink.job_id,
            run_id=sink.run_id,
            outcome=Outcome.CANCELLED,
            exit_code=None,
            reason=reason,
            oom_killed=False,
            timings=self._timings(started_ms),
            captured=captured,
            stdout_lines=0,
            workspace_bytes=_final_workspace_bytes(self.spec.workspace),
        )

    def _timings(self, started_ms: int) -> Timings:
        m = self.marks

        def span(a: str, b: str) -> float:
            return round((m[b] - m[a]) * 1000, 1)

        return Timings(
            prepare_ms=span("begin", "prepared"),
            create_ms=span("prepared", "created"),
            start_ms=span("created", "started"),
            run_ms=span("started", "exited"),
            total_ms=round((time.monotonic() - m["begin"]) * 1000, 1),
            started_ms=started_ms,
            finished_ms=now_ms(),
            first_output_ms=(
                None
                if self.first_output is None
                else round((self.first_output - m["started"]) * 1000, 1)
            ),
        )


def _deadline_seconds(limits: Limits) -> float:
    return limits.wall_clock_seconds + limits.grace_seconds + DEADLINE_MARGIN_SECONDS


def _final_workspace_bytes(workspace: Path) -> int:
    """The workspace's size once the container has exited, set-ID bits it left cleared and
    its top folder's mode restored; a walk that fails (the container left the tree in a
    state we cannot walk) must not lose the result."""
    try:
        os.chmod(workspace, WORKSPACE_MODE, follow_symlinks=False)
        usage = measure_workspace(workspace, clear_set_id=True)
    except OSError as error:
        logger.warning("cannot measure workspace %s after the run: %s", workspace, error)
        return 0
    if usage.set_id_cleared:
        logger.warning(
            "cleared the set-ID bits of %d files the run left in %s",
            usage.set_id_cleared,
            workspace,
        )
    return usage.bytes


def _classify(state: dict[str, Any], watchdog: Watchdog, memory_bytes: int) -> tuple[Outcome, str]:
    exit_code = state.get("ExitCode")
    if watchdog.tripped is not None:
        after = " (SIGKILL after the grace period)" if watchdog.killed_after_grace else ""
        return watchdog.tripped, watchdog.reason + after
    if state.get("OOMKilled"):
        return Outcome.OUT_OF_MEMORY, f"killed out of memory at the limit of {memory_bytes} bytes"
    if exit_code == _SIGKILL_EXIT_CODE:
        return Outcome.KILLED, "killed by SIGKILL (not out of memory, not by the launcher)"
    if exit_code == 0:
        return Outcome.COMPLETED, "exited with code 0"
    return Outcome.FAILED, f"exited with code {exit_code}"


def _wait_for_exit(client: docker.DockerClient, container_id: str) -> None:
    while True:
        try:
            client.api.wait(container_id, timeout=EXIT_POLL_SECONDS)
            return
        except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
            # Still running, or the engine is gone: inspecting tells which (and raises).
            state = _translate(lambda: client.api.inspect_container(container_id))["State"]
            if not state.get("Running"):
                return


def _remove_orphans(client: docker.DockerClient) -> None:
    """What launchers that died left behind goes before anything new is started; a failure
    to clean up is logged, never a reason not to run."""
    try:
        remove_orphans(client)
    except (docker.errors.DockerException, requests.exceptions.RequestException):
        logger.warning("looking for orphaned containers failed", exc_info=True)


def _proxy_env(proxy_url: str) -> dict[str, str]:
    env = {}
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        env[name] = env[name.lower()] = proxy_url
    env["NO_PROXY"] = env["no_proxy"] = _NO_PROXY
    return env


def _append(file: BinaryIO, data: bytes) -> None:
    file.write(data)
    file.flush()


def _require_image(client: docker.DockerClient, image: str) -> None:
    try:
        client.images.get(image)
    except docker.errors.ImageNotFound as error:
        raise ImageMissingError(image) from error
    except docker.errors.APIError as error:
        raise LauncherError(f"could not inspect image {image!r}: {error}") from error


def _translate(call: Any) -> Any:
    try:
        return call()
    except docker.errors.APIError as error:
        raise LauncherError(f"the Docker engine refused: {error.explanation or error}") from error


def _remove(client: docker.DockerClient, container_id: str) -> None:
    try:
        client.api.remove_container(container_id, force=True)
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError:
        logger.exception("could not remove container %s; it is labelled for cleanup", container_id)
