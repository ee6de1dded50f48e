"""The agent loop's rules, through `perstack run` with the scripted provider and the real
built-in skill."""

import contextlib
import io
import json
from pathlib import Path

import pytest

from runtime.checkpoint import Checkpoint
from runtime.events import parse_event
from tests.runtime.harness import Project

DONE = [{"tool_use": [{"name": "attemptCompletion", "input": {}}]}, {"text": "All done."}]


def checkpoints(project: Project) -> list[Checkpoint]:
    files = project.workspace.glob("perstack/jobs/*/checkpoints/*.json")
    return sorted(
        (Checkpoint.model_validate_json(f.read_bytes()) for f in files), key=lambda c: c.step_number
    )


def test_attempt_completion_ends_the_run_after_one_generation_without_tools(
    project: Project,
) -> None:
    result = project.run(DONE)
    assert result.code == 0
    assert result.types()[-3:] == ["completeStreamingRunResult", "completeRun", "skillDisconnected"]
    complete = result.of("completeRun")[0]
    assert complete.text == "All done."
    assert complete.checkpoint.status == "completed"
    assert result.of("attemptCompletion")
    assert len(result.of("startGeneration")) == 1  # the run-result turn has none of its own


def test_text_reply_without_tool_calls_completes_the_run(project: Project) -> None:
    result = project.run([{"text": "Hello there."}])
    assert result.code == 0
    assert result.of("completeRun")[0].text == "Hello there."
    assert not result.of("callTools")


def test_each_step_writes_one_checkpoint_and_event_files_in_the_reference_layout(
    project: Project,
) -> None:
    turns = [
        {"tool_use": [{"name": "writeTextFile", "input": {"path": "a.txt", "text": "A"}}]},
        {"tool_use": [{"name": "readTextFile", "input": {"path": "a.txt"}}]},
        *DONE,
    ]
    result = project.run(turns)
    assert result.code == 0
    saved = checkpoints(project)
    assert [c.step_number for c in saved] == [1, 2, 3]
    assert saved[-1].status == "completed"
    job_dir = next(project.workspace.glob("perstack/jobs/*"))
    job = json.loads((job_dir / "job.json").read_text())
    assert job["status"] == "completed" and job["totalSteps"] == 3
    run_dir = next(job_dir.glob("runs/*"))
    assert (run_dir / "run-setting.json").is_file()
    event_files = sorted(run_dir.glob("event-*.json"))
    assert len(event_files) == len(result.events)
    assert {json.loads(f.read_text())["id"] for f in event_files} == {e.id for e in result.events}


def test_tool_calls_of_one_turn_run_concurrently_and_keep_call_order(project: Project) -> None:
    def timed(name: str) -> dict[str, object]:
        script = f"date +%s%N > {name}.start; sleep 0.4; date +%s%N > {name}.end; echo {name}"
        return {
            "name": "exec",
            "input": {
                "command": "sh",
                "args": ["-c", script],
                "env": {},
                "cwd": ".",
                "stdout": True,
                "stderr": True,
            },
        }

    result = project.run([{"tool_use": [timed("first"), timed("second")]}, *DONE])
    assert result.code == 0
    results = result.of("resolveToolResults")[0].tool_results
    assert [r.id for r in results] == [c.id for c in result.of("callTools")[0].tool_calls]
    assert "first" in results[0].result[0].text and "second" in results[1].result[0].text
    stamp = {p.name: int(p.read_text()) for p in project.workspace.glob("*.st*")}
    stamp |= {p.name: int(p.read_text()) for p in project.workspace.glob("*.end")}
    # Both started before either ended: the calls overlapped.
    assert max(stamp["first.start"], stamp["second.start"]) < min(
        stamp["first.end"], stamp["second.end"]
    )


def test_open_todos_send_attempt_completion_back_to_the_model(project: Project) -> None:
    turns = [
        {"tool_use": [{"name": "todo", "input": {"newTodos": ["write the report"]}}]},
        {"tool_use": [{"name": "attemptCompletion", "input": {}}]},
        {"tool_use": [{"name": "todo", "input": {"completedTodos": [0]}}]},
        *DONE,
    ]
    result = project.run(turns)
    assert result.code == 0
    first_attempt = result.of("resolveToolResults")[1].tool_results[0]
    assert first_attempt.tool_name == "attemptCompletion"
    assert "write the report" in first_attempt.result[0].text
    assert len(result.of("attemptCompletion")) == 1


def test_a_failing_tool_returns_an_error_result_and_the_run_goes_on(project: Project) -> None:
    turns = [
        {"tool_use": [{"name": "readTextFile", "input": {"path": "missing.txt"}}]},
        {"tool_use": [{"name": "readTextFile", "input": {"wrong": 1}}]},
        {"tool_use": [{"name": "noSuchTool", "input": {}}]},
        *DONE,
    ]
    result = project.run(turns)
    assert result.code == 0
    errors = [r.tool_results[0] for r in result.of("resolveToolResults")]
    assert [r.is_error for r in errors] == [True, True, True]
    assert "noSuchTool" in errors[2].result[0].text


