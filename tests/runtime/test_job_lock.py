"""One process at a time per Job: a second run of a Job that is being run stops at once."""

import json
import subprocess

import pytest

from runtime.checkpoint import Checkpoint
from tests.runtime.harness import Project

DONE = {"text": "done"}
SLOW = {
    "tool_use": [
        {
            "name": "exec",
            "input": {
                "command": "sleep",
                "args": ["2"],
                "env": {},
                "cwd": ".",
                "stdout": True,
                "stderr": True,
            },
        }
    ]
}


def started(project: Project, *extra: str) -> subprocess.Popen[str]:
    """A run of the project, once its first tool call is under way."""
    script = project.script([SLOW, DONE], "slow.json")
    process = project.spawn(project.args("worker", "go", script, *extra))
    assert process.stdout is not None
    for line in process.stdout:
        if json.loads(line)["type"] == "callTools":
            return process
    raise AssertionError(process.communicate()[1])


@pytest.mark.parametrize("how", ["--continue", "--job-id"])
def test_a_job_that_is_being_run_is_not_run_a_second_time_at_once(
    project: Project, how: str
) -> None:
    assert project.run([DONE], "--job-id", "samejob").code == 0
    first = started(project, "--continue-job", "samejob")
    try:
        again = ("--continue",) if how == "--continue" else ("--job-id", "samejob")
        second = project.run([DONE], *again, query="go on")
        assert second.code == 2
        assert second.events == []
        assert f"job samejob is being run by another perstack process (pid {first.pid})" in (
            second.stderr
        )
    finally:
        first.communicate(timeout=30)
    assert first.returncode == 0
    paths = project.workspace.glob("perstack/jobs/samejob/checkpoints/*.json")
    steps = [Checkpoint.model_validate_json(p.read_bytes()).step_number for p in paths]
    assert sorted(steps) == sorted(set(steps))  # one history, no step taken twice
    # Once the first run ended, the job can be continued again.
    assert project.run([DONE], "--continue", query="go on").code == 0
