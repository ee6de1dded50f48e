"""Limits enforced from outside the container, each hit for real."""

from __future__ import annotations

import pytest

from flows.launcher import Limits, Outcome, launch
from tests.flows.conftest import script

pytestmark = pytest.mark.docker

MIB = 1024 * 1024


def test_a_fork_bomb_is_held_by_the_pids_limit(run_python):
    run = run_python(
        script(
            """
            import errno, time
            children = 0
            try:
                while children < 10_000:
                    if os.fork() == 0:
                        time.sleep(60)
                        os._exit(0)
                    children += 1
                error = None
            except OSError as caught:
                error = errno.errorcode[caught.errno]
            report(children=children, error=error)
            """
        ),
        limits=Limits(pids=32, wall_clock_seconds=60),
    )
    probe = run.probe()
    assert probe["error"] == "EAGAIN"
    assert probe["children"] < 32
    assert run.result.outcome is Outcome.COMPLETED


def test_a_memory_hog_is_killed_and_reported_out_of_memory(run_python):
    run = run_python(
        script(
            """
            hoard = []
            while True:
                hoard.append(bytearray(8 * 1024 * 1024))
            """
        ),
        limits=Limits(memory_bytes=96 * MIB, wall_clock_seconds=60),
    )
    assert run.result.outcome is Outcome.OUT_OF_MEMORY
    assert run.result.oom_killed is True
    assert "out of memory" in run.result.reason
    (stopped,) = [e for e in run.events if e.get("status") == "stopped"]
    assert stopped["message"].startswith("outOfMemory")


def test_sigkill_without_the_oom_flag_is_reported_killed(run_python):
    run = run_python(script("import signal\nos.kill(os.getpid(), signal.SIGKILL)\n"))
    assert run.result.outcome is Outcome.KILLED
    assert run.result.exit_code == 137
    assert run.result.oom_killed is False


def test_a_non_zero_exit_is_reported_failed(run_python):
    run = run_python(script("raise SystemExit(3)\n"))
    assert (run.result.outcome, run.result.exit_code) == (Outcome.FAILED, 3)


def test_sleep_600_is_stopped_at_a_3_s_limit_with_nothing_left_behind(
    make_spec, docker_client, leftovers
):

    events: list[dict] = []
    spec = make_spec(
        entrypoint=("sleep",), args=("600",), limits=Limits(wall_clock_seconds=3, grace_seconds=2)
    )
    result = launch(spec, on_event=events.append, client=docker_client)
    assert result.outcome is Outcome.TIMED_OUT
    assert "wall-clock limit of 3 s" in result.reason
    assert leftovers() == []


def test_the_wall_clock_limit_sends_sigterm_before_sigkill(run_python, tmp_path):
    workspace = tmp_path / "graceful" / "alice"
    run = run_python(
        script(
            """
            import signal, time
            def on_term(signum, frame):
                open('/workspace/terminated', 'w').write('checkpoint written')
                raise SystemExit(0)
            signal.signal(signal.SIGTERM, on_term)
            report(ready=True)
            time.sleep(600)
            """
        ),
        workspace=workspace,
        limits=Limits(wall_clock_seconds=2, grace_seconds=10),
    )
    assert run.result.outcome is Outcome.TIMED_OUT
    assert "SIGKILL" not in run.result.reason
    assert (workspace / "terminated").read_text() == "checkpoint written"


def test_a_process_ignoring_sigterm_is_killed_after_the_grace_period(run_python):
    run = run_python(
        script(
            """
            import signal, time
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            report(ready=True)
            time.sleep(600)
            """
        ),
        limits=Limits(wall_clock_seconds=2, grace_seconds=1),
    )
    assert run.result.outcome is Outcome.TIMED_OUT
    assert "SIGKILL after the grace period" in run.result.reason


def test_a_workspace_filler_is_stopped_at_the_size_limit_and_keeps_what_it_wrote(
    run_python, tmp_path
):
    workspace = tmp_path / "filler" / "alice"
    run = run_python(
        script(
            """
            import time
            block = os.urandom(1024 * 1024)
            for n in range(10_000):
                with open(f'/workspace/fill-{n:05}', 'wb') as f:
                    f.write(block)
                time.sleep(0.02)
            report(filled=True)
            """
        ),
        workspace=workspace,
        limits=Limits(workspace_bytes=8 * MIB, wall_clock_seconds=120),
    )
    assert run.result.outcome is Outcome.WORKSPACE_LIMIT_EXCEEDED
    assert run.container_events("probe") == []
    kept = sorted(workspace.glob("fill-*"))
    assert len(kept) >= 8
    assert all(p.stat().st_size == MIB for p in kept[:-1])


def test_a_filler_of_empty_files_is_stopped_at_the_entries_limit(run_python, tmp_path):
    # Empty files cost no blocks, only inodes of the host's filesystem.
    workspace = tmp_path / "inodes" / "alice"
    run = run_python(
        script(
            """
            import time
            for n in range(200_000):
                open(f'/workspace/empty-{n:06}', 'w').close()
                if n % 100 == 0:
                    time.sleep(0.01)
            report(filled=True)
            """
        ),
        workspace=workspace,
        limits=Limits(workspace_entries=2_000, wall_clock_seconds=120),
    )
    assert run.result.outcome is Outcome.WORKSPACE_LIMIT_EXCEEDED
    assert "files and folders" in run.result.reason
    assert run.container_events("probe") == []
    assert len(list(workspace.glob("empty-*"))) >= 2_000


def test_folders_nested_past_the_depth_limit_stop_the_run(run_python):
    run = run_python(
        script(
            """
            import time
            os.chdir('/workspace')
            for _ in range(300):  # deeper than the limit, shallow enough to clean up
                os.mkdir('d')
                os.chdir('d')
                time.sleep(0.001)
            time.sleep(60)
            report(nested=True)
            """
        ),
        limits=Limits(workspace_depth=64, wall_clock_seconds=120),
    )
    assert run.result.outcome is Outcome.WORKSPACE_LIMIT_EXCEEDED
    assert "nested over 64 levels" in run.result.reason
    assert run.container_events("probe") == []


def test_a_single_file_cannot_grow_past_the_workspace_limit(run_python):
    run = run_python(
        script(
            """
            import signal
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            try:
                with open('/workspace/big', 'wb') as f:
                    f.write(b'x' * (4 * 1024 * 1024))
                error = None
            except OSError as caught:
                error = type(caught).__name__
            report(error=error, size=os.path.getsize('/workspace/big'))
            """
        ),
        limits=Limits(workspace_bytes=2 * MIB),
    )
    probe = run.probe()
    assert probe["error"] == "OSError"
    assert probe["size"] <= 2 * MIB


def test_a_shell_fork_bomb_is_held_and_stopped_at_the_wall_clock(
    make_spec, docker_client, leftovers
):
    spec = make_spec(
        entrypoint=("bash", "-c"),
        args=("bomb() { bomb | bomb & }; bomb; sleep 600",),
        limits=Limits(pids=64, wall_clock_seconds=3, grace_seconds=1),
    )
    result = launch(spec, client=docker_client)
    assert result.outcome is Outcome.TIMED_OUT
    assert leftovers() == []


def test_a_process_that_closes_its_output_is_still_held_to_the_wall_clock(run_python):
    run = run_python(
        "import os, time\nos.close(1)\nos.close(2)\ntime.sleep(600)\n",
        limits=Limits(wall_clock_seconds=3, grace_seconds=1),
    )
    assert run.result.outcome is Outcome.TIMED_OUT
