"""Whole runs as a user starts them: child processes, signals, the real SDK over loopback."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runtime.checkpoint import Checkpoint
from runtime.events import parse_event
from tests.fakes import FakeMessagesAPI
from tests.runtime.harness import REPO, Project

EXAMPLE = REPO / "examples" / "support-report"


def test_importing_the_runtime_loads_no_prefect_pyarrow_or_duckdb() -> None:
    code = (
        "import sys, runtime.cli, runtime.executor, runtime.run, runtime.events; "
        "bad = [m for m in ('prefect', 'pyarrow', 'duckdb') if m in sys.modules]; "
        "print(','.join(bad))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert out.stdout.strip() == ""


def test_sigterm_stops_the_run_promptly_with_a_final_checkpoint_and_event(
    project: Project,
) -> None:
    slow = {
        "tool_use": [
            {
                "name": "exec",
                "input": {
                    "command": "sleep",
                    "args": ["30"],
                    "env": {},
                    "cwd": ".",
                    "stdout": True,
                    "stderr": True,
                },
            }
        ]
    }
    process = project.spawn(project.args("worker", "sleep", project.script([slow] * 3)))
    assert process.stdout is not None
    for line in process.stdout:  # wait until the tool is running
        if json.loads(line)["type"] == "callTools":
            break
    time.sleep(0.3)
    sent = time.monotonic()
    process.send_signal(signal.SIGTERM)
    rest, _ = process.communicate(timeout=20)
    assert time.monotonic() - sent < 10
    assert process.returncode == 128 + signal.SIGTERM
    types = [json.loads(line)["type"] for line in rest.splitlines()]
    assert "stopRunByError" in types
    stop = parse_event(next(line for line in rest.splitlines() if "stopRunByError" in line))
    assert stop.checkpoint.status == "stoppedByError"  # type: ignore[union-attr]
    assert stop.checkpoint.pending_tool_calls  # type: ignore[union-attr]
    saved = [
        Checkpoint.model_validate_json(p.read_bytes())
        for p in project.workspace.glob("perstack/jobs/*/checkpoints/*.json")
    ]
    assert any(c.status == "stoppedByError" for c in saved)
    job = json.loads(next(project.workspace.glob("perstack/jobs/*/job.json")).read_text())
    assert job["status"] == "stoppedByError"


def test_the_example_completes_through_the_real_sdk_against_the_fake_server(
    tmp_path: Path,
) -> None:
    workspace = tmp_path / "workspace"
    shutil.copytree(EXAMPLE / "workspace", workspace)
    with FakeMessagesAPI(EXAMPLE / "script.json") as api:
        process = subprocess.run(
            [
                sys.executable,
                "-m",
                "runtime.cli",
                "run",
                "support-analyst",
                "Triage the tickets",
                "--config",
                str(EXAMPLE / "perstack.toml"),
                "--workspace",
                str(workspace),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=REPO,
            env={**os.environ, "ANTHROPIC_API_KEY": "sk-test", "ANTHROPIC_BASE_URL": api.url_v1},
        )
        requests = list(api.requests)
    assert process.returncode == 0, process.stderr
    events = [parse_event(line) for line in process.stdout.splitlines()]
    # After the stop event come only the skills' skillDisconnected events.
    assert [e.type for e in events if not e.type.startswith("skill")][-1] == "completeRun"
    assert "1042" in (workspace / "report.md").read_text()
    assert list(workspace.glob("perstack/jobs/*/checkpoints/*.json"))
    first = requests[0].body
    assert first["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert {t["name"] for t in first["tools"]} >= {"readTextFile", "attemptCompletion"}
    assert "tools" not in requests[-1].body or not requests[-1].body["tools"]


def test_a_stream_that_breaks_off_leaves_no_half_turn_in_any_checkpoint(
    project: Project, tmp_path: Path
) -> None:
    turns = [
        {
            "thinking": "half",
            "tool_use": [{"name": "listDirectory", "input": {"path": "."}}],
            "drop_after_events": 4,
        },
        {"text": "whole"},
    ]
    with FakeMessagesAPI(turns) as api:
        process = project.spawn(
            project.args("worker", "hi", None),
            env={
                "ANTHROPIC_API_KEY": "sk-test",
                "ANTHROPIC_BASE_URL": api.url_v1,
                "PERSTACK_RETRY_BASE_DELAY_MS": "10",
            },
        )
        out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    types = [json.loads(line)["type"] for line in out.splitlines()]
    assert "retry" in types and "callTools" not in types
    saved = [
        Checkpoint.model_validate_json(p.read_bytes())
        for p in project.workspace.glob("perstack/jobs/*/checkpoints/*.json")
    ]
    for checkpoint in saved:
        for message in checkpoint.messages:
            assert "listDirectory" not in message.model_dump_json()


def pause(seconds: str) -> dict[str, object]:
    args = {"command": "sleep", "args": [seconds], "env": {}, "cwd": "."}
    return {"tool_use": [{"name": "exec", "input": {**args, "stdout": True, "stderr": True}}]}


@pytest.mark.parametrize("command", ["run", "start"])
def test_a_reader_that_closes_stdout_early_does_not_break_the_run(
    project: Project, command: str
) -> None:
    """`perstack run … | head -1`: the run goes on, writes its files, exits normally."""
    script = project.script([pause("0.5"), pause("0.1"), {"text": "done"}])
    args = project.args("worker", "go", script)
    process = project.spawn([command, *args[1:]])
    assert process.stdout is not None and process.stderr is not None
    process.stdout.readline()
    process.stdout.close()  # as `head -1` does
    with process.stderr:
        err = process.stderr.read()
    assert process.wait(timeout=30) == 0, err
    assert "Traceback" not in err and "Exception ignored" not in err
    assert err.count("stdout was closed") == 1
    job = json.loads(next(project.workspace.glob("perstack/jobs/*/job.json")).read_text())
    assert job["status"] == "completed" and job["totalSteps"] == 3
    assert list(project.workspace.glob("perstack/jobs/*/runs/*/event-*-3-completeRun.json"))
    saved = [
        Checkpoint.model_validate_json(p.read_bytes())
        for p in project.workspace.glob("perstack/jobs/*/checkpoints/*.json")
    ]
    assert "completed" in {c.status for c in saved}


def unusable_call(name: str, raw_input: str) -> dict[str, object]:
    return {"tool_use": [{"name": name, "input": {}, "partial_json": [raw_input]}]}


def test_tool_input_out_of_range_or_too_deep_is_an_error_result_and_the_run_goes_on(
    project: Project,
) -> None:
    turns = [
        unusable_call("readTextFile", '{"path": "a", "from": 1e999}'),
        unusable_call("nosuchtool", '{"x": -1e400}'),
        unusable_call("todo", '{"completedTodos": [' + "9" * 5000 + "]}"),
        unusable_call("readTextFile", '{"path": ' + "[" * 100_000 + "]" * 100_000 + "}"),
        unusable_call("readTextFile", '{"path": NaN}'),
        {"text": "done"},
    ]
    with FakeMessagesAPI(turns) as api:
        process = project.spawn(
            project.args("worker", "hi", None),
            env={"ANTHROPIC_API_KEY": "sk-test", "ANTHROPIC_BASE_URL": api.url_v1},
        )
        out, err = process.communicate(timeout=60)
        requests = list(api.requests)
    assert process.returncode == 0, err
    events = [parse_event(line) for line in out.splitlines()]
    results = [r for e in events if e.type == "resolveToolResults" for r in e.tool_results]
    assert len(results) == 5 and all(r.is_error for r in results)
    texts = [r.result[0].text for r in results]
    assert "the number 1e999 is out of range" in texts[0]
    assert "the number -1e400 is out of range" in texts[1]
    assert "has 5000 digits" in texts[2]
    assert "nests deeper than 100 levels" in texts[3]
    assert "NaN is not a number JSON allows" in texts[4]
    assert all(t.startswith("The arguments of this call could not be used") for t in texts)
    # Each call goes back to the model with empty arguments, next to the reason.
    last = requests[-1].body["messages"]
    inputs = [b["input"] for m in last for b in m["content"] if b.get("type") == "tool_use"]
    assert inputs == [{}] * 5
    assert [e.type for e in events if not e.type.startswith("skill")][-1] == "completeRun"