def test_max_steps_runs_exactly_that_many_steps_even_when_the_model_repeats_itself(
    project: Project,
) -> None:
    same = {"tool_use": [{"name": "listDirectory", "input": {"path": "."}}]}
    result = project.run([same] * 10, "--max-steps", "3")
    assert result.code == 3
    assert len(result.of("startGeneration")) == 3
    stop = result.of("stopRunByExceededMaxSteps")[0]
    assert stop.checkpoint.status == "stoppedByExceededMaxSteps"
    assert stop.step_number == 3
    assert checkpoints(project)[-1].status == "stoppedByExceededMaxSteps"


def test_transient_errors_are_retried_with_one_retry_event_each(project: Project) -> None:
    turns = [
        {"http_error": {"status": 529, "type": "overloaded_error"}},
        {"stream_error": {"type": "overloaded_error", "message": "Overloaded"}},
        {"text": "Recovered."},
    ]
    result = project.run(turns)
    assert result.code == 0
    retries = result.of("retry")
    assert [r.attempt for r in retries] == [1, 2]
    assert result.of("completeRun")[0].text == "Recovered."


def test_retries_are_bounded_by_max_retries_and_then_the_run_stops_by_error(
    project: Project,
) -> None:
    fail = {"http_error": {"status": 500, "type": "api_error"}}
    result = project.run([fail] * 5, "--max-retries", "2")
    assert result.code == 1
    assert len(result.of("retry")) == 2
    stop = result.of("stopRunByError")[0]
    assert stop.checkpoint.status == "stoppedByError"
    assert stop.error.status_code == 500
    assert checkpoints(project)[-1].status == "stoppedByError"


def test_retry_after_is_honoured(project: Project) -> None:
    turns = [{"http_error": {"status": 429, "retry_after": 0.25}}, {"text": "ok"}]
    result = project.run(turns)
    assert result.of("retry")[0].delay_ms == 250


def test_a_client_error_is_not_retried(project: Project) -> None:
    result = project.run([{"http_error": {"status": 400, "type": "invalid_request_error"}}])
    assert result.code == 1
    assert not result.of("retry")


def test_a_generation_slower_than_the_timeout_is_retried(project: Project) -> None:
    turns = [{"text": "late", "delay_first_byte_s": 2}, {"text": "on time"}]
    result = project.run(turns, "--timeout", "300")
    assert result.code == 0
    assert "timeout" in result.of("retry")[0].reason
    assert result.of("completeRun")[0].text == "on time"


def test_an_empty_reply_is_nudged_and_counts_as_a_step(project: Project) -> None:
    result = project.run([{"text": ""}, {"text": "Now with text."}])
    assert result.code == 0
    assert result.of("retry")[0].new_messages
    assert result.of("completeRun")[0].step_number == 2


def test_a_listener_that_raises_does_not_stop_later_events(project: Project) -> None:
    from runtime.eventbus import EventBus
    from runtime.events import SkillStderr

    seen: list[str] = []

    def broken(event: object) -> None:
        raise RuntimeError("listener bug")

    bus = EventBus(listeners=[broken, lambda e: seen.append(e.type)])
    for n in range(3):
        bus.emit(SkillStderr(job_id="j", run_id="r", skill_name="s", message=str(n)))
    assert seen == ["skillStderr"] * 3


def test_bad_config_exits_2_with_the_reason_on_stderr(project: Project) -> None:
    project.config.write_text('[experts."worker"]\ninstructions = "x"\n')
    result = project.run(DONE)
    assert result.code == 2
    assert "unknown key 'instructions'" in result.stderr
    assert result.events == []


def test_stdout_carries_only_events(project: Project, tmp_path: Path) -> None:
    process = project.spawn(project.args("worker", "hi", project.script(DONE), "--verbose"))
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0
    lines = out.splitlines()
    assert lines and all(json.loads(line)["type"] for line in lines)
    assert "DEBUG" in err


def test_a_job_id_with_a_path_in_it_is_refused_before_anything_is_written(
    project: Project, tmp_path: Path
) -> None:
    result = project.run(DONE, "--job-id", "../../escaped")
    assert result.code == 2
    assert "not a valid id" in result.stderr
    assert not (tmp_path.parent / "escaped").exists()
    assert result.events == []


def test_a_file_name_that_is_not_utf8_reaches_the_model_and_the_run_goes_on(
    project: Project,
) -> None:
    import os

    os.close(os.open(bytes(project.workspace) + b"/caf\xe9.txt", os.O_CREAT | os.O_WRONLY))
    turns = [{"tool_use": [{"name": "listDirectory", "input": {"path": "."}}]}, *DONE]
    result = project.run(turns)
    assert result.code == 0, result.stderr
    listing = result.of("resolveToolResults")[0].tool_results[0].result[0].text
    assert "caf\ufffd.txt" in listing


