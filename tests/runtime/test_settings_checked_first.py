"""Settings that are accepted but wrong are refused before anything is written: the error
names the file or option, the value and the fix (exit 2), and the workspace is left as it
was (not even created)."""

import contextlib
import io
from pathlib import Path

import pytest

from runtime.cli import main
from tests.runtime.harness import WORKER_TOML, Project, make_project

DONE = [{"text": "done"}]


def refused(project: Project, *extra: str, workspace: Path | None = None) -> str:
    """stderr of a run that must be refused as bad usage, having written nothing."""
    target = workspace or project.workspace
    args = project.args("worker", "go", project.script(DONE), *extra)
    args[args.index("--workspace") + 1] = str(target)
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()) as out:
        try:
            code = main(args)
        except SystemExit as exit_:  # argparse's own errors
            code = int(exit_.code or 0)
    assert code == 2, err.getvalue()
    assert out.getvalue() == ""  # no event
    assert not (target / "perstack").exists()
    text = err.getvalue()
    assert "Traceback" not in text and "pydantic" not in text
    return text


@pytest.mark.parametrize("budget", ["-5", "100000", "64000", "1000", '"ultra"', "1.5", "true"])
def test_a_reasoning_budget_the_api_would_refuse_is_a_config_error(
    tmp_path: Path, budget: str
) -> None:
    project = make_project(tmp_path, f"reasoningBudget = {budget}\n{WORKER_TOML}")
    err = refused(project)
    assert f"{project.config}: reasoningBudget: must be one of" in err
    assert "from 1024 to 63999" in err and "0 turns extended thinking off" in err
    assert "(got " in err
    assert "literal[" not in err and ".int:" not in err  # no pydantic internals


@pytest.mark.parametrize("budget", ["0", "1024", "63999", "2048.0", '"high"'])
def test_a_usable_reasoning_budget_is_accepted(tmp_path: Path, budget: str) -> None:
    project = make_project(tmp_path, f"reasoningBudget = {budget}\n{WORKER_TOML}")
    assert project.run(DONE).code == 0


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [
        ("--max-retries", "-5", "argument --max-retries: must be 0 or more, got -5"),
        ("--max-retries", "two", "argument --max-retries: 'two' is not a whole number"),
        ("--max-steps", "abc", "argument --max-steps: 'abc' is not a whole number"),
        ("--timeout", "0", "argument --timeout: must be at least 1, got 0"),
    ],
)
def test_a_bad_number_on_the_command_line_names_the_option_and_the_value(
    project: Project, option: str, value: str, says: str
) -> None:
    assert says in refused(project, option, value)


@pytest.mark.parametrize("delay", ["-1000", "nan", "inf", "abc", ""])
def test_a_bad_retry_delay_is_refused_before_a_job_folder_is_made(
    project: Project, monkeypatch: pytest.MonkeyPatch, delay: str
) -> None:
    monkeypatch.setenv("PERSTACK_RETRY_BASE_DELAY_MS", delay)
    err = refused(project)
    assert f"PERSTACK_RETRY_BASE_DELAY_MS={delay!r} is not a number of milliseconds" in err
    assert "set it to 0 or more" in err


def test_a_run_refused_for_its_settings_does_not_create_its_workspace(project: Project) -> None:
    new = project.root / "new-ws"
    refused(project, "--max-retries", "-1", workspace=new)
    args = project.args("nobody", "go", project.script(DONE))
    args[args.index("--workspace") + 1] = str(new)
    with contextlib.redirect_stderr(io.StringIO()) as err:
        assert main(args) == 2
    assert "no Expert named 'nobody'" in err.getvalue()
    assert not new.exists()
