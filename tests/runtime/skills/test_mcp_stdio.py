"""MCP skills over stdio against real server processes (tests/fakes/mcp_server.py): tools,
events, least privilege, every failure mode, and no process left behind."""

import asyncio
import dataclasses
import os
import time

import pytest

from runtime.errors import SkillError
from runtime.skills.manager import SkillManager
from runtime.skills.mcp import McpSkillError
from runtime.skills.mcp.process import group_members
from runtime.skills.skill import ToolOutcome
from tests.fakes.mcp_helpers import (
    MAKE_SKILL,
    TEST_TIMEOUTS,
    MakeSkill,
    fake_config,
    wrapped_config,
)

make_skill_fixture = MAKE_SKILL


def text_of(outcome: ToolOutcome) -> str:
    return "".join(getattr(part, "text", "") for part in outcome.contents)


async def test_tools_are_discovered_and_called_with_lifecycle_events(
    make_skill: MakeSkill,
) -> None:
    skill, events = make_skill(fake_config())
    await skill.start()
    names = {d.name for d in skill.tool_definitions()}
    assert {"echo", "fail", "stall", "crash"} <= names
    echo = next(d for d in skill.tool_definitions() if d.name == "echo")
    assert echo.skill_name == "fake" and echo.input_schema["required"] == ["message"]
    outcome = await skill.call_tool("echo", {"message": "ping"})
    assert text_of(outcome) == "ping" and not outcome.is_error
    await skill.close()
    assert events.types()[0] == "skillStarting"
    connected = events.of("skillConnected")[0]
    assert connected.server_info.name == "fake-server"
    for field in (
        "spawn_duration_ms",
        "handshake_duration_ms",
        "tool_discovery_duration_ms",
        "connect_duration_ms",
        "total_duration_ms",
    ):
        assert isinstance(getattr(connected, field), int)
    assert events.types()[-1] == "skillDisconnected"
    assert events.of("skillDisconnected")[0].reason is None


async def test_pick_and_omit_choose_the_offered_tools(make_skill: MakeSkill) -> None:
    skill, _ = make_skill(fake_config(pick=["echo", "fail", "env"], omit=["fail"]))
    await skill.start()
    assert sorted(d.name for d in skill.tool_definitions()) == ["echo", "env"]
    refused = await skill.call_tool("crash", {})
    assert refused.is_error and "not offered" in text_of(refused)


async def test_a_pick_or_omit_naming_a_tool_the_server_lacks_is_warned_about(
    make_skill: MakeSkill, caplog: pytest.LogCaptureFixture
) -> None:
    skill, _ = make_skill(fake_config(pick=["echo", "ecoh"], omit=["crahs"]))
    await skill.start()
    assert [d.name for d in skill.tool_definitions()] == ["echo"]
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("pick names ecoh, which the server does not offer" in w for w in warnings)
    assert any("omit names crahs" in w and "echo" in w for w in warnings)


async def test_a_tool_failure_goes_back_to_the_model_as_an_error_result(
    make_skill: MakeSkill,
) -> None:
    skill, _ = make_skill(fake_config())
    outcome = await skill.call_tool("fail", {"reason": "disk full"})
    assert outcome.is_error and "disk full" in text_of(outcome)
    still = await skill.call_tool("echo", {"message": "after"})  # the server is still fine
    assert text_of(still) == "after"


async def test_bad_arguments_are_an_error_result_not_a_stop(make_skill: MakeSkill) -> None:
    skill, _ = make_skill(fake_config())
    outcome = await skill.call_tool("echo", {"wrong": 1})
    assert outcome.is_error


async def test_a_secret_of_the_runtime_is_invisible_to_the_server(
    make_skill: MakeSkill,
) -> None:
    environ = {
        "PATH": os.environ["PATH"],
        "ANTHROPIC_API_KEY": "sk-very-secret",
        "SERVICE_TOKEN": "token-for-the-server",
    }
    skill, _ = make_skill(fake_config(requiredEnv=["SERVICE_TOKEN"]), environ=environ)
    secret = await skill.call_tool("env", {"name": "ANTHROPIC_API_KEY"})
    required = await skill.call_tool("env", {"name": "SERVICE_TOKEN"})
    assert text_of(secret) == "<unset>"
    assert text_of(required) == "token-for-the-server"


async def test_each_stderr_line_is_one_skill_stderr_event(make_skill: MakeSkill) -> None:
    skill, events = make_skill(fake_config())
    await skill.call_tool("shout", {"count": 3})
    await skill.close()  # stderr is read to its end before close returns
    lines = [e.message for e in events.of("skillStderr") if e.message.startswith("line ")]
    assert lines == ["line 0", "line 1", "line 2"]


async def test_the_server_runs_in_a_process_group_of_its_own(make_skill: MakeSkill) -> None:
    skill, _ = make_skill(fake_config())
    pid, pgid = text_of(await skill.call_tool("whoami", {})).split()
    assert int(pid) == int(pgid) != os.getpgid(0)


