"""Runs with and without perstack.lock: lazy start, stale locks, --frozen, the `mcp` import,
and MCP failures ending the run with stopRunByError and a checkpoint, no server left."""

import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from runtime.checkpoint import Checkpoint
from runtime.cli import main
from runtime.skills.mcp.process import group_members
from tests.fakes.mcp_helpers import WRAPPER, processes_with
from tests.runtime.harness import REPO, Project, make_project
from tests.runtime.test_lockfile import fake_skill_toml

ECHO = {"tool_use": [{"name": "echo", "input": {"message": "hi"}}]}
DONE = {"text": "done"}


def project_with(tmp_path: Path, *, extra: str = "", marker: str | None = None) -> Project:
    marker = marker or f"marker-{uuid.uuid4().hex}"
    toml = '[experts."worker"]\ninstruction = "Use the tools."\n' + fake_skill_toml(
        "worker", "fake", pick=["echo", "stall", "crash"], marker=marker, extra=extra
    )
    project = make_project(tmp_path, toml)
    project.marker = marker  # type: ignore[attr-defined]
    return project


def install(project: Project) -> None:
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["install", "--config", str(project.config)]) == 0


def no_server_left(project: Project) -> bool:
    return processes_with(project.marker) == []  # type: ignore[attr-defined]


def test_with_a_lock_the_server_starts_at_the_first_call_of_its_tool(tmp_path: Path) -> None:
    project = project_with(tmp_path)
    install(project)
    result = project.run([ECHO, DONE])
    assert result.code == 0, result.stderr
    types = result.types()
    assert (
        types.index("startGeneration")
        < types.index("callTools")
        < types.index("skillStarting")
        < types.index("skillConnected")
    )
    assert types[-1] == "skillDisconnected"
    assert no_server_left(project)


def test_with_a_lock_and_no_call_no_server_is_ever_spawned(tmp_path: Path) -> None:
    project = project_with(tmp_path)
    install(project)
    result = project.run([DONE])
    assert result.code == 0
    assert "skillStarting" not in result.types()


def test_lazy_init_false_starts_at_once_even_with_a_lock(tmp_path: Path) -> None:
    project = project_with(tmp_path, extra="lazyInit = false")
    install(project)
    result = project.run([DONE])
    types = result.types()
    assert types.index("skillConnected") < types.index("startGeneration")


def test_without_a_lock_every_server_starts_before_the_first_generation(
    tmp_path: Path,
) -> None:
    project = project_with(tmp_path)
    result = project.run([DONE])
    types = result.types()
    assert types.index("skillConnected") < types.index("startGeneration")


def test_a_lock_built_from_another_config_is_reported_and_ignored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    project = project_with(tmp_path)
    install(project)
    project.config.write_text(project.config.read_text() + "\n# edited after install\n")
    result = project.run([DONE])
    assert result.code == 0
    warning = next(r for r in caplog.records if r.name == "runtime.lockfile")
    assert warning.levelname == "WARNING"
    assert "was built from another version of perstack.toml" in warning.getMessage()
    assert "run `perstack install`" in warning.getMessage()
    types = result.types()
    assert types.index("skillConnected") < types.index("startGeneration")


def test_frozen_refuses_a_stale_lock(tmp_path: Path) -> None:
    project = project_with(tmp_path)
    install(project)
    project.config.write_text(project.config.read_text() + "\n# edited after install\n")
    result = project.run([DONE], "--frozen")
    assert result.code == 2
    assert "built from another version" in result.stderr and "--frozen" in result.stderr
    assert "skillStarting" not in result.types()


def test_frozen_refuses_a_missing_lock(tmp_path: Path) -> None:
    result = project_with(tmp_path).run([DONE], "--frozen")
    assert result.code == 2 and "no lockfile" in result.stderr


def test_frozen_runs_with_a_matching_lock(tmp_path: Path) -> None:
    project = project_with(tmp_path)
    install(project)
    assert project.run([ECHO, DONE], "--frozen").code == 0


MCP_IMPORT_PROBE = """
import contextlib, io, sys
from runtime.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    code = main(sys.argv[1:])
print(code, "mcp" in sys.modules, "mcp_types" in sys.modules)
"""


