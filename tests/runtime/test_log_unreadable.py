"""`perstack log` on files it cannot use, and on texts that hold terminal control codes."""

import contextlib
import io
from pathlib import Path

import pytest

from runtime.cli import main
from tests.runtime.harness import WORKER_TOML, Project, make_project

DONE = [{"tool_use": [{"name": "attemptCompletion", "input": {}}]}, {"text": "All done."}]


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return make_project(tmp_path, WORKER_TOML)


def log(workspace: Path, *args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["log", "--workspace", str(workspace), *args])
    return code, out.getvalue(), err.getvalue()


def _break_first_checkpoint(project: Project, text: str) -> tuple[str, Path]:
    result = project.run(DONE)
    checkpoint = result.of("completeRun")[0].checkpoint
    path = next(project.workspace.glob(f"perstack/jobs/*/checkpoints/{checkpoint.id}.json"))
    path.write_text(text)
    return checkpoint.id, path


@pytest.mark.parametrize(
    ("text", "why"),
    [("{broken", "not JSON (Expecting property name"), ('{"id": "x"}', "not a checkpoint (")],
)
def test_an_unreadable_checkpoint_asked_for_exits_1_saying_it_could_not_be_read(
    project: Project, text: str, why: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Regression (newuser #7): "unknown checkpoint", exit 2, and a pydantic dump twice.
    checkpoint_id, path = _break_first_checkpoint(project, text)
    for given in (checkpoint_id, checkpoint_id[:8]):
        caplog.clear()
        code, _, err = log(project.workspace, "--checkpoint", given, "--messages")
        assert code == 1
        assert f"checkpoint {checkpoint_id} could not be read: {path}: {why}" in err
        _named_once(caplog, path)


def _named_once(caplog: pytest.LogCaptureFixture, path: Path) -> None:
    """One warning line about the file, and no validation dump."""
    about = [r.getMessage() for r in caplog.records if str(path) in r.getMessage()]
    assert len(about) == 1 and about[0].startswith(f"skipping checkpoint {path}: ")
    assert "\n" not in about[0] and "pydantic" not in about[0]


def test_an_unreadable_checkpoint_is_named_once_when_listing(
    project: Project, caplog: pytest.LogCaptureFixture
) -> None:
    _, path = _break_first_checkpoint(project, "{broken")
    caplog.clear()
    code, out, _ = log(project.workspace, "--summary")
    assert code == 0 and "Status:" in out
    _named_once(caplog, path)


def test_terminal_control_codes_in_stored_texts_are_shown_not_obeyed(project: Project) -> None:
    # Regression (loop #14): an answer's ESC sequences reached the terminal raw.
    answer = "final \x1b[31mRED\x1b[0m \x1b]52;c;ZXZpbA==\x07 \x9b2J"
    assert project.run([{"text": answer}]).code == 0
    for args in ((), ("--summary",), ("--verbose",)):
        code, out, _ = log(project.workspace, *args)
        assert code == 0
        assert "\x1b" not in out and "\x07" not in out and "\x9b" not in out and "\r" not in out
        assert "final \\x1b[31mRED\\x1b[0m \\x1b]52;c;ZXZpbA==\\x07 \\x9b2J" in out
