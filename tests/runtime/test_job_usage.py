"""A Job's token usage is the sum over its generations, however many Runs and processes it
took; a checkpoint carries the Job's running total, as the reference's do."""

import contextlib
import io
from pathlib import Path

from runtime.checkpoint import Checkpoint, Job, Usage
from runtime.cli import main
from runtime.events import parse_event
from tests.runtime.harness import TEAM_TOML, Project, make_project

LOOK = {"tool_use": [{"name": "listDirectory", "input": {"path": "."}}]}


def job_of(project: Project) -> Job:
    return Job.model_validate_json(
        next(project.workspace.glob("perstack/jobs/*/job.json")).read_bytes()
    )


def generations_on_disk(project: Project) -> Usage:
    """The sum over the generations the job's event files record."""
    total = Usage()
    for path in project.workspace.glob("perstack/jobs/*/runs/*/event-*.json"):
        event = parse_event(path.read_text())
        if event.type in ("callTools", "completeRun", "retry"):
            total = total + event.usage  # type: ignore[union-attr]
    return total


def latest_checkpoint(project: Project) -> Checkpoint:
    paths = project.workspace.glob("perstack/jobs/*/checkpoints/*.json")
    saved = [Checkpoint.model_validate_json(p.read_bytes()) for p in paths]
    return max(saved, key=lambda c: c.usage.total_tokens)


def test_usage_is_not_counted_twice_after_continue(project: Project) -> None:
    first = project.run([LOOK, LOOK], "--max-steps", "2")
    assert first.code == 3
    second = project.run([LOOK, {"text": "done"}], "--continue", "--max-steps", "20")
    assert second.code == 0
    generations = first.generation_usage() + second.generation_usage()
    assert generations == generations_on_disk(project)
    assert job_of(project).usage == generations
    assert second.of("completeRun")[0].checkpoint.usage == generations
    assert latest_checkpoint(project).usage == generations

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["log", "--workspace", str(project.workspace), "--summary"]) == 0
    assert f"{generations.input_tokens} in" in out.getvalue()


def test_an_answered_question_does_not_count_the_first_run_twice(tmp_path: Path) -> None:
    team = make_project(tmp_path, TEAM_TOML)
    ask = {"tool_use": [{"name": "askUser", "input": {"question": "Which file?"}}]}
    asked = team.run([ask], expert="asker")
    assert asked.code == 4
    script = team.script([{"text": "You chose notes.txt."}], "answer.json")
    args = team.args("asker", "notes.txt", script, "--continue", "-i")
    shown = io.StringIO()
    with contextlib.redirect_stdout(shown):
        assert main(["start", *args[1:]]) == 0
    job = job_of(team)
    assert job.usage == generations_on_disk(team)
    assert job.usage.input_tokens > asked.generation_usage().input_tokens
    # `perstack start`'s last line gives the job's tokens, each generation once.
    assert f"job tokens in {job.usage.input_tokens} " in shown.getvalue()


def test_a_delegates_tokens_count_once_in_the_job_and_in_its_coordinators_checkpoints(
    tmp_path: Path,
) -> None:
    team = make_project(tmp_path, TEAM_TOML)
    turns = [
        {"tool_use": [{"name": "checker", "input": {"query": "check"}}]},
        {"text": "checked"},
        {"text": "The checker agrees."},
    ]
    result = team.run(turns, expert="lead")
    assert result.code == 0
    total = result.generation_usage()
    assert job_of(team).usage == total
    checker, lead = result.of("completeRun")
    assert checker.expert_key == "checker" and lead.checkpoint.usage == total
    assert checker.checkpoint.usage.total_tokens < total.total_tokens