@pytest.mark.parametrize(("turns", "imported"), [([DONE], False), ([ECHO, DONE], True)])
def test_a_run_with_a_lock_imports_mcp_only_when_a_tool_is_called(
    tmp_path: Path, turns: list[dict[str, object]], imported: bool
) -> None:
    project = project_with(tmp_path)
    install(project)
    args = project.args("worker", "go", project.script(turns))
    probe = subprocess.run(
        [sys.executable, "-c", MCP_IMPORT_PROBE, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert probe.stdout.split() == ["0", str(imported), str(imported)]


def stop_error(project: Project, result_events: list) -> Checkpoint:  # type: ignore[type-arg]
    stop = next(e for e in result_events if e.type == "stopRunByError")
    assert stop.checkpoint.status == "stoppedByError"
    files = list(project.workspace.glob("perstack/jobs/*/checkpoints/*.json"))
    saved = [Checkpoint.model_validate_json(f.read_text()) for f in files]
    assert any(c.status == "stoppedByError" for c in saved)
    return stop.checkpoint  # type: ignore[no-any-return]


def test_a_call_never_answered_stops_the_run_by_error_with_a_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PERSTACK_MCP_CALL_TIMEOUT_MS", "1000")
    project = project_with(tmp_path)
    install(project)
    began = time.monotonic()
    result = project.run([{"tool_use": [{"name": "stall", "input": {}}]}, DONE])
    assert time.monotonic() - began < 30
    assert result.code == 1
    checkpoint = stop_error(project, result.events)
    assert checkpoint.error is not None and "did not answer a call of 'stall'" in (
        checkpoint.error.message
    )
    assert "within 1 s" in checkpoint.error.message
    reasons = [e.reason for e in result.of("skillDisconnected")]
    assert any(r and "did not answer" in r for r in reasons)
    assert no_server_left(project)


def test_a_server_dying_during_a_call_stops_the_run_by_error(tmp_path: Path) -> None:
    project = project_with(tmp_path)
    install(project)
    result = project.run([{"tool_use": [{"name": "crash", "input": {}}]}, DONE])
    assert result.code == 1
    checkpoint = stop_error(project, result.events)
    assert checkpoint.error is not None
    assert "exited with code 7" in checkpoint.error.message
    assert "crashing on purpose" in checkpoint.error.message
    assert no_server_left(project)


def test_a_tool_error_goes_to_the_model_and_the_run_goes_on(tmp_path: Path) -> None:
    toml = '[experts."worker"]\ninstruction = "x"\n' + fake_skill_toml(
        "worker", "fake", pick=["fail"]
    )
    project = make_project(tmp_path, toml)
    result = project.run([{"tool_use": [{"name": "fail", "input": {"reason": "no disk"}}]}, DONE])
    assert result.code == 0
    resolved = result.of("resolveToolResults")[0].tool_results[0]
    assert resolved.is_error and resolved.result[0].text.endswith("no disk")
    assert result.of("completeRun")


def test_sigterm_during_a_call_leaves_no_server_process(tmp_path: Path) -> None:
    project = project_with(tmp_path)
    install(project)
    stall = {"tool_use": [{"name": "stall", "input": {}}]}
    process = project.spawn(project.args("worker", "wait", project.script([stall, DONE])))
    assert process.stdout is not None
    for line in process.stdout:
        if json.loads(line)["type"] == "skillConnected":
            break
    time.sleep(0.3)  # the call is on its way
    assert processes_with(project.marker)  # type: ignore[attr-defined]
    process.send_signal(signal.SIGTERM)
    rest, _ = process.communicate(timeout=30)
    assert process.returncode == 128 + signal.SIGTERM
    assert "stopRunByError" in rest
    assert no_server_left(project)


STUBBORN_TOML = """
[experts."worker"]
instruction = "Use the tools."
[experts."worker".skills."@perstack/base"]
type = "mcpStdioSkill"
command = "builtin"
[experts."worker".skills."stubborn"]
type = "mcpStdioSkill"
command = "sh"
args = {args}
lazyInit = false
"""


@pytest.mark.parametrize(
    ("signalled_after", "signals"),
    [
        # A supervisor repeating SIGTERM, or a person pressing Ctrl-C again.
        ("callTools", (signal.SIGTERM, signal.SIGTERM, signal.SIGINT)),
        # The run has completed; the signal comes while the servers are being stopped.
        ("completeRun", (signal.SIGTERM,)),
    ],
)
def test_signals_during_shutdown_do_not_cut_short_stopping_the_servers(
    tmp_path: Path, signalled_after: str, signals: tuple[signal.Signals, ...]
) -> None:
    marker = f"marker-{uuid.uuid4().hex}"
    server = [str(WRAPPER), sys.executable, "ignore-sigterm", marker]  # keeps a sleep too
    project = make_project(tmp_path, STUBBORN_TOML.format(args=json.dumps(server)))
    sleep = {"command": "sleep", "args": ["30"], "env": {}, "cwd": ".", "stdout": True}
    exec_call = {"name": "exec", "input": {**sleep, "stderr": True}}
    turns = [{"tool_use": [exec_call]}] if signalled_after == "callTools" else []
    process = project.spawn(project.args("worker", "wait", project.script([*turns, DONE])))
    assert process.stdout is not None
    for line in process.stdout:
        if json.loads(line)["type"] == signalled_after:
            break
    groups = {os.getpgid(pid) for pid in processes_with(marker)}
    assert groups
    try:
        for signum in signals:
            process.send_signal(signum)
            time.sleep(0.3)
        rest, _ = process.communicate(timeout=30)
        assert process.returncode == 128 + signal.SIGTERM
        disconnected = [json.loads(line) for line in rest.splitlines() if "skillDisconn" in line]
        assert "stubborn" in {event["skillName"] for event in disconnected}
        assert all(group_members(pgid) == [] for pgid in groups)
    finally:
        for pgid in groups:  # what a failing run left: this test's own processes
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)


def test_the_example_installs_then_runs_frozen_with_the_time_server_started_lazily(
    tmp_path: Path,
) -> None:
    example = REPO / "examples" / "support-report"
    for name in ("perstack.toml", "script.json"):
        shutil.copy(example / name, tmp_path / name)
    shutil.copytree(example / "workspace", tmp_path / "workspace")
    project = Project(tmp_path)
    install(project)
    result = project.run(
        json.loads((tmp_path / "script.json").read_text()),
        "--frozen",
        expert="support-analyst",
        query="Triage the tickets",
    )
    assert result.code == 0, result.stderr
    types = result.types()
    assert types.index("startGeneration") < types.index("skillStarting")
    starting = result.of("skillStarting")
    assert [e.skill_name for e in starting] == ["time"]
    assert starting[0].command == "mcp-server-time"
    called = result.of("resolveToolResults")[0].tool_results[0]
    assert called.tool_name == "get_current_time" and not called.is_error
    assert '"timezone": "UTC"' in called.result[0].text
    assert "time" in [e.skill_name for e in result.of("skillDisconnected")]
    assert "Dated with get_current_time" in (tmp_path / "workspace" / "report.md").read_text()


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("exit-at-once", "the server exited with code 3"),
        ("hang-at-start", "did not finish starting within 1 s"),
    ],
)
def test_a_server_failing_its_lazy_start_stops_the_run_by_error_with_a_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str, expected: str
) -> None:
    monkeypatch.setenv("FAKE_MCP_MODE", "serve")
    project = project_with(tmp_path, extra='requiredEnv = ["FAKE_MCP_MODE"]')
    install(project)
    monkeypatch.setenv("FAKE_MCP_MODE", mode)
    monkeypatch.setenv("PERSTACK_MCP_START_TIMEOUT_MS", "1000")
    result = project.run([ECHO, DONE])
    assert result.code == 1
    checkpoint = stop_error(project, result.events)
    assert checkpoint.error is not None and expected in checkpoint.error.message
    assert "fake server:" in checkpoint.error.message  # its stderr, quoted
    assert no_server_left(project)
