"""A launcher killed with SIGKILL cannot clean up; the next launch removes what it left."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from flows.launcher import launch
from flows.launcher.engine import OWNER_LABEL, owner_label, remove_orphans

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[2]

# A launcher in its own process: a `sleep 600` container, "running" printed once it runs.
LAUNCHER = """
import json, sys
from pathlib import Path
from flows.launcher import LaunchSpec, launch

root = Path(sys.argv[1])
spec = LaunchSpec(
    entrypoint=("sleep",), args=("600",), workspace=root / "ws" / "bob",
    capture_dir=root / "capture", labels={"test.session": sys.argv[2]},
)

def on_event(event):
    if event.get("status") == "running":
        print("running", flush=True)

launch(spec, on_event=on_event)
"""


def start_launcher(tmp_path: Path, session_id: str) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(LAUNCHER), str(tmp_path), session_id],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.strip() == "running", f"the launcher did not start its container: {line!r}"
    return process


def kill(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert process.stdout is not None
    process.stdout.close()


def test_a_sigkilled_launchers_container_is_removed_by_the_next_launch(
    tmp_path, session_id, make_spec, docker_client, leftovers
):
    launcher = start_launcher(tmp_path, session_id)
    kill(launcher)
    orphans = leftovers()
    assert orphans, "SIGKILL leaves the container behind: nothing could remove it"

    result = launch(make_spec(entrypoint=("true",)), client=docker_client)

    assert result.exit_code == 0
    assert leftovers() == []


def test_a_live_launchers_container_is_left_alone(tmp_path, session_id, docker_client, leftovers):
    launcher = start_launcher(tmp_path, session_id)
    try:
        running = leftovers()
        assert len(running) == 1

        assert remove_orphans(docker_client) == 0
        assert leftovers() == running
    finally:
        kill(launcher)
        remove_orphans(docker_client)
    assert leftovers() == []


def test_containers_of_another_pid_namespace_or_machine_are_left_alone(
    session_id, docker_client, leftovers
):
    # Regression: a launcher in a docker-pool flow-run container (same hostname through
    # network_mode host, PIDs of its own) and the host's launchers removed each other's
    # running executions as orphans.
    boot, namespace, hostname, pid, started = owner_label().split("/")
    dead_pid = str(2**22 + 17)  # above any pid_max: no such process
    foreign = [
        f"{boot}/{namespace}/other-host/{dead_pid}/1",
        f"other-boot/{namespace}/{hostname}/{dead_pid}/1",
        f"{boot}/4026500000/{hostname}/{dead_pid}/1",  # another PID namespace
        f"{boot}/{hostname}/{dead_pid}/1",  # an older launcher's label: not ours to judge
    ]
    ours_dead = f"{boot}/{namespace}/{hostname}/{dead_pid}/1"
    names = []
    for n, owner in enumerate([*foreign, ours_dead]):
        container = docker_client.containers.create(
            "perstack-runtime:latest",
            entrypoint=["true"],
            name=f"perstack-orphan-test-{session_id}-{n}",
            labels={"perstack.managed": "true", "test.session": session_id, OWNER_LABEL: owner},
        )
        names.append(container.name)
    try:
        assert remove_orphans(docker_client) == 1
        assert sorted(leftovers()) == sorted(names[:-1])
    finally:
        for name in names[:-1]:
            docker_client.containers.get(name).remove(force=True)


def test_the_owner_label_names_this_process():
    boot, namespace, hostname, pid, started = owner_label().split("/")
    assert int(pid) == os.getpid()
    assert f"pid:[{namespace}]" == os.readlink("/proc/self/ns/pid")
    assert boot == Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    # The start time survives pid reuse: it is the process's, in clock ticks since boot.
    since_boot_s = float(Path("/proc/uptime").read_text().split()[0])
    started_s = int(started) / os.sysconf("SC_CLK_TCK")
    assert 0 <= started_s <= since_boot_s
    assert hostname == socket.gethostname()
