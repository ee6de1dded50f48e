"""How a mcpStdioSkill becomes argv and environment: the reference's npx/uvx convention
and least privilege."""

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

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


def test_a_named_preload_library_is_loaded_into_every_server(tmp_path) -> None:
    library = tmp_path / "undumpable.so"
    library.write_bytes(b"")
    environ = {"PATH": "/usr/bin", "PERSTACK_SERVER_PRELOAD": str(library)}
    env = server_environment("e", "s", [], environ)
    assert env["LD_PRELOAD"] == str(library)
    assert "PERSTACK_SERVER_PRELOAD" not in env


def test_a_preload_library_that_is_missing_is_a_config_error(tmp_path) -> None:
    environ = {"PATH": "/usr/bin", "PERSTACK_SERVER_PRELOAD": str(tmp_path / "gone.so")}
    with pytest.raises(ConfigError, match="build-preload.sh"):
        server_environment("e", "s", [], environ)


def _environ_owner(env: dict[str, str]) -> int:
    """Who owns /proc/<pid>/environ of a process started with ``env``: its own user while
    it is dumpable, root once it is not (and then only root may read it)."""
    user = 65534 if os.geteuid() == 0 else None  # a reader's point of view, not root's
    child = subprocess.Popen(
        ["cat"],  # dynamically linked, waits on stdin, runs for any user
        stdin=subprocess.PIPE,
        env=env,
        user=user,
    )
    try:
        time.sleep(0.3)  # past the dynamic loader and the library's constructor
        return os.stat(f"/proc/{child.pid}/environ").st_uid
    finally:
        child.communicate(b"", timeout=10)


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc to build the preload library")
def test_the_preload_library_hides_a_servers_environment_from_its_user() -> None:
    repo = Path(__file__).resolve().parents[3]
    # Where any user may load it from, as /usr/local/lib is in the image.
    with tempfile.TemporaryDirectory(prefix="perstack-preload-") as folder:
        os.chmod(folder, 0o755)
        library = Path(folder) / "libperstack-undumpable.so"
        source = repo / "docker" / "preload" / "undumpable.c"
        subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(library), str(source)], check=True)
        plain = server_environment("e", "s", [], {"PATH": os.environ["PATH"]})
        preloaded = server_environment(
            "e", "s", [], {"PATH": os.environ["PATH"], "PERSTACK_SERVER_PRELOAD": str(library)}
        )
        assert _environ_owner(plain) != 0
        assert _environ_owner(preloaded) == 0