async def test_a_server_that_exits_at_once_fails_fast_with_its_stderr_in_the_error(
    make_skill: MakeSkill,
) -> None:
    skill, events = make_skill(fake_config("exit-at-once"))
    began = time.monotonic()
    with pytest.raises(McpSkillError) as caught:
        await skill.start()
    assert time.monotonic() - began < TEST_TIMEOUTS.start_s
    message = str(caught.value)
    assert "exited with code 3" in message
    assert "cannot open /nonexistent/db.sqlite" in message
    assert events.of("skillDisconnected")[0].reason == "the server exited with code 3"
    with pytest.raises(SkillError):  # a broken skill stays broken
        await skill.call_tool("echo", {"message": "x"})


async def test_a_server_that_hangs_at_start_fails_at_the_start_timeout(
    make_skill: MakeSkill,
) -> None:
    timeouts = dataclasses.replace(TEST_TIMEOUTS, start_s=1.0)
    skill, events = make_skill(fake_config("hang-at-start"), timeouts=timeouts)
    with pytest.raises(McpSkillError, match="did not finish starting within 1 s") as caught:
        await skill.start()
    assert "warming up" in str(caught.value)
    assert skill.process is not None and group_members(skill.process.pgid) == []
    assert "did not finish starting" in events.of("skillDisconnected")[0].reason


async def test_a_call_never_answered_fails_at_the_call_timeout(make_skill: MakeSkill) -> None:
    timeouts = dataclasses.replace(TEST_TIMEOUTS, call_s=1.0)
    skill, _ = make_skill(fake_config(), timeouts=timeouts)
    await skill.start()
    began = time.monotonic()
    with pytest.raises(McpSkillError, match="did not answer a call of 'stall' within 1 s"):
        await skill.call_tool("stall", {})
    assert time.monotonic() - began < 5


async def test_a_server_dying_during_a_call_stops_with_its_exit_code_and_stderr(
    make_skill: MakeSkill,
) -> None:
    skill, events = make_skill(fake_config())
    with pytest.raises(McpSkillError) as caught:
        await skill.call_tool("crash", {})
    assert "exited with code 7 during a call of 'crash'" in str(caught.value)
    assert "crashing on purpose" in str(caught.value)
    assert "during a call" in events.of("skillDisconnected")[0].reason


async def test_a_missing_command_is_a_clear_error(make_skill: MakeSkill) -> None:
    config = fake_config().model_copy(update={"command": "no-such-mcp-server-here"})
    skill, _ = make_skill(config)
    with pytest.raises(McpSkillError, match="could not start 'no-such-mcp-server-here'"):
        await skill.start()


async def test_a_server_ignoring_sigterm_is_killed_within_the_grace(
    make_skill: MakeSkill,
) -> None:
    skill, events = make_skill(fake_config("ignore-sigterm"))
    await skill.start()
    assert skill.process is not None
    pgid = skill.process.pgid
    began = time.monotonic()
    await skill.close()
    assert time.monotonic() - began < TEST_TIMEOUTS.close_bound_s
    assert group_members(pgid) == []
    assert skill.process.returncode == -9


async def test_a_wrapper_script_and_all_it_started_are_gone_after_close(
    make_skill: MakeSkill,
) -> None:
    skill, events = make_skill(wrapped_config())
    outcome = await skill.call_tool("echo", {"message": "through the wrapper"})
    assert text_of(outcome) == "through the wrapper"
    assert skill.process is not None
    pgid = skill.process.pgid
    assert len(group_members(pgid)) >= 3  # sh, the server, the sleep it left behind
    await skill.close()
    assert group_members(pgid) == []


async def test_a_child_the_server_started_goes_with_it(make_skill: MakeSkill) -> None:
    skill, _ = make_skill(fake_config())
    child = int(text_of(await skill.call_tool("spawn_child", {})))
    assert skill.process is not None and child in group_members(skill.process.pgid)
    await skill.close()
    assert child not in group_members(skill.process.pgid)


async def test_concurrent_first_calls_start_the_server_once(make_skill: MakeSkill) -> None:
    skill, events = make_skill(fake_config())
    outcomes = await asyncio.gather(
        *(skill.call_tool("echo", {"message": str(n)}) for n in range(5))
    )
    assert [text_of(o) for o in outcomes] == [str(n) for n in range(5)]
    assert len(events.of("skillStarting")) == 1


class _BrokenClose:
    name = "broken"

    async def start(self) -> None:
        return None

    def tool_definitions(self) -> list:  # type: ignore[type-arg]
        return []

    async def call_tool(self, tool_name: str, args: dict) -> ToolOutcome:  # type: ignore[type-arg]
        raise AssertionError("not called")

    async def close(self) -> None:
        raise RuntimeError("cannot close")


async def test_closing_one_failing_skill_still_closes_the_servers_of_the_others(
    make_skill: MakeSkill,
) -> None:
    first, _ = make_skill(fake_config(pick=["echo"]), name="first")
    second, _ = make_skill(fake_config(pick=["env"]), name="second")
    manager = SkillManager(
        [first, _BrokenClose(), second],
        emit=lambda e: None,  # type: ignore[list-item]
        job_id="job",
        run_id="run",
    )
    await manager.start_eager(lambda skill: True)
    groups = [s.process.pgid for s in (first, second) if s.process is not None]
    assert len(groups) == 2
    await manager.close()
    assert all(group_members(pgid) == [] for pgid in groups)