def test_tool_arguments_that_are_not_valid_unicode_do_not_crash_the_run(
    project: Project,
) -> None:
    turns = [
        {"tool_use": [{"name": "writeTextFile", "input": {"path": "bad\udc80.txt", "text": "x"}}]},
        *DONE,
    ]
    result = project.run(turns)
    assert result.code == 0, result.stderr
    call = result.of("callTools")[0]
    assert call.tool_calls[0].args["path"] == "bad\ufffd.txt"
    assert call.new_message.contents[0].args["path"] == "bad\ufffd.txt"


def test_a_workspace_that_is_a_file_is_a_usage_error(project: Project) -> None:
    target = project.root / "not-a-folder"
    target.write_text("x")
    result = project.run(DONE, "--workspace", str(target))
    assert result.code == 2
    assert "is a file" in result.stderr


def test_a_workspace_under_a_folder_that_does_not_exist_is_a_usage_error(
    project: Project,
) -> None:
    target = project.root / "typo" / "ws"
    result = project.run(DONE, "--workspace", str(target))
    assert result.code == 2
    assert f"its parent folder {target.parent} does not exist" in result.stderr
    assert not target.parent.exists()


def test_a_new_workspace_folder_is_created_and_said_so(
    project: Project, caplog: pytest.LogCaptureFixture
) -> None:
    target = project.root / "new-ws"
    result = project.run(DONE, "--workspace", str(target))
    assert result.code == 0
    assert f"created the workspace folder {target}" in caplog.text
    assert (target / "perstack" / "jobs").is_dir()


def test_an_env_file_that_is_not_utf8_is_a_usage_error(project: Project) -> None:
    bad = project.root / "bad.env"
    bad.write_bytes(b"FOO=1\n\xff=2\n")
    result = project.run(DONE, "--env-path", str(bad))
    assert result.code == 2
    assert "bad.env" in result.stderr and "UTF-8" in result.stderr


def test_a_missing_api_key_is_reported_before_any_job_is_written(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runtime.cli import main

    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    code = main(
        [
            "run",
            "worker",
            "hi",
            "--config",
            str(project.config),
            "--workspace",
            str(project.workspace),
        ]
    )
    assert code == 2
    assert not (project.workspace / "perstack").exists()


def test_a_missing_required_variable_is_reported_before_any_job_is_written(
    tmp_path: Path,
) -> None:
    from tests.runtime.harness import make_project

    project = make_project(
        tmp_path,
        """
[experts."worker"]
instruction = "x"
delegates = ["helper"]
[experts."helper"]
instruction = "y"
[experts."helper".skills."needs-token"]
type = "mcpStdioSkill"
command = "true"
requiredEnv = ["PERSTACK_TEST_SURELY_UNSET"]
""",
    )
    result = project.run(DONE)
    assert result.code == 2
    assert "PERSTACK_TEST_SURELY_UNSET" in result.stderr and str(project.config) in result.stderr
    assert not (project.workspace / "perstack").exists()


def test_reusing_a_job_id_without_continue_is_refused(project: Project) -> None:
    assert project.run(DONE, "--job-id", "nightly").code == 0
    again = project.run(DONE, "--job-id", "nightly")
    assert again.code == 2
    assert "already exists" in again.stderr


def test_continue_after_a_kill_goes_on_from_the_last_checkpointed_step(
    project: Project,
) -> None:
    import json as _json
    import os
    import signal
    import time

    look = {"tool_use": [{"name": "listDirectory", "input": {"path": "."}}]}
    slow = {
        "tool_use": [
            {
                "name": "exec",
                "input": {
                    "command": "sh",
                    "args": ["-c", "echo $$ > sleeper.pid; exec sleep 30"],
                    "env": {},
                    "cwd": ".",
                    "stdout": True,
                    "stderr": True,
                },
            }
        ]
    }
    process = project.spawn(project.args("worker", "go", project.script([look, look, slow])))
    assert process.stdout is not None
    calls = 0
    for line in process.stdout:
        if _json.loads(line)["type"] == "callTools":
            calls += 1
            if calls == 3:
                break
    time.sleep(0.3)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=20)
    # A runtime killed with SIGKILL cannot stop its exec child: the container's removal
    # does that in production; here the test does.
    os.kill(int((project.workspace / "sleeper.pid").read_text()), signal.SIGKILL)
    result = project.run([{"text": "resumed"}], "--continue", query="go on")
    assert result.code == 0, result.stderr
    assert result.of("startRun")[0].step_number == 3  # steps 1 and 2 were checkpointed


def test_a_query_can_come_from_a_file_when_it_is_too_large_for_an_argument(
    project: Project,
) -> None:
    from runtime.cli import main

    query = "triage: " + "é" * 200_000
    path = project.root / "query.txt"
    path.write_text(query, encoding="utf-8")
    args = project.args("worker", "ignored", project.script(DONE))
    args.remove("ignored")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main([*args, "--query-file", str(path)]) == 0
    events = [parse_event(line) for line in out.getvalue().splitlines()]
    start = next(e for e in events if e.type == "startRun")
    assert start.input_messages[-1].contents[0].text == query  # type: ignore[union-attr]
    with contextlib.redirect_stderr(io.StringIO()):
        assert main([*args[:2], "both", *args[2:], "--query-file", str(path)]) == 2
        assert main(args) == 2
