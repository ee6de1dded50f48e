"""Jobs: delegation, interactive tools, continue and resume."""

import json
from pathlib import Path

import pytest

from runtime.checkpoint import Checkpoint, Job
from tests.runtime.harness import REPO, TEAM_TOML, Project, make_project

DONE = [{"tool_use": [{"name": "attemptCompletion", "input": {}}]}]


@pytest.fixture
def team(tmp_path: Path) -> Project:
    return make_project(tmp_path, TEAM_TOML)


def delegate(name: str, query: str) -> dict[str, object]:
    return {"name": name, "input": {"query": query}}


def job_of(project: Project) -> Job:
    return Job.model_validate_json(
        next(project.workspace.glob("perstack/jobs/*/job.json")).read_bytes()
    )


def checkpoints(project: Project) -> list[Checkpoint]:
    return [
        Checkpoint.model_validate_json(p.read_bytes())
        for p in project.workspace.glob("perstack/jobs/*/checkpoints/*.json")
    ]


def test_a_two_level_delegation_runs_three_experts_in_one_job(team: Project) -> None:
    turns = [
        {"tool_use": [delegate("helper", "What is 2 + 3?")]},  # lead, step 1
        {"tool_use": [delegate("checker", "Is 2 + 3 = 5?")]},  # helper, step 2
        {"text": "Yes, 5 is right."},  # checker, step 3
        {"text": "2 + 3 = 5 (checked)."},  # helper, step 4
        {"text": "The helper says 2 + 3 = 5."},  # lead, step 5
    ]
    result = team.run(turns, expert="lead", query="Ask the helper")
    assert result.code == 0
    completes = result.of("completeRun")
    assert [c.expert_key for c in completes] == ["checker", "helper", "lead"]
    assert len({c.run_id for c in completes}) == 3
    assert len({c.job_id for c in completes}) == 1
    assert [c.step_number for c in completes] == [3, 4, 5]
    lead_results = [r for r in result.of("resolveToolResults") if r.expert_key == "lead"]
    assert lead_results[0].tool_results[0].result[0].text == "2 + 3 = 5 (checked)."
    assert result.of("callDelegate")
    helper_checkpoints = [c for c in checkpoints(team) if c.expert.key == "helper"]
    assert helper_checkpoints and all(c.delegated_by is not None for c in helper_checkpoints)
    assert helper_checkpoints[0].delegated_by.expert.key == "lead"  # type: ignore[union-attr]
    job = job_of(team)
    assert job.status == "completed" and job.total_steps == 5
    assert job.usage == result.generation_usage()
    assert completes[-1].checkpoint.usage == job.usage  # the job's running total


def test_two_delegates_called_in_one_turn_run_concurrently(team: Project) -> None:
    turns = [
        {"tool_use": [delegate("helper", "part one"), delegate("checker", "part two")]},
        {"text": "answer"},
        {"text": "answer"},
        {"text": "Both done."},
    ]
    result = team.run(turns, expert="lead")
    assert result.code == 0
    starts = [e for e in result.of("startRun") if e.expert_key != "lead"]
    finishes = [e for e in result.of("completeRun") if e.expert_key != "lead"]
    # Both delegated runs started before either finished.
    first_finish = result.events.index(finishes[0])
    assert all(result.events.index(s) < first_finish for s in starts)
    results = result.of("resolveToolResults")[-1].tool_results
    assert [r.tool_name for r in results] == ["helper", "checker"]


def test_a_failing_delegate_returns_an_error_result_to_its_coordinator(team: Project) -> None:
    turns = [
        {"tool_use": [delegate("checker", "check")]},
        {"http_error": {"status": 400, "type": "invalid_request_error", "message": "bad"}},
        {"text": "The checker failed, so I stop here."},
    ]
    result = team.run(turns, expert="lead")
    assert result.code == 0
    assert result.of("stopRunByError")[0].expert_key == "checker"
    lead_result = result.of("resolveToolResults")[0].tool_results[0]
    assert lead_result.is_error
    assert "failed" in lead_result.result[0].text


def test_a_delegate_that_finishes_with_no_text_gives_an_empty_result(team: Project) -> None:
    turns = [
        {"tool_use": [delegate("checker", "check")]},
        *DONE,
        {"text": ""},
        {"text": "ok"},
    ]
    result = team.run(turns, expert="lead")
    assert result.code == 0
    lead_result = result.of("resolveToolResults")[0].tool_results[0]
    assert not lead_result.is_error
    assert lead_result.result[0].text == ""


def test_an_interactive_question_is_answered_in_a_second_process(team: Project) -> None:
    ask = {"tool_use": [{"name": "askUser", "input": {"question": "Which file?"}}]}
    first = team.run([ask], expert="asker", query="Summarise a file")
    assert first.code == 4
    stop = first.of("stopRunByInteractiveTool")[0]
    assert stop.checkpoint.pending_tool_calls[0].tool_name == "askUser"
    assert first.of("callInteractiveTool")

    answer_script = team.script([{"text": "You chose notes.txt."}], "answer.json")
    process = team.spawn(team.args("asker", "notes.txt", answer_script, "--continue", "-i"))
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    init = events[0]
    assert init["type"] == "initializeRuntime"
    assert init["interactiveToolCall"]["text"] == "notes.txt"
    assert init["jobId"] == stop.job_id and init["runId"] != stop.run_id
    finish = next(e for e in events if e["type"] == "finishAllToolCalls")
    result_part = finish["newMessages"][0]["contents"][0]
    assert result_part["toolName"] == "askUser"
    assert result_part["contents"][0]["text"] == "notes.txt"
    assert events[-2]["type"] == "completeRun"
    assert job_of(team).status == "completed"


