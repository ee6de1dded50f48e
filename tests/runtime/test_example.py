"""The example in examples/support-report works as the README shows it."""

import contextlib
import io
import json
import shutil
from pathlib import Path

from runtime.cli import main
from runtime.events import parse_event
from tests.runtime.harness import REPO

EXAMPLE = REPO / "examples" / "support-report"


def perstack(*args: str) -> tuple[int, list[dict[str, object]]]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(list(args))
    lines = out.getvalue().splitlines()
    for line in lines:
        parse_event(line)  # every line on stdout is one of our events
    return code, [json.loads(line) for line in lines]


def test_the_lead_asks_then_delegates_the_triage_after_the_answer(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    shutil.copytree(EXAMPLE / "workspace", workspace)
    common = [
        "--config",
        str(EXAMPLE / "perstack.toml"),
        "--workspace",
        str(workspace),
        "--provider",
        "scripted",
    ]
    code, events = perstack(
        "run", "support-lead", "Weekly summary", *common, "--script", str(EXAMPLE / "lead-ask.json")
    )
    assert code == 4
    run_events = [e for e in events if "stepNumber" in e]
    assert run_events[-1]["type"] == "stopRunByInteractiveTool"

    code, events = perstack(
        "run",
        "support-lead",
        "engineering",
        "--continue",
        "-i",
        *common,
        "--script",
        str(EXAMPLE / "lead-answer.json"),
    )
    assert code == 0
    completes = [e for e in events if e["type"] == "completeRun"]
    assert [e["expertKey"] for e in completes] == ["support-analyst", "support-lead"]
    assert "engineering" in str(completes[-1]["text"]).lower()
    assert (workspace / "report.md").read_text().startswith("# Support triage")
    jobs = list(workspace.glob("perstack/jobs/*/job.json"))
    assert len(jobs) == 1
    assert json.loads(jobs[0].read_text())["status"] == "completed"
