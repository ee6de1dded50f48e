"""`perstack run` and `start`: usage errors that run nothing and leave nothing behind, ids
given by prefix, and what reaches a person's terminal."""

import contextlib
import io
from pathlib import Path

import pytest

from runtime.checkpoint import Checkpoint
from runtime.cli import main
from runtime.text import visible
from tests.runtime.harness import WORKER_TOML, Project, make_project

STEPS = [{"tool_use": [{"name": "listDirectory", "input": {"path": "."}}]}, {"text": "done"}]


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return make_project(tmp_path, WORKER_TOML)


def checkpoints(project: Project) -> list[Checkpoint]:
    paths = project.workspace.glob("perstack/jobs/*/checkpoints/*.json")
    found = [Checkpoint.model_validate_json(p.read_bytes()) for p in paths]
    return sorted(found, key=lambda c: c.step_number)


def test_resume_from_takes_a_unique_prefix_of_a_checkpoint_id(project: Project) -> None:
    # Regression (newuser #6): only the full id worked, unlike every other id option.
    first = project.run(STEPS)
    job_id = first.events[0].job_id
    step_one = checkpoints(project)[0]
    again = project.run(
        [{"text": "again"}], "--continue-job", job_id[:6], "--resume-from", step_one.id[:6]
    )
    assert again.code == 0
    start = again.of("startRun")[0]
    assert start.initial_checkpoint.id == step_one.id


def test_an_unknown_resume_from_lists_the_jobs_checkpoints(project: Project) -> None:
    job_id = project.run(STEPS).events[0].job_id
    result = project.run([{"text": "x"}], "--continue-job", job_id, "--resume-from", "zzzz")
    assert result.code == 2 and result.events == []
    assert f"--resume-from zzzz: job {job_id} has no such checkpoint" in result.stderr
    assert all(c.id in result.stderr for c in checkpoints(project))


@pytest.mark.parametrize(
    "extra",
    [("--continue",), ("--resume-from", "x", "--continue-job", "nojob")],
)
def test_a_rejected_continue_creates_no_workspace(project: Project, extra: tuple[str, ...]) -> None:
    # Regression (newuser #13): "created the workspace folder", then exit 2.
    target = project.root / "new-workspace"
    script = project.script([{"text": "x"}])
    args = ["run", "worker", "x", "--config", str(project.config), "--workspace", str(target)]
    args += ["--provider", "scripted", "--script", str(script), *extra]
    assert main(args) == 2
    assert not target.exists()


def test_an_unknown_expert_or_a_missing_key_creates_no_workspace(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = project.root / "new-workspace"
    args = ["run", "wroker", "x", "--config", str(project.config), "--workspace", str(target)]
    assert main([*args, "--provider", "scripted", "--script", str(project.script([]))]) == 2
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    assert main(["run", "worker", *args[2:]]) == 2
    assert not target.exists()


def test_a_run_that_starts_creates_its_new_workspace(project: Project) -> None:
    target = project.root / "new-workspace"
    script = project.script([{"text": "done"}])
    args = ["run", "worker", "x", "--config", str(project.config), "--workspace", str(target)]
    with contextlib.redirect_stdout(io.StringIO()):
        assert main([*args, "--provider", "scripted", "--script", str(script)]) == 0
    assert list(target.glob("perstack/jobs/*/job.json"))


def test_start_shows_terminal_control_codes_instead_of_obeying_them(project: Project) -> None:
    # Regression (loop #14): an answer's ESC sequences reached the terminal raw.
    answer = "final \x1b[31mRED\x1b[0m\x1b]0;title\x07"
    tool = {"name": "writeTextFile", "input": {"path": "a.txt", "text": "\x1b[2J"}}
    script = project.script([{"tool_use": [tool]}, {"text": answer}])
    args = ["start", "worker", "x", "--config", str(project.config)]
    args += ["--workspace", str(project.workspace), "--provider", "scripted", "--script"]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main([*args, str(script)]) == 0
    shown = out.getvalue()
    assert "\x1b" not in shown and "\x07" not in shown
    assert "final \\x1b[31mRED\\x1b[0m\\x1b]0;title\\x07" in shown


def test_visible_escapes_control_characters_but_keeps_lines_and_tabs() -> None:
    assert visible("a\x1b[0mb\rc\x9b\x7f\x00") == "a\\x1b[0mb\\x0dc\\x9b\\x7f\\x00"
    assert visible("line one\n\tline two é ✓") == "line one\n\tline two é ✓"


def test_run_help_states_the_defaults_and_the_exit_codes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Regression (newuser #14): -i, the defaults and the exit codes were not told here.
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert "providerName in perstack.toml, else anthropic" in shown
    assert "maxSteps in perstack.toml, else 100" in shown
    assert "the query is the answer to the interactive tool call" in shown
    assert "4 the run is waiting for an answer to an interactive tool" in shown
