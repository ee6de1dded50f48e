"""Every path the built-in tools touch stays inside the workspace and out of perstack/."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from runtime.skills.builtin import BuiltinSkill
from runtime.skills.builtin.outcomes import ToolFailure
from runtime.skills.builtin.paths import Workspace
from runtime.skills.skill import ToolOutcome


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    path = tmp_path / "outside"
    path.mkdir()
    return path


@pytest.fixture
def workspace(tmp_path: Path, outside: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "escape").symlink_to("/")
    (root / "out").symlink_to(outside)
    (root / "new.txt").symlink_to(outside / "outside.txt")
    (root / "perstack" / "jobs").mkdir(parents=True)
    (root / "perstack" / "jobs" / "job.json").write_text("{}")
    (outside / "secret.txt").write_text("secret")
    return root


@pytest.fixture
def skill(workspace: Path) -> BuiltinSkill:
    return BuiltinSkill(workspace)


def body(outcome: ToolOutcome) -> dict[str, Any]:
    text = outcome.contents[0].text  # type: ignore[union-attr]
    result: dict[str, Any] = json.loads(text)
    return result


def _writes(path: str) -> list[tuple[str, dict[str, Any]]]:
    return [
        ("writeTextFile", {"path": path, "text": "x"}),
        ("appendTextFile", {"path": path, "text": "x"}),
        ("editTextFile", {"path": path, "oldText": "secret", "newText": "x"}),
        ("createDirectory", {"path": path}),
        ("deleteFile", {"path": path}),
        ("deleteDirectory", {"path": path, "recursive": True}),
        ("moveFile", {"source": "inside.txt", "destination": path}),
        ("moveFile", {"source": path, "destination": "moved.txt"}),
        ("readTextFile", {"path": path}),
        ("getFileInfo", {"path": path}),
        ("listDirectory", {"path": path}),
    ]


def lexists(path: str) -> bool:
    return os.path.lexists(path)


def _snapshot(root: Path) -> set[tuple[str, bytes | None]]:
    seen: set[tuple[str, bytes | None]] = set()
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames:
            seen.add((os.path.join(dirpath, name), None))
        for name in filenames:
            seen.add((os.path.join(dirpath, name), Path(dirpath, name).read_bytes()))
    return seen


ESCAPES = [
    "../outside/secret.txt",
    "../outside/created.txt",
    "out/secret.txt",
    "out/created.txt",
    "new.txt",
    "escape/tmp/perstack-escape-probe",
]


@pytest.mark.parametrize("requested", ESCAPES)
async def test_escape_through_every_tool_is_refused_and_creates_nothing_outside(
    skill: BuiltinSkill, workspace: Path, outside: Path, requested: str
) -> None:
    (workspace / "inside.txt").write_text("inside")
    before = _snapshot(outside)
    for tool, args in _writes(requested):
        if requested == "new.txt" and tool in ENTRY_TOOLS:
            continue  # these act on the link itself, inside (see the test below)
        outcome = await skill.call_tool(tool, args)
        assert outcome.is_error, (tool, requested)
        assert body(outcome)["error"] == "AccessDenied", (tool, requested, body(outcome))
    assert _snapshot(outside) == before
    assert not (outside / "outside.txt").exists()
    assert not lexists("/tmp/perstack-escape-probe")
    assert (workspace / "inside.txt").read_text() == "inside"


ENTRY_TOOLS = ("deleteFile", "deleteDirectory", "moveFile")


async def test_dangling_link_is_deleted_or_moved_as_a_link_without_touching_its_target(
    skill: BuiltinSkill, workspace: Path, outside: Path
) -> None:
    moved = await skill.call_tool("moveFile", {"source": "new.txt", "destination": "l.txt"})
    assert not moved.is_error
    assert (workspace / "l.txt").is_symlink()
    onto = await skill.call_tool("moveFile", {"source": "out", "destination": "l.txt"})
    assert body(onto)["error"] == "AlreadyExists"
    deleted = await skill.call_tool("deleteFile", {"path": "l.txt"})
    assert not deleted.is_error
    assert not (workspace / "l.txt").is_symlink()
    assert not (outside / "outside.txt").exists()
    assert (outside / "secret.txt").read_text() == "secret"


async def test_link_to_root_followed_by_tmp_path_is_refused(
    skill: BuiltinSkill,
) -> None:
    probe = f"/tmp/{uuid.uuid4().hex}"
    outcome = await skill.call_tool("writeTextFile", {"path": f"escape{probe}", "text": "x"})
    assert outcome.is_error
    assert "outside the workspace" in body(outcome)["message"]
    assert not lexists(probe)


async def test_dangling_link_to_outside_is_refused_and_target_not_created(
    skill: BuiltinSkill, outside: Path
) -> None:
    outcome = await skill.call_tool("writeTextFile", {"path": "new.txt", "text": "x"})
    assert outcome.is_error
    assert not (outside / "outside.txt").exists()


async def test_absolute_path_outside_workspace_is_refused(
    skill: BuiltinSkill, outside: Path
) -> None:
    target = outside / "abs.txt"
    outcome = await skill.call_tool("writeTextFile", {"path": str(target), "text": "x"})
    assert outcome.is_error
    assert body(outcome)["error"] == "AccessDenied"
    assert not target.exists()


async def test_absolute_path_inside_workspace_is_allowed(
    skill: BuiltinSkill, workspace: Path
) -> None:
    target = workspace / "sub" / "abs.txt"
    outcome = await skill.call_tool("writeTextFile", {"path": str(target), "text": "x"})
    assert not outcome.is_error
    assert target.read_text() == "x"


@pytest.mark.parametrize(
    "requested",
    ["perstack/jobs/job.json", "perstack", "PerStack/jobs/job.json", "./sub/../perstack/x"],
)
async def test_runtime_folder_is_refused_for_reading_and_writing(
    skill: BuiltinSkill, workspace: Path, requested: str
) -> None:
    for tool, args in _writes(requested):
        outcome = await skill.call_tool(tool, args)
        assert outcome.is_error, (tool, requested)
        assert "perstack/ folder" in body(outcome)["message"], (tool, body(outcome))
    assert (workspace / "perstack" / "jobs" / "job.json").read_text() == "{}"


async def test_link_to_runtime_folder_is_refused(skill: BuiltinSkill, workspace: Path) -> None:
    (workspace / "runs").symlink_to(workspace / "perstack")
    outcome = await skill.call_tool("readTextFile", {"path": "runs/jobs/job.json"})
    assert outcome.is_error
    assert body(outcome)["error"] == "AccessDenied"


async def test_link_inside_workspace_to_inside_is_followed(
    skill: BuiltinSkill, workspace: Path
) -> None:
    (workspace / "data").mkdir()
    (workspace / "data" / "a.txt").write_text("hello")
    (workspace / "alias").symlink_to(workspace / "data")
    outcome = await skill.call_tool("readTextFile", {"path": "alias/a.txt"})
    assert body(outcome)["content"] == "hello"


async def test_exec_cwd_outside_workspace_is_refused(skill: BuiltinSkill) -> None:
    for cwd in ("..", "/", "escape/tmp", "perstack"):
        outcome = await skill.call_tool(
            "exec",
            {"command": "pwd", "args": [], "env": {}, "cwd": cwd, "stdout": True, "stderr": True},
        )
        assert outcome.is_error, cwd


def test_directory_swapped_for_link_after_the_check_is_refused(
    workspace: Path, outside: Path
) -> None:
    ws = Workspace(workspace)
    (workspace / "sub").mkdir()
    target = ws.resolve("sub/file.txt")
    # The race: between the check and the use, sub becomes a link to outside.
    (workspace / "sub").rmdir()
    (workspace / "sub").symlink_to(outside)
    with pytest.raises(ToolFailure, match="symbolic link"), ws.parent_fd(target, create=True):
        pass
    assert not (outside / "file.txt").exists()


def test_missing_parents_are_created_only_inside(workspace: Path) -> None:
    ws = Workspace(workspace)
    target = ws.resolve("a/b/c.txt")
    with ws.parent_fd(target, create=True) as fd:
        os.stat(fd)
    assert (workspace / "a" / "b").is_dir()


async def test_empty_and_nul_paths_are_refused(skill: BuiltinSkill) -> None:
    for path in ("", "  ", "a\x00b"):
        outcome = await skill.call_tool("readTextFile", {"path": path})
        assert outcome.is_error
