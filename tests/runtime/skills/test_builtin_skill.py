"""BuiltinSkill as the agent loop sees it: definitions, pick/omit, todos and completion."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from runtime.errors import WorkspaceError
from runtime.skills.builtin import BUILTIN_SKILL_NAME, BuiltinSkill
from runtime.skills.skill import Skill, ToolOutcome

# Names, order and required arguments of the reference's @perstack/base (recorded run
# 02-multi-step-files), without readImageFile and readPdfFile.
REFERENCE_TOOLS: dict[str, tuple[set[str], list[str]]] = {
    "attemptCompletion": (set(), []),
    "todo": ({"newTodos", "completedTodos"}, []),
    "clearTodo": (set(), []),
    "exec": (
        {"command", "args", "env", "cwd", "stdout", "stderr", "timeout"},
        ["command", "args", "env", "cwd", "stdout", "stderr"],
    ),
    "getFileInfo": ({"path"}, ["path"]),
    "healthCheck": (set(), []),
    "readTextFile": ({"path", "from", "to"}, ["path"]),
    "writeTextFile": ({"path", "text"}, ["path", "text"]),
    "appendTextFile": ({"path", "text"}, ["path", "text"]),
    "editTextFile": ({"path", "newText", "oldText"}, ["path", "newText", "oldText"]),
    "moveFile": ({"source", "destination"}, ["source", "destination"]),
    "deleteFile": ({"path"}, ["path"]),
    "listDirectory": ({"path"}, ["path"]),
    "createDirectory": ({"path"}, ["path"]),
    "deleteDirectory": ({"path", "recursive"}, ["path"]),
}


@pytest.fixture
def skill(tmp_path: Path) -> BuiltinSkill:
    return BuiltinSkill(tmp_path)


def body(outcome: ToolOutcome) -> Any:
    text = outcome.contents[0].text  # type: ignore[union-attr]
    return json.loads(text)


def test_builtin_skill_satisfies_the_skill_protocol(skill: BuiltinSkill) -> None:
    as_skill: Skill = skill
    assert as_skill.name == BUILTIN_SKILL_NAME


def test_definitions_match_the_reference_names_arguments_and_required_lists(
    skill: BuiltinSkill,
) -> None:
    definitions = skill.tool_definitions()
    assert [d.name for d in definitions] == list(REFERENCE_TOOLS)
    for definition in definitions:
        properties, required = REFERENCE_TOOLS[definition.name]
        schema = definition.input_schema
        assert schema["type"] == "object"
        assert set(schema["properties"]) == properties, definition.name
        assert schema.get("required", []) == required, definition.name
        assert definition.skill_name == BUILTIN_SKILL_NAME
        assert definition.description


def test_exec_timeout_defaults_to_a_minute(skill: BuiltinSkill) -> None:
    (exec_tool,) = [d for d in skill.tool_definitions() if d.name == "exec"]
    assert exec_tool.input_schema["properties"]["timeout"]["default"] == 60000


def test_pick_keeps_only_the_named_tools(tmp_path: Path) -> None:
    skill = BuiltinSkill(tmp_path, pick=["readTextFile", "attemptCompletion"])
    assert [d.name for d in skill.tool_definitions()] == ["attemptCompletion", "readTextFile"]


def test_omit_drops_the_named_tools(tmp_path: Path) -> None:
    skill = BuiltinSkill(tmp_path, omit=["exec", "deleteDirectory"])
    names = [d.name for d in skill.tool_definitions()]
    assert "exec" not in names and "deleteDirectory" not in names
    assert len(names) == len(REFERENCE_TOOLS) - 2


def test_pick_and_omit_together_and_unknown_names_are_ignored(tmp_path: Path) -> None:
    skill = BuiltinSkill(tmp_path, pick=["exec", "todo", "think"], omit=["todo"])
    assert [d.name for d in skill.tool_definitions()] == ["exec"]


async def test_calling_a_tool_left_out_by_pick_is_an_error(tmp_path: Path) -> None:
    skill = BuiltinSkill(tmp_path, pick=["readTextFile"])
    outcome = await skill.call_tool("exec", {"command": "true"})
    assert outcome.is_error
    assert body(outcome)["error"] == "UnknownTool"
    assert "readTextFile" in body(outcome)["message"]


async def test_unknown_tool_is_an_error(skill: BuiltinSkill) -> None:
    outcome = await skill.call_tool("readFile", {"path": "x"})
    assert body(outcome)["error"] == "UnknownTool"


async def test_arguments_that_are_not_an_object_are_an_error(skill: BuiltinSkill) -> None:
    outcome = await skill.call_tool("readTextFile", ["x"])  # type: ignore[arg-type]
    assert outcome.is_error


async def test_attempt_completion_without_todos_returns_an_empty_object(
    skill: BuiltinSkill,
) -> None:
    outcome = await skill.call_tool("attemptCompletion", {})
    assert not outcome.is_error
    assert outcome.contents[0].text == "{}"  # type: ignore[union-attr]
    assert not skill.has_open_todos()


async def test_open_todos_keep_the_run_going_until_completed(skill: BuiltinSkill) -> None:
    added = await skill.call_tool("todo", {"newTodos": ["write report", "check it"]})
    assert body(added) == {
        "todos": [
            {"id": 0, "title": "write report", "completed": False},
            {"id": 1, "title": "check it", "completed": False},
        ]
    }
    await skill.call_tool("todo", {"completedTodos": [0]})
    blocked = await skill.call_tool("attemptCompletion", {})
    assert body(blocked) == {"remainingTodos": [{"id": 1, "title": "check it", "completed": False}]}
    assert skill.has_open_todos()
    assert [item.title for item in skill.open_todos()] == ["check it"]
    await skill.call_tool("todo", {"completedTodos": [1]})
    assert body(await skill.call_tool("attemptCompletion", {})) == {}
    assert not skill.has_open_todos()


async def test_todo_can_add_and_complete_in_one_call(skill: BuiltinSkill) -> None:
    outcome = await skill.call_tool("todo", {"newTodos": ["a"], "completedTodos": [0]})
    assert body(outcome)["todos"][0]["completed"] is True


async def test_todo_without_arguments_reads_the_list(skill: BuiltinSkill) -> None:
    await skill.call_tool("todo", {"newTodos": ["a"]})
    assert len(body(await skill.call_tool("todo", {}))["todos"]) == 1


async def test_completing_an_unknown_todo_is_refused_and_changes_nothing(
    skill: BuiltinSkill,
) -> None:
    await skill.call_tool("todo", {"newTodos": ["a"]})
    outcome = await skill.call_tool("todo", {"newTodos": ["b"], "completedTodos": [7]})
    assert outcome.is_error
    assert "7" in body(outcome)["message"]
    assert len(body(await skill.call_tool("todo", {}))["todos"]) == 1


async def test_clear_todo_empties_the_list_and_restarts_ids(skill: BuiltinSkill) -> None:
    await skill.call_tool("todo", {"newTodos": ["a", "b"]})
    cleared = await skill.call_tool("clearTodo", {})
    assert body(cleared) == {"todos": []}
    assert not skill.has_open_todos()
    again = await skill.call_tool("todo", {"newTodos": ["c"]})
    assert body(again)["todos"][0]["id"] == 0


async def test_each_skill_instance_has_its_own_todos(tmp_path: Path) -> None:
    first, second = BuiltinSkill(tmp_path), BuiltinSkill(tmp_path)
    await first.call_tool("todo", {"newTodos": ["only in the first run"]})
    assert first.has_open_todos()
    assert not second.has_open_todos()


async def test_health_check_reports_status_workspace_uptime_and_memory(
    skill: BuiltinSkill, tmp_path: Path
) -> None:
    report = body(await skill.call_tool("healthCheck", {}))
    assert report["status"] == "ok"
    assert report["workspace"] == str(skill.workspace)
    assert skill.workspace.samefile(tmp_path)
    assert report["uptime"].endswith("s")
    assert report["memory"]["rss"].endswith("MB")


async def test_start_and_close_are_idempotent(skill: BuiltinSkill) -> None:
    await skill.start()
    await skill.start()
    await skill.close()
    await skill.close()


def test_workspace_that_is_not_a_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(WorkspaceError, match="not a directory"):
        BuiltinSkill(tmp_path / "file")


def test_importing_the_builtin_skill_loads_no_mcp_anthropic_or_httpx() -> None:
    probe = (
        "import sys, runtime.skills.builtin; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('mcp', 'anthropic', 'httpx')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"