def test_continuing_a_waiting_job_without_an_answer_is_refused(team: Project) -> None:
    ask = {"tool_use": [{"name": "askUser", "input": {"question": "Which file?"}}]}
    assert team.run([ask], expert="asker").code == 4
    result = team.run([{"text": "x"}], "--continue", expert="asker")
    assert result.code == 2
    assert "pass -i" in result.stderr


def test_delegated_experts_are_not_offered_interactive_tools(tmp_path: Path) -> None:
    toml = TEAM_TOML.replace('delegates = ["helper", "checker"]', 'delegates = ["asker"]')
    project = make_project(tmp_path, toml)
    turns = [
        {"tool_use": [delegate("asker", "hi")]},
        {"tool_use": [{"name": "askUser", "input": {"question": "?"}}]},
        {"text": "no one to ask"},
        {"text": "done"},
    ]
    result = project.run(turns, expert="lead")
    assert result.code == 0
    asker_results = [r for r in result.of("resolveToolResults") if r.expert_key == "asker"]
    assert asker_results[0].tool_results[0].is_error
    assert "askUser" in asker_results[0].tool_results[0].result[0].text


def test_a_run_stopped_by_max_steps_is_resumed_from_its_last_checkpoint(
    project: Project,
) -> None:
    look = {"tool_use": [{"name": "listDirectory", "input": {"path": "."}}]}
    first = project.run([look] * 2, "--max-steps", "2")
    assert first.code == 3
    assert job_of(project).status == "stoppedByMaxSteps"
    second = project.run(
        [look, {"text": "finished"}], "--continue", "--max-steps", "4", query="go on"
    )
    assert second.code == 0
    assert second.of("startRun")[0].step_number == 3
    assert second.of("completeRun")[0].step_number == 4
    messages = second.of("completeRun")[0].checkpoint.messages
    assert sum(m.type == "userMessage" for m in messages) == 2
    job = job_of(project)
    assert job.status == "completed" and job.total_steps == 4


def test_resume_from_a_named_checkpoint(project: Project) -> None:
    look = {"tool_use": [{"name": "listDirectory", "input": {"path": "."}}]}
    first = project.run([look, look, {"text": "end"}])
    step_one = first.of("continueToNextStep")[0].checkpoint
    second = project.run(
        [{"text": "again"}],
        "--continue-job",
        step_one.job_id,
        "--resume-from",
        step_one.id,
        query="retry differently",
    )
    assert second.code == 0
    messages = second.of("completeRun")[0].checkpoint.messages
    # The step-one history, the new query, the new answer: later steps are not there.
    assert [m.type for m in messages] == [
        "instructionMessage",
        "userMessage",
        "expertMessage",
        "toolMessage",
        "userMessage",
        "expertMessage",
    ]


def test_continue_job_takes_a_unique_prefix_and_lists_the_jobs_when_it_names_none(
    project: Project,
) -> None:
    first = project.run([{"text": "one"}], "--job-id", "alpha-1")
    assert first.code == 0
    assert project.run([{"text": "two"}], "--job-id", "beta-1").code == 0

    continued = project.run([{"text": "again"}], "--continue-job", "alp", query="go on")
    assert continued.code == 0
    assert continued.of("startRun")[0].job_id == "alpha-1"

    unknown = project.run([], "--continue-job", "gamma", query="go on")
    assert unknown.code == 2
    assert "--continue-job gamma: no such job in" in unknown.stderr
    assert "newest first: alpha-1, beta-1" in unknown.stderr


def test_flags_that_contradict_each_other_are_refused(project: Project) -> None:
    assert project.run([], "--resume-from", "x").code == 2
    assert project.run([], "-i").code == 2
    assert project.run([], "--continue").code == 2  # no job yet


def test_a_server_that_cannot_start_stops_the_run_with_an_event_and_a_checkpoint(
    tmp_path: Path,
) -> None:
    import sys

    toml = f"""
[experts."worker"]
instruction = "x"
[experts."worker".skills."@perstack/base"]
type = "mcpStdioSkill"
command = "npx"
packageName = "@perstack/base"
[experts."worker".skills."broken"]
type = "mcpStdioSkill"
command = "{sys.executable}"
args = ["{REPO / "tests" / "fakes" / "mcp_server.py"}", "exit-at-once"]
"""
    project = make_project(tmp_path, toml)
    result = project.run([{"text": "never asked"}])
    assert result.code == 1
    stop = result.of("stopRunByError")[0]
    assert "broken" in stop.error.message
    assert "cannot open /nonexistent/db.sqlite" in stop.error.message  # the server's stderr
    assert stop.checkpoint.status == "stoppedByError"
    assert any(c.status == "stoppedByError" for c in checkpoints(project))
    assert job_of(project).status == "stoppedByError"
