"""getFileInfo, listDirectory, createDirectory, deleteDirectory, deleteFile and moveFile."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from runtime.skills.builtin import BuiltinSkill, entries
from runtime.skills.skill import ToolOutcome


@pytest.fixture
def skill(tmp_path: Path) -> BuiltinSkill:
    return BuiltinSkill(tmp_path)


def body(outcome: ToolOutcome) -> dict[str, Any]:
    text = outcome.contents[0].text  # type: ignore[union-attr]
    result: dict[str, Any] = json.loads(text)
    return result


async def test_file_info_describes_a_file(skill: BuiltinSkill, tmp_path: Path) -> None:
    (tmp_path / "report.md").write_text("# hi\n")
    info = body(await skill.call_tool("getFileInfo", {"path": "report.md"}))
    assert info["exists"] is True
    assert info["path"] == str(tmp_path / "report.md")
    assert info["name"] == "report.md"
    assert info["directory"] == str(tmp_path)
    assert info["extension"] == ".md"
    assert info["type"] == "file"
    assert info["mimeType"] == "text/markdown"
    assert info["size"] == 5
    assert info["sizeFormatted"] == "5.00 B"
    assert info["modified"].endswith("Z")
    assert set(info["permissions"]) == {"readable", "writable", "executable"}


async def test_file_info_describes_a_directory(skill: BuiltinSkill, tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    info = body(await skill.call_tool("getFileInfo", {"path": "d"}))
    assert (info["type"], info["extension"], info["mimeType"]) == ("directory", None, None)


async def test_file_info_of_missing_path_says_so(skill: BuiltinSkill) -> None:
    outcome = await skill.call_tool("getFileInfo", {"path": "ghost"})
    assert body(outcome)["error"] == "NotFound"


async def test_listing_is_sorted_and_hides_the_runtime_folder(
    skill: BuiltinSkill, tmp_path: Path
) -> None:
    (tmp_path / "perstack" / "jobs").mkdir(parents=True)
    (tmp_path / "b.txt").write_text("bb")
    (tmp_path / "a").mkdir()
    (tmp_path / "link").symlink_to("/")
    listing = body(await skill.call_tool("listDirectory", {"path": "."}))
    assert listing["path"] == str(tmp_path)
    assert [(i["name"], i["type"]) for i in listing["items"]] == [
        ("a", "directory"),
        ("b.txt", "file"),
        ("link", "symlink"),
    ]
    assert listing["items"][1]["size"] == 2
    assert "truncated" not in listing


async def test_listing_of_subdirectory_keeps_a_folder_named_perstack(
    skill: BuiltinSkill, tmp_path: Path
) -> None:
    (tmp_path / "src" / "perstack").mkdir(parents=True)
    listing = body(await skill.call_tool("listDirectory", {"path": "src"}))
    assert [i["name"] for i in listing["items"]] == ["perstack"]


async def test_long_listing_is_cut_and_says_so(
    skill: BuiltinSkill, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(entries, "MAX_LIST_ENTRIES", 3)
    for i in range(5):
        (tmp_path / f"f{i}").write_text("")
    listing = body(await skill.call_tool("listDirectory", {"path": "."}))
    assert len(listing["items"]) == 3
    assert listing["truncated"] is True
    assert "5 entries" in listing["note"]


async def test_listing_a_file_or_missing_directory_is_refused(
    skill: BuiltinSkill, tmp_path: Path
) -> None:
    (tmp_path / "f").write_text("")
    assert body(await skill.call_tool("listDirectory", {"path": "f"}))["error"] == "NotADirectory"
    assert body(await skill.call_tool("listDirectory", {"path": "none"}))["error"] == "NotFound"


async def test_create_directory_makes_parents(skill: BuiltinSkill, tmp_path: Path) -> None:
    outcome = await skill.call_tool("createDirectory", {"path": "x/y/z"})
    assert body(outcome) == {"path": str(tmp_path / "x" / "y" / "z")}
    assert (tmp_path / "x" / "y" / "z").is_dir()


async def test_create_existing_directory_is_refused(skill: BuiltinSkill, tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    assert body(await skill.call_tool("createDirectory", {"path": "d"}))["error"] == "AlreadyExists"
    assert body(await skill.call_tool("createDirectory", {"path": "."}))["error"] == "AlreadyExists"


async def test_delete_empty_directory(skill: BuiltinSkill, tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    outcome = await skill.call_tool("deleteDirectory", {"path": "d"})
    assert not outcome.is_error
    assert not (tmp_path / "d").exists()


async def test_delete_non_empty_directory_needs_recursive(
    skill: BuiltinSkill, tmp_path: Path
) -> None:
    (tmp_path / "d" / "e").mkdir(parents=True)
    (tmp_path / "d" / "e" / "f.txt").write_text("x")
    refused = await skill.call_tool("deleteDirectory", {"path": "d"})
    assert "recursive: true" in body(refused)["message"]
    assert (tmp_path / "d" / "e" / "f.txt").exists()
    done = await skill.call_tool("deleteDirectory", {"path": "d", "recursive": True})
    assert not done.is_error
    assert not (tmp_path / "d").exists()


async def test_recursive_delete_removes_links_not_their_targets(
    skill: BuiltinSkill, tmp_path: Path
) -> None:
    keep = tmp_path / "keep"
    keep.mkdir()
    (keep / "precious.txt").write_text("x")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "to-keep").symlink_to(keep)
    await skill.call_tool("deleteDirectory", {"path": "d", "recursive": True})
    assert (keep / "precious.txt").read_text() == "x"


async def test_delete_directory_refuses_files_root_and_missing(
    skill: BuiltinSkill, tmp_path: Path
) -> None:
    (tmp_path / "f").write_text("")
    assert body(await skill.call_tool("deleteDirectory", {"path": "f"}))["error"] == (
        "NotADirectory"
    )
    for root in (".", str(tmp_path)):
        outcome = await skill.call_tool("deleteDirectory", {"path": root, "recursive": True})
        assert body(outcome)["error"] == "AccessDenied"
    assert body(await skill.call_tool("deleteDirectory", {"path": "none"}))["error"] == "NotFound"
    assert (tmp_path / "f").exists()


async def test_delete_file(skill: BuiltinSkill, tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("")
    outcome = await skill.call_tool("deleteFile", {"path": "f.txt"})
    assert body(outcome) == {"path": str(tmp_path / "f.txt")}
    assert not (tmp_path / "f.txt").exists()


async def test_delete_file_refuses_directories_and_missing(
    skill: BuiltinSkill, tmp_path: Path
) -> None:
    (tmp_path / "d").mkdir()
    assert body(await skill.call_tool("deleteFile", {"path": "d"}))["error"] == "IsADirectory"
    assert body(await skill.call_tool("deleteFile", {"path": "none"}))["error"] == "NotFound"


async def test_move_file_creates_destination_parents(skill: BuiltinSkill, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("x")
    outcome = await skill.call_tool("moveFile", {"source": "a.txt", "destination": "n/b.txt"})
    assert body(outcome) == {
        "source": str(tmp_path / "a.txt"),
        "destination": str(tmp_path / "n" / "b.txt"),
    }
    assert (tmp_path / "n" / "b.txt").read_text() == "x"
    assert not (tmp_path / "a.txt").exists()


async def test_move_refuses_existing_destination_missing_source_and_self(
    skill: BuiltinSkill, tmp_path: Path
) -> None:
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "b.txt").write_text("b")
    (tmp_path / "d").mkdir()
    onto = await skill.call_tool("moveFile", {"source": "a.txt", "destination": "b.txt"})
    assert body(onto)["error"] == "AlreadyExists"
    assert (tmp_path / "b.txt").read_text() == "b"
    gone = await skill.call_tool("moveFile", {"source": "none", "destination": "c"})
    assert body(gone)["error"] == "NotFound"
    into = await skill.call_tool("moveFile", {"source": "d", "destination": "d/e"})
    assert body(into)["error"] == "InvalidArguments"
    assert (tmp_path / "d").is_dir()


def test_rename_never_replaces_a_destination_that_appeared_after_the_check(
    tmp_path: Path,
) -> None:
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "b.txt").write_text("late arrival")
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(FileExistsError):
            entries._rename_no_replace(fd, "a.txt", fd, "b.txt")
    finally:
        os.close(fd)
    assert (tmp_path / "b.txt").read_text() == "late arrival"
    assert (tmp_path / "a.txt").exists()
