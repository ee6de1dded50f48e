"""readTextFile, writeTextFile, appendTextFile and editTextFile on real files."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from runtime.skills.builtin import BuiltinSkill
from runtime.skills.builtin.files import MAX_TEXT_FILE_BYTES
from runtime.skills.skill import ToolOutcome


@pytest.fixture
def skill(tmp_path: Path) -> BuiltinSkill:
    return BuiltinSkill(tmp_path)


def body(outcome: ToolOutcome) -> dict[str, Any]:
    text = outcome.contents[0].text  # type: ignore[union-attr]
    result: dict[str, Any] = json.loads(text)
    return result


async def test_written_file_reads_back_like_the_reference(
    skill: BuiltinSkill, tmp_path: Path
) -> None:
    written = await skill.call_tool(
        "writeTextFile", {"path": "notes.txt", "text": "first line\nsecond line\n"}
    )
    assert not written.is_error
    assert body(written) == {
        "path": str(tmp_path / "notes.txt"),
        "text": "first line\nsecond line\n",
    }
    read = await skill.call_tool("readTextFile", {"path": "notes.txt"})
    assert read.contents[0].text == (  # type: ignore[union-attr]
        '{"path":"notes.txt","content":"first line\\nsecond line\\n","from":0,"to":3}'
    )


async def test_write_creates_parents_and_overwrites(skill: BuiltinSkill, tmp_path: Path) -> None:
    await skill.call_tool("writeTextFile", {"path": "a/b/c.txt", "text": "long old text"})
    await skill.call_tool("writeTextFile", {"path": "a/b/c.txt", "text": "new"})
    assert (tmp_path / "a" / "b" / "c.txt").read_text() == "new"


async def test_write_keeps_unicode_and_crlf_as_given(skill: BuiltinSkill, tmp_path: Path) -> None:
    await skill.call_tool("writeTextFile", {"path": "u.txt", "text": "日本\r\nü"})
    assert (tmp_path / "u.txt").read_bytes() == "日本\r\nü".encode()


async def test_read_line_range_is_zero_based_and_end_exclusive(
    skill: BuiltinSkill, tmp_path: Path
) -> None:
    (tmp_path / "l.txt").write_text("l0\nl1\nl2\nl3")
    result = body(await skill.call_tool("readTextFile", {"path": "l.txt", "from": 1, "to": 3}))
    assert result == {"path": "l.txt", "content": "l1\nl2", "from": 1, "to": 3}
    tail = body(await skill.call_tool("readTextFile", {"path": "l.txt", "from": 2.0}))
    assert tail["content"] == "l2\nl3"


async def test_read_fractional_line_number_is_refused(skill: BuiltinSkill, tmp_path: Path) -> None:
    (tmp_path / "l.txt").write_text("x")
    outcome = await skill.call_tool("readTextFile", {"path": "l.txt", "from": 1.5})
    assert outcome.is_error
    assert "whole line number" in body(outcome)["message"]


async def test_read_missing_file_says_so(skill: BuiltinSkill) -> None:
    outcome = await skill.call_tool("readTextFile", {"path": "nope/missing.txt"})
    assert outcome.is_error
    assert body(outcome)["error"] == "NotFound"


async def test_read_directory_is_refused(skill: BuiltinSkill, tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    outcome = await skill.call_tool("readTextFile", {"path": "d"})
    assert body(outcome)["error"] == "IsADirectory"


async def test_read_binary_file_is_refused(skill: BuiltinSkill, tmp_path: Path) -> None:
    (tmp_path / "b.bin").write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    outcome = await skill.call_tool("readTextFile", {"path": "b.bin"})
    assert outcome.is_error
    assert body(outcome)["error"] == "NotText"


async def test_read_file_over_the_size_limit_is_refused(
    skill: BuiltinSkill, tmp_path: Path
) -> None:
    (tmp_path / "big.txt").write_bytes(b"")
    os.truncate(tmp_path / "big.txt", MAX_TEXT_FILE_BYTES + 1)
    outcome = await skill.call_tool("readTextFile", {"path": "big.txt"})
    assert body(outcome)["error"] == "FileTooLarge"


async def test_read_fifo_is_refused_without_blocking(skill: BuiltinSkill, tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    outcome = await skill.call_tool("readTextFile", {"path": "pipe"})
    assert body(outcome)["error"] == "NotARegularFile"


async def test_write_with_wrong_argument_types_names_the_field(skill: BuiltinSkill) -> None:
    outcome = await skill.call_tool("writeTextFile", {"path": "x.txt", "text": 42})
    assert outcome.is_error
    assert "'text'" in body(outcome)["message"]
    missing = await skill.call_tool("writeTextFile", {"path": "x.txt"})
    assert "'text' is required" in body(missing)["message"]


async def test_write_lone_surrogate_is_refused(skill: BuiltinSkill, tmp_path: Path) -> None:
    outcome = await skill.call_tool("writeTextFile", {"path": "s.txt", "text": "a\ud800"})
    assert outcome.is_error
    assert not (tmp_path / "s.txt").exists()


async def test_write_onto_directory_is_refused(skill: BuiltinSkill, tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    outcome = await skill.call_tool("writeTextFile", {"path": "d", "text": "x"})
    assert outcome.is_error


async def test_write_to_workspace_root_is_refused(skill: BuiltinSkill) -> None:
    outcome = await skill.call_tool("writeTextFile", {"path": ".", "text": "x"})
    assert outcome.is_error


async def test_append_adds_at_the_end(skill: BuiltinSkill, tmp_path: Path) -> None:
    (tmp_path / "log.txt").write_text("one\n")
    outcome = await skill.call_tool("appendTextFile", {"path": "log.txt", "text": "two\n"})
    assert body(outcome) == {"path": str(tmp_path / "log.txt"), "text": "two\n"}
    assert (tmp_path / "log.txt").read_text() == "one\ntwo\n"


async def test_append_to_missing_file_is_refused(skill: BuiltinSkill, tmp_path: Path) -> None:
    outcome = await skill.call_tool("appendTextFile", {"path": "log.txt", "text": "x"})
    assert body(outcome)["error"] == "NotFound"
    assert not (tmp_path / "log.txt").exists()


async def test_edit_replaces_first_match_only(skill: BuiltinSkill, tmp_path: Path) -> None:
    (tmp_path / "c.py").write_text("a = 1\na = 1\n")
    outcome = await skill.call_tool(
        "editTextFile", {"path": "c.py", "oldText": "a = 1", "newText": "b = 2"}
    )
    assert body(outcome)["newText"] == "b = 2"
    assert (tmp_path / "c.py").read_text() == "b = 2\na = 1\n"


async def test_edit_matches_across_crlf_line_ends(skill: BuiltinSkill, tmp_path: Path) -> None:
    (tmp_path / "w.txt").write_bytes(b"x\r\ny\r\n")
    outcome = await skill.call_tool(
        "editTextFile", {"path": "w.txt", "oldText": "x\ny", "newText": "z"}
    )
    assert not outcome.is_error
    assert (tmp_path / "w.txt").read_bytes() == b"z\n"


async def test_edit_without_match_leaves_file_unchanged(
    skill: BuiltinSkill, tmp_path: Path
) -> None:
    (tmp_path / "c.txt").write_text("hello")
    outcome = await skill.call_tool(
        "editTextFile", {"path": "c.txt", "oldText": "bye", "newText": "x"}
    )
    assert body(outcome)["error"] == "NoMatch"
    assert (tmp_path / "c.txt").read_text() == "hello"


async def test_edit_with_empty_old_text_is_refused(skill: BuiltinSkill, tmp_path: Path) -> None:
    (tmp_path / "c.txt").write_text("hello")
    outcome = await skill.call_tool(
        "editTextFile", {"path": "c.txt", "oldText": "", "newText": "x"}
    )
    assert outcome.is_error
    assert (tmp_path / "c.txt").read_text() == "hello"


async def test_edit_missing_file_is_refused(skill: BuiltinSkill) -> None:
    outcome = await skill.call_tool(
        "editTextFile", {"path": "none.txt", "oldText": "a", "newText": "b"}
    )
    assert body(outcome)["error"] == "NotFound"
