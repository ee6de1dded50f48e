"""maxSteps counts the whole Job: no generation past it in any Run, delegated or continued,
and delegations nest only so deep."""

from pathlib import Path

import pytest

from runtime.executor import MAX_DELEGATION_DEPTH
from tests.runtime.harness import TEAM_TOML, Project, Result, make_project

SELF_TOML = """
[experts."self"]
description = "Does it again"
instruction = "Delegate to yourself."
delegates = ["self"]

[experts."lead"]
instruction = "Coordinate."
delegates = ["worker"]

[experts."worker"]
description = "Works"
instruction = "Work."
"""
LOOK = {"tool_use": [{"name": "listDirectory", "input": {"path": "."}}]}


def delegate(name: str, query: str = "again") -> dict[str, object]:
    return {"tool_use": [{"name": name, "input": {"query": query}}]}


def generation_steps(result: Result) -> list[int]:
    return [e.step_number for e in result.of("startGeneration")]


@pytest.fixture
def selfish(tmp_path: Path) -> Project:
    return make_project(tmp_path, SELF_TOML)


def test_a_self_delegating_expert_never_generates_past_max_steps(selfish: Project) -> None:
    result = selfish.run([delegate("self")] * 30, "--max-steps", "10", expert="self")
    assert result.code == 3
    assert generation_steps(result) == list(range(1, 11))
    coordinator = result.of("startRun")[0].run_id
    assert result.of("stopRunByExceededMaxSteps")[-1].run_id == coordinator
    assert len(result.of("startRun")) == MAX_DELEGATION_DEPTH + 1


def test_delegations_nest_only_so_deep_and_the_deepest_hears_why(selfish: Project) -> None:
    levels = MAX_DELEGATION_DEPTH + 1  # the coordinator and its nested delegates
    turns = [delegate("self")] * levels + [{"text": "done"}] * levels
    result = selfish.run(turns, "--max-steps", "100", expert="self")
    assert result.code == 0
    assert len(result.of("startRun")) == levels
    refused = [
        r
        for event in result.of("resolveToolResults")
        for r in event.tool_results
        if r.is_error and "nest at most" in r.result[0].text
    ]
    assert len(refused) == 1
    assert f"at most {MAX_DELEGATION_DEPTH} levels deep" in refused[0].result[0].text


def test_a_delegate_called_on_the_last_step_is_not_started(selfish: Project) -> None:
    result = selfish.run([delegate("worker"), {"text": "never"}], "--max-steps", "1", expert="lead")
    assert result.code == 3
    assert generation_steps(result) == [1]
    assert [e.expert_key for e in result.of("startRun")] == ["lead"]
    answer = result.of("resolveToolResults")[0].tool_results[0]
    assert answer.is_error and "used all 1 steps of its maxSteps" in answer.result[0].text
    assert result.of("stopRunByExceededMaxSteps")[0].expert_key == "lead"


def test_two_delegates_in_one_turn_cannot_both_take_the_last_step(selfish: Project) -> None:
    turns = [
        {
            "tool_use": [
                {"name": "worker", "input": {"query": "a"}},
                {"name": "worker", "input": {"query": "b"}},
            ]
        },
        LOOK,
        LOOK,
        {"text": "never"},
    ]
    result = selfish.run(turns, "--max-steps", "2", expert="lead")
    assert result.code == 3
    assert generation_steps(result) == [1, 2]
    answers = result.of("resolveToolResults")[-1].tool_results
    assert [a.is_error for a in answers] == [True, True]
    assert "was not started" in answers[1].result[0].text


def test_continuing_a_job_with_no_step_left_stops_at_once_without_a_model_call(
    project: Project, caplog: pytest.LogCaptureFixture
) -> None:
    assert project.run([LOOK] * 2, "--max-steps", "2").code == 3
    again = project.run([{"text": "must not be played"}], "--continue", "--max-steps", "2")
    assert again.code == 3
    assert "startGeneration" not in again.types()
    stop = again.of("stopRunByExceededMaxSteps")[0]
    assert stop.step_number == 2 and stop.checkpoint.status == "stoppedByExceededMaxSteps"
    assert "continue it with a higher --max-steps" in caplog.text

    raised = project.run([{"text": "finished"}], "--continue", "--max-steps", "3")
    assert raised.code == 0
    assert generation_steps(raised) == [3]
    history = raised.of("completeRun")[0].checkpoint.messages
    queries = [m for m in history if m.type == "userMessage"]
    assert len(queries) == 2  # the first query and the last: the unheard one is not kept


def test_an_answer_given_when_no_step_is_left_is_kept_for_the_next_run(tmp_path: Path) -> None:
    team = make_project(tmp_path, TEAM_TOML)
    ask = {"tool_use": [{"name": "askUser", "input": {"question": "Which file?"}}]}
    assert team.run([ask], "--max-steps", "1", expert="asker").code == 4
    answered = team.run(
        [{"text": "must not be played"}],
        "--continue",
        "-i",
        "--max-steps",
        "1",
        expert="asker",
        query="notes.txt",
    )
    assert answered.code == 3
    assert "startGeneration" not in answered.types()
    kept = answered.of("stopRunByExceededMaxSteps")[0].checkpoint
    assert kept.messages[-1].type == "toolMessage"
    assert kept.messages[-1].contents[0].contents[0].text == "notes.txt"
    assert not kept.pending_tool_calls

    goes_on = team.run(
        [{"text": "Summary of notes.txt"}], "--continue", "--max-steps", "3", expert="asker"
    )
    assert goes_on.code == 0, goes_on.stderr
