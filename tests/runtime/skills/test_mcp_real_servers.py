"""Third-party MCP servers, started the way users configure them: `mcp-server-time` from
PyPI (a dev dependency) and the npm reference server `@modelcontextprotocol/server-everything`
through `npx -y` (needs Node.js; CI installs it with `npm install -g`)."""

import dataclasses
import shutil

import pytest

from runtime.config import McpStdioSkill
from tests.fakes.mcp_helpers import MAKE_SKILL, TEST_TIMEOUTS, MakeSkill

NPX_START_S = 120.0  # npx may fetch the package from the registry first

make_skill_fixture = MAKE_SKILL


async def test_mcp_server_time_tells_the_time_in_utc(make_skill: MakeSkill) -> None:
    config = McpStdioSkill(
        type="mcpStdioSkill",
        command="mcp-server-time",
        args=["--local-timezone", "UTC"],
        pick=["get_current_time"],
    )
    skill, events = make_skill(config, name="time")
    outcome = await skill.call_tool("get_current_time", {"timezone": "UTC"})
    assert not outcome.is_error
    assert '"timezone": "UTC"' in outcome.contents[0].text  # type: ignore[union-attr]
    assert [d.name for d in skill.tool_definitions()] == ["get_current_time"]
    assert events.of("skillConnected")[0].server_info.name == "mcp-time"
    bad = await skill.call_tool("get_current_time", {"timezone": "Mars/Olympus_Mons"})
    assert bad.is_error


@pytest.mark.skipif(shutil.which("npx") is None, reason="Node.js (npx) is not installed")
async def test_the_npm_reference_server_everything_echoes_through_npx(
    make_skill: MakeSkill,
) -> None:
    config = McpStdioSkill(
        type="mcpStdioSkill", command="npx", packageName="@modelcontextprotocol/server-everything"
    )
    timeouts = dataclasses.replace(TEST_TIMEOUTS, start_s=NPX_START_S)
    skill, events = make_skill(config, name="everything", timeouts=timeouts)
    await skill.start()
    assert events.of("skillStarting")[0].args == ["-y", "@modelcontextprotocol/server-everything"]
    assert "echo" in {d.name for d in skill.tool_definitions()}
    outcome = await skill.call_tool("echo", {"message": "hello"})
    assert not outcome.is_error
    assert "hello" in outcome.contents[0].text  # type: ignore[union-attr]


@pytest.mark.skipif(
    shutil.which("mcp-server-everything") is None,
    reason="server-everything is not installed (npm install -g "
    "@modelcontextprotocol/server-everything)",
)
async def test_the_npm_reference_server_installed_globally_runs_without_npx(
    make_skill: MakeSkill,
) -> None:
    config = McpStdioSkill(
        type="mcpStdioSkill", command="mcp-server-everything", args=["stdio"], pick=["echo"]
    )
    skill, events = make_skill(config, name="everything")
    outcome = await skill.call_tool("echo", {"message": "from the global install"})
    assert "from the global install" in outcome.contents[0].text  # type: ignore[union-attr]
    assert events.of("skillConnected")[0].server_info.name == "mcp-servers/everything"
