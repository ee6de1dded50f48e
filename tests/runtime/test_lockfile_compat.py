"""Locks the reference builds are used here, and ours keep the reference's entries."""

import tomllib
from pathlib import Path

import pytest

from runtime.config import load_config
from runtime.lockfile import LockfileError, lock_for_run

TOOL = """
[[experts.{key}.toolDefinitions]]
skillName = "@perstack/base"
name = "attemptCompletion"
description = "Finish"

[experts.{key}.toolDefinitions.inputSchema]
type = "object"
"""

# What the reference's install writes for an Expert without a skills table: expertSchema's
# default base skill (no configHash: the reference writes none).
REFERENCE_BARE_LOCK = (
    'version = "1"\ngeneratedAt = 1796321048962\nconfigPath = "perstack.toml"\n\n'
    '[experts.bare]\nkey = "bare"\nname = "bare"\nversion = "1.0.0"\ninstruction = "x"\n'
    "delegates = []\ntags = []\n\n"
    '[experts.bare.skills."@perstack/base"]\ntype = "mcpStdioSkill"\n'
    'name = "@perstack/base"\ndescription = "Base skill"\npick = []\nomit = []\n'
    'command = "npx"\nargs = [ "-y", "@perstack/base" ]\nrequiredEnv = []\nlazyInit = false\n'
    + TOOL.format(key="bare")
)
BARE_TOML = '[experts."bare"]\nversion = "1.0.0"\ninstruction = "x"\n'


def project(tmp_path: Path, toml: str, lock: str) -> Path:
    (tmp_path / "perstack.toml").write_text(toml)
    (tmp_path / "perstack.lock").write_text(lock)
    return tmp_path / "perstack.toml"


def test_a_reference_lock_of_an_expert_without_skills_table_is_used(tmp_path: Path) -> None:
    # Regression (compat L2): "skills."@perstack/base".command differs from the config's".
    config = project(tmp_path, BARE_TOML, REFERENCE_BARE_LOCK)
    assert lock_for_run(load_config(config), frozen=True) is not None


def test_our_older_builtin_entry_is_still_used(tmp_path: Path) -> None:
    ours = REFERENCE_BARE_LOCK.replace(
        'command = "npx"\nargs = [ "-y", "@perstack/base" ]', ('command = "builtin"\nargs = []')
    )
    assert lock_for_run(load_config(project(tmp_path, BARE_TOML, ours)), frozen=True)


def test_the_base_skills_pick_still_decides(tmp_path: Path) -> None:
    toml = (
        BARE_TOML + '[experts."bare".skills."@perstack/base"]\ntype = "mcpStdioSkill"\n'
        'command = "npx"\npackageName = "@perstack/base"\npick = ["attemptCompletion"]\n'
    )
    with pytest.raises(LockfileError, match=r'skills."@perstack/base".pick differs'):
        lock_for_run(load_config(project(tmp_path, toml, REFERENCE_BARE_LOCK)), frozen=True)


def test_a_reference_lock_that_names_its_interactive_tools_is_used(tmp_path: Path) -> None:
    toml = (
        BARE_TOML + '[experts."bare".skills."@perstack/base"]\ntype = "mcpStdioSkill"\n'
        'command = "npx"\npackageName = "@perstack/base"\n'
        '[experts."bare".skills."user"]\ntype = "interactiveSkill"\n'
        '[experts."bare".skills."user".tools.askUser]\ninputJsonSchema = "{}"\n'
    )
    lock = REFERENCE_BARE_LOCK.replace(
        "\n[[experts.bare.toolDefinitions]]",
        '\n[experts.bare.skills.user]\ntype = "interactiveSkill"\nname = "user"\n\n'
        '[experts.bare.skills.user.tools.askUser]\nname = "askUser"\ninputJsonSchema = "{}"\n'
        "\n[[experts.bare.toolDefinitions]]",
        1,
    )
    assert lock_for_run(load_config(project(tmp_path, toml, lock)), frozen=True) is not None


def test_install_writes_the_references_default_base_skill_entry(tmp_path: Path) -> None:
    from runtime.cli import main

    (tmp_path / "perstack.toml").write_text(BARE_TOML)
    assert main(["install", "--config", str(tmp_path / "perstack.toml")]) == 0
    with (tmp_path / "perstack.lock").open("rb") as handle:
        base = tomllib.load(handle)["experts"]["bare"]["skills"]["@perstack/base"]
    assert base["command"] == "npx"
    assert base["args"] == ["-y", "@perstack/base"]
    assert base["description"] == "Base skill"
    assert base["lazyInit"] is False
