"""How a mcpStdioSkill becomes argv and environment: the reference's npx/uvx convention
and least privilege."""

import pytest

from runtime.config import McpStdioSkill
from runtime.errors import ConfigError
from runtime.skills.mcp.command import server_command, server_environment
from tests.fakes.mcp_helpers import MAKE_SKILL, MakeSkill, fake_config

make_skill_fixture = MAKE_SKILL


def stdio(**fields: object) -> McpStdioSkill:
    return McpStdioSkill.model_validate({"type": "mcpStdioSkill", **fields})


def test_an_npx_package_runs_with_the_yes_flag_first() -> None:
    config = stdio(command="npx", packageName="@modelcontextprotocol/server-everything")
    assert server_command("e", "s", config) == [
        "npx",
        "-y",
        "@modelcontextprotocol/server-everything",
    ]


def test_npx_args_that_already_say_yes_are_kept_as_they_are() -> None:
    config = stdio(command="npx", args=["-y", "some-server", "--flag"])
    assert server_command("e", "s", config) == ["npx", "-y", "some-server", "--flag"]


def test_a_uvx_package_runs_as_the_only_argument() -> None:
    config = stdio(command="uvx", packageName="mcp-server-time")
    assert server_command("e", "s", config) == ["uvx", "mcp-server-time"]


def test_args_are_passed_in_their_order() -> None:
    config = stdio(command="mcp-server-time", args=["--local-timezone", "UTC"])
    assert server_command("e", "s", config) == ["mcp-server-time", "--local-timezone", "UTC"]


def test_package_name_and_args_together_are_refused_naming_the_skill() -> None:
    config = stdio(command="npx", packageName="a", args=["b"])
    with pytest.raises(ConfigError, match=r'experts."e".skills."s": has both packageName'):
        server_command("e", "s", config)


def test_the_server_environment_is_the_base_plus_required_variables_only() -> None:
    environ = {
        "PATH": "/usr/bin",
        "HOME": "/home/u",
        "ANTHROPIC_API_KEY": "sk-secret",
        "GITHUB_TOKEN": "ghp",
        "AWS_SECRET_ACCESS_KEY": "aws",
    }
    env = server_environment("e", "s", ["GITHUB_TOKEN"], environ)
    assert env == {"PATH": "/usr/bin", "HOME": "/home/u", "GITHUB_TOKEN": "ghp"}


def test_a_missing_required_variable_is_a_config_error_naming_it() -> None:
    with pytest.raises(ConfigError, match="requiredEnv names GITHUB_TOKEN, which is not set"):
        server_environment("e", "s", ["GITHUB_TOKEN"], {"PATH": "/bin"})


def test_a_required_variable_that_changes_program_loading_is_refused() -> None:
    with pytest.raises(ConfigError, match="may not name LD_PRELOAD"):
        server_environment("e", "s", ["LD_PRELOAD"], {"LD_PRELOAD": "/x.so"})


async def test_a_missing_required_variable_fails_before_anything_is_spawned(
    make_skill: MakeSkill,
) -> None:
    config = fake_config(requiredEnv=["PERSTACK_TEST_UNSET_TOKEN"])
    with pytest.raises(ConfigError, match="PERSTACK_TEST_UNSET_TOKEN"):
        make_skill(config, environ={"PATH": "/usr/bin"})
