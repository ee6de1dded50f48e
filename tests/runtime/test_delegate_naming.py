"""Delegates are named as the reference names them, and names that collide are refused."""

import json
import sys
from pathlib import Path

from runtime.checkpoint import Checkpoint
from runtime.log.gist import event_gist
from runtime.log.stored import LoggedEvent
from runtime.skills.delegates import delegate_tool_name, delegated_expert
from tests.fakes.mcp_helpers import FAKE_SERVER
from tests.runtime.harness import make_project

SCOPED_TEAM = """
[experts."lead"]
instruction = "Coordinate."
delegates = ["@org/helper"]

[experts."@org/helper"]
description = "Answers"
instruction = "Answer."
"""


def test_the_tool_is_the_keys_last_segment_made_safe_for_the_api() -> None:
    assert delegate_tool_name("helper") == "helper"
    assert delegate_tool_name("@perstack/github-issue-bot") == "github-issue-bot"
    assert delegate_tool_name("@org/pkg/expert.v2") == "expert_v2"


def test_a_delegation_carries_the_references_skill_names_and_the_parent_run(
    tmp_path: Path,
) -> None:
    # Regression (compat E2, E3, T4): the call said skillName "delegates", the result the
    # key, the tool "_org_helper", and delegatedBy had no runId.
    project = make_project(tmp_path, SCOPED_TEAM)
    turns = [
        {"tool_use": [{"name": "helper", "input": {"query": "2 + 3?"}}]},
        {"text": "5"},
        {"text": "The helper says 5."},
    ]
    result = project.run(turns, expert="lead")
    assert result.code == 0
    (call,) = result.of("callDelegate")[0].tool_calls
    assert (call.skill_name, call.tool_name) == ("@org/helper", "helper")
    lead_results = [r for r in result.of("resolveToolResults") if r.expert_key == "lead"]
    (answer,) = lead_results[0].tool_results
    assert answer.skill_name == "delegate/@org/helper"
    assert answer.result[0].text == "5"
    lead_run = result.of("startRun")[0].run_id
    helper = [
        Checkpoint.model_validate_json(p.read_bytes())
        for p in project.workspace.glob("perstack/jobs/*/checkpoints/*.json")
    ]
    delegated = [c for c in helper if c.expert.key == "@org/helper"]
    assert delegated and all(c.delegated_by is not None for c in delegated)
    assert {c.delegated_by.run_id for c in delegated if c.delegated_by} == {lead_run}
    # Nothing to connect to: no skill events for delegates (nor in the reference).
    assert {e.skill_name for e in result.of("skillConnected")} == {"@perstack/base"}


def test_two_delegates_offered_under_one_tool_name_are_refused_naming_both(
    tmp_path: Path,
) -> None:
    # Regression (loop #12): one of them silently could not be reached.
    toml = (
        '[experts."lead"]\ninstruction = "x"\ndelegates = ["@x/a", "@y/a"]\n'
        '[experts."@x/a"]\ninstruction = "x"\n[experts."@y/a"]\ninstruction = "x"\n'
    )
    project = make_project(tmp_path, toml)
    result = project.run([{"text": "never asked"}], expert="lead")
    assert result.code == 2 and result.events == []
    assert str(project.config) in result.stderr
    assert "the delegate '@y/a' would be offered as tool 'a'" in result.stderr
    assert "the delegate '@x/a'" in result.stderr


def test_a_delegate_named_like_a_built_in_tool_is_refused_naming_both(tmp_path: Path) -> None:
    toml = (
        '[experts."lead"]\ninstruction = "x"\ndelegates = ["exec"]\n'
        '[experts."exec"]\ninstruction = "x"\n'
    )
    project = make_project(tmp_path, toml)
    result = project.run([{"text": "never asked"}], expert="lead")
    assert result.code == 2 and result.events == []
    assert f"{project.config}: experts.\"lead\": the delegate 'exec'" in result.stderr
    assert "and so would tool 'exec'" in result.stderr


def test_a_delegate_named_like_an_mcp_tool_is_refused_naming_both_and_the_file(
    tmp_path: Path,
) -> None:
    args = json.dumps([str(FAKE_SERVER), "serve", "delegate-naming"])
    toml = (
        '[experts."lead"]\ninstruction = "x"\ndelegates = ["echo"]\n'
        '[experts."lead".skills."fake"]\ntype = "mcpStdioSkill"\n'
        f"command = {json.dumps(sys.executable)}\nargs = {args}\nlazyInit = false\n"
        '[experts."echo"]\ninstruction = "x"\n'
    )
    project = make_project(tmp_path, toml)
    result = project.run([{"text": "never asked"}], expert="lead")
    assert result.code == 2
    assert str(project.config) in result.stderr
    assert "tool 'echo' is offered by both the delegate 'echo' and skill 'fake'" in result.stderr


def test_perstack_log_names_the_delegated_expert_in_either_naming() -> None:
    assert delegated_expert("@org/helper", "helper") == "@org/helper"
    assert delegated_expert("delegate/@org/helper", "helper") == "@org/helper"
    assert delegated_expert("delegates", "_org_helper") == "_org_helper"  # ours, before
    base = {
        "id": "e1",
        "type": "callDelegate",
        "timestamp": 1,
        "jobId": "j",
        "runId": "r",
        "expertKey": "lead",
        "stepNumber": 1,
        "newMessage": {"type": "expertMessage", "id": "m", "contents": []},
        "usage": {},
    }
    for skill_name, tool_name in (("@org/helper", "helper"), ("delegates", "@org/helper")):
        call = {"id": "c", "skillName": skill_name, "toolName": tool_name, "args": {"query": "q"}}
        data = {**base, "toolCalls": [call]}
        logged = LoggedEvent("callDelegate", 1, 1, "r", _data=data)
        assert '→ @org/helper("q")' in event_gist(logged)
