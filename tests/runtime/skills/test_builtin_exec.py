"""exec: real processes, a minimal environment, confinement, timeouts and output caps."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest

from runtime.skills.builtin import BuiltinSkill
from runtime.skills.skill import ToolOutcome

# Every exec call in these tests must return well within this; a hang fails the test.
CALL_BOUND_SECONDS = 15


@pytest.fixture
def skill(tmp_path: Path) -> BuiltinSkill:
    return BuiltinSkill(tmp_path)


def body(outcome: ToolOutcome) -> dict[str, Any]:
    text = outcome.contents[0].text  # type: ignore[union-attr]
    result: dict[str, Any] = json.loads(text)
    return result


def sh(script: str, **overrides: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "command": "sh",
        "args": ["-c", script],
        "env": {},
        "cwd": ".",
        "stdout": True,
        "stderr": True,
    }
    args.update(overrides)
    return args


async def run(skill: BuiltinSkill, args: dict[str, Any]) -> ToolOutcome:
    return await asyncio.wait_for(skill.call_tool("exec", args), CALL_BOUND_SECONDS)


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting for its reaper counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


async def eventually_gone(pids: list[int]) -> bool:
    for _ in range(100):  # reaping by init can lag a little behind the kill
        if not any(alive(pid) for pid in pids):
            return True
        await asyncio.sleep(0.02)
    return False


async def test_command_output_comes_back(skill: BuiltinSkill) -> None:
    outcome = await run(skill, sh("echo out; echo err >&2"))
    assert not outcome.is_error
    assert body(outcome) == {"output": "out\nerr\n"}


async def test_stream_flags_choose_what_is_returned(skill: BuiltinSkill) -> None:
    only_err = await run(skill, sh("echo out; echo err >&2", stdout=False))
    assert body(only_err)["output"] == "err\n"
    nothing = await run(skill, sh("echo out", stdout=False, stderr=False))
    assert "produced no output" in body(nothing)["output"]


async def test_runtime_environment_is_invisible_to_the_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PERSTACK_TEST_CANARY", "canary-7f3a")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-canary")
    skill = BuiltinSkill(tmp_path)
    outcome = await run(skill, {**sh("env"), "command": "sh"})
    output = body(outcome)["output"]
    assert "canary-7f3a" not in output
    assert "sk-ant-canary" not in output
    assert "PATH=" in output


async def test_variables_passed_in_the_call_are_visible(skill: BuiltinSkill) -> None:
    outcome = await run(skill, sh('printf %s "$GREETING"', env={"GREETING": "hello there"}))
    assert body(outcome)["output"] == "hello there"


async def test_loader_variables_cannot_be_set_by_a_call(skill: BuiltinSkill) -> None:
    outcome = await run(skill, sh("true", env={"LD_PRELOAD": "/tmp/evil.so"}))
    assert outcome.is_error
    assert "LD_PRELOAD" in body(outcome)["message"]


async def test_command_runs_in_the_given_workspace_directory(
    skill: BuiltinSkill, tmp_path: Path
) -> None:
    (tmp_path / "sub").mkdir()
    outcome = await run(skill, sh("pwd", cwd="sub"))
    assert body(outcome)["output"].strip() == str((tmp_path / "sub").resolve())


async def test_missing_cwd_or_file_as_cwd_is_refused(skill: BuiltinSkill, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    missing = await run(skill, sh("pwd", cwd="nowhere"))
    assert body(missing)["error"] == "NotFound"
    not_dir = await run(skill, sh("pwd", cwd="file"))
    assert body(not_dir)["error"] == "NotADirectory"


async def test_failing_command_is_an_error_with_its_output(skill: BuiltinSkill) -> None:
    outcome = await run(skill, sh("echo partial; echo broken >&2; exit 3"))
    assert outcome.is_error
    result = body(outcome)
    assert (result["error"], result["exitCode"]) == ("CommandFailed", 3)
    assert result["stdout"] == "partial\n"
    assert result["stderr"] == "broken\n"


async def test_unknown_command_is_an_error(skill: BuiltinSkill) -> None:
    outcome = await run(skill, {**sh(""), "command": "no-such-command-xyz", "args": []})
    assert body(outcome)["error"] == "CommandNotFound"


async def test_timeout_kills_a_group_that_ignores_sigterm(
    skill: BuiltinSkill, tmp_path: Path
) -> None:
    script = 'trap "" TERM; sleep 60 & echo $! > child; echo $$ > leader; echo started; wait'
    outcome = await run(skill, sh(script, timeout=300))
    assert outcome.is_error
    result = body(outcome)
    assert result["error"] == "Timeout"
    assert result["stdout"] == "started\n"
    pids = [int((tmp_path / name).read_text()) for name in ("leader", "child")]
    assert await eventually_gone(pids)


async def test_background_process_left_by_a_finished_command_is_killed(
    skill: BuiltinSkill,
) -> None:
    outcome = await run(skill, sh("sleep 60 & echo $!"))
    assert not outcome.is_error
    assert await eventually_gone([int(body(outcome)["output"])])


async def test_cancelled_call_kills_the_command(skill: BuiltinSkill, tmp_path: Path) -> None:
    task = asyncio.create_task(skill.call_tool("exec", sh("echo $$ > pid; exec sleep 60")))
    pid_file = tmp_path / "pid"
    for _ in range(500):
        if pid_file.exists() and pid_file.read_text().strip():
            break
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await eventually_gone([int(pid_file.read_text())])


async def test_long_output_is_capped_and_marked_truncated(tmp_path: Path) -> None:
    skill = BuiltinSkill(tmp_path, exec_output_limit=1000)
    outcome = await run(
        skill, sh("head -c 5000 /dev/zero | tr '\\0' a; head -c 3000 /dev/zero >&2")
    )
    output = body(outcome)["output"]
    assert output.startswith("a" * 1000 + "\n[stdout truncated: 4000 more bytes not shown]")
    assert "[stderr truncated: 2000 more bytes not shown]" in output
    assert len(output) < 2200


async def test_flood_of_output_does_not_stall_the_command(tmp_path: Path) -> None:
    skill = BuiltinSkill(tmp_path, exec_output_limit=4096)
    outcome = await run(skill, sh("head -c 50000000 /dev/zero; echo done >&2"))
    assert not outcome.is_error
    assert "49995904 more bytes" in body(outcome)["output"]


async def test_nul_byte_in_command_or_argument_is_an_error(skill: BuiltinSkill) -> None:
    for args in (sh("true", command="t\x00rue"), sh("echo a\x00b")):
        outcome = await run(skill, args)
        assert body(outcome)["error"] == "InvalidArguments"


async def test_out_of_range_timeout_is_refused(skill: BuiltinSkill) -> None:
    for timeout in (0, -5, 10**12):
        outcome = await run(skill, sh("true", timeout=timeout))
        assert body(outcome)["error"] == "InvalidArguments"


async def test_missing_required_arguments_are_named(skill: BuiltinSkill) -> None:
    outcome = await skill.call_tool("exec", {"command": "ls"})
    message = body(outcome)["message"]
    for name in ("args", "env", "cwd", "stdout", "stderr"):
        assert f"'{name}' is required" in message


def _children() -> set[int]:
    text = Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").read_text()
    return {int(pid) for pid in text.split()}


@pytest.fixture(scope="module", autouse=True)
def children_before() -> set[int]:
    """Children that other test modules left running (a session-wide server, say) are
    theirs, not this module's: only what appears while these tests run counts."""
    return _children()


def test_no_exec_children_outlive_the_module(children_before: set[int]) -> None:
    left = [pid for pid in _children() - children_before if alive(pid)]
    assert left == []
