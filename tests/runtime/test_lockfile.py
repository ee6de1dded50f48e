"""perstack.lock: what `perstack install` writes, and reading it back (ours and the
reference's)."""

import contextlib
import io
import json
import shutil
import signal
import subprocess
import sys
import time
import tomllib
import uuid
from pathlib import Path

import pytest

from runtime.cli import main
from runtime.config import load_config
from runtime.lockfile import (
    LockedExpert,
    Lockfile,
    LockfileError,
    config_hash,
    lock_for_run,
    read_lockfile,
    render,
)
from runtime.skills.skill import ToolDefinition
from tests.fakes.mcp_helpers import FAKE_SERVER, processes_with
from tests.reference import RECORDINGS
from tests.runtime.harness import REPO, Project, make_project

REFERENCE_LOCK = RECORDINGS / "08-install-lockfile" / "disk" / "perstack.lock"


def fake_skill_toml(
    expert: str, name: str, *, pick: list[str], marker: str = "lock-test", extra: str = ""
) -> str:
    args = [str(FAKE_SERVER), "serve", marker]
    return (
        f'[experts."{expert}".skills."{name}"]\n'
        'type = "mcpStdioSkill"\n'
        f"command = {json.dumps(sys.executable)}\n"
        f"args = {json.dumps(args)}\n"
        f"pick = {json.dumps(pick)}\n{extra}\n"
    )


def two_expert_toml() -> str:
    return (
        '[experts."zeta"]\ninstruction = "Echo things."\n'
        + fake_skill_toml("zeta", "fake", pick=["whoami", "echo"])
        + '[experts."zeta".skills."@perstack/base"]\ntype = "mcpStdioSkill"\ncommand = "npx"\n'
        'packageName = "@perstack/base"\npick = ["attemptCompletion"]\n\n'
        '[experts."alpha"]\ndescription = "Only the built-in tools"\ninstruction = "Work."\n'
    )


def install(project: Project) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["install", "--config", str(project.config)])
    assert code == 0
    return out.getvalue()


@pytest.fixture
def locked(tmp_path: Path) -> Project:
    project = make_project(tmp_path, two_expert_toml())
    install(project)
    return project


def test_install_writes_the_reference_format_next_to_the_config(locked: Project) -> None:
    data = tomllib.loads((locked.root / "perstack.lock").read_text())
    assert data["version"] == "1"
    assert isinstance(data["generatedAt"], int)
    assert data["configPath"] == "perstack.toml"
    assert data["configHash"] == config_hash(locked.config.read_bytes())
    assert list(data["experts"]) == ["alpha", "zeta"]
    zeta = data["experts"]["zeta"]
    assert zeta["key"] == zeta["name"] == "zeta"
    assert zeta["version"] == "1.0.0" and zeta["delegates"] == [] and zeta["tags"] == []
    assert list(zeta["skills"]) == ["@perstack/base", "fake"]
    fake = zeta["skills"]["fake"]
    assert list(fake)[:2] == ["type", "name"]
    assert fake["requiredEnv"] == [] and fake["omit"] == [] and fake["lazyInit"] is True
    assert fake["pick"] == ["whoami", "echo"]  # the config's order, not ours
    tools = [(t["skillName"], t["name"]) for t in zeta["toolDefinitions"]]
    assert tools == [("@perstack/base", "attemptCompletion"), ("fake", "echo"), ("fake", "whoami")]
    echo = zeta["toolDefinitions"][1]
    assert echo["inputSchema"]["required"] == ["message"]
    assert "listDirectory" in {t["name"] for t in data["experts"]["alpha"]["toolDefinitions"]}


def test_install_tells_what_it_collected(tmp_path: Path) -> None:
    project = make_project(tmp_path, two_expert_toml())
    printed = install(project)
    assert "Collecting tool definitions for zeta..." in printed
    assert "  Found 3 tool(s)" in printed
    assert f"Generated {project.root / 'perstack.lock'}" in printed


def test_a_second_install_of_an_unchanged_config_leaves_the_lock_untouched(
    locked: Project,
) -> None:
    # Regression (newuser #10): every install rewrote generatedAt, dirtying a committed lock.
    path = locked.root / "perstack.lock"
    first = path.read_bytes()
    before = path.stat().st_mtime_ns
    printed = install(locked)
    assert path.read_bytes() == first
    assert path.stat().st_mtime_ns == before
    assert f"{path} is up to date (left unchanged)" in printed


def test_an_install_after_a_change_rewrites_the_lock_with_a_new_generated_at(
    locked: Project,
) -> None:
    path = locked.root / "perstack.lock"
    first = tomllib.loads(path.read_text())
    locked.config.write_text(locked.config.read_text().replace('"Work."', '"Work well."'))
    assert "Generated" in install(locked)
    second = tomllib.loads(path.read_text())
    assert second["experts"]["alpha"]["instruction"] == "Work well."
    assert second["generatedAt"] >= first["generatedAt"]
    assert second["configHash"] != first["configHash"]


def test_a_tool_offered_by_two_skills_fails_install_naming_both(tmp_path: Path) -> None:
    toml = (
        '[experts."w"]\ninstruction = "x"\n'
        + fake_skill_toml("w", "one", pick=["echo"])
        + fake_skill_toml("w", "two", pick=["echo"])
    )
    project = make_project(tmp_path, toml)
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["install", "--config", str(project.config)])
    assert code == 2
    assert "'echo' is offered by both skill 'one' and skill 'two'" in err.getvalue()
    assert not (project.root / "perstack.lock").exists()


def test_a_missing_required_variable_fails_install_before_spawning(tmp_path: Path) -> None:
    toml = '[experts."w"]\ninstruction = "x"\n' + fake_skill_toml(
        "w", "one", pick=["echo"], extra='requiredEnv = ["PERSTACK_TEST_NEVER_SET"]'
    )
    project = make_project(tmp_path, toml)
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        assert main(["install", "--config", str(project.config)]) == 2
    assert "PERSTACK_TEST_NEVER_SET" in err.getvalue()


def test_a_lock_reads_back_as_written_and_drops_the_nulls_toml_cannot_hold(
    tmp_path: Path,
) -> None:
    schema = {
        "type": "object",
        "properties": {"b": {"type": "string", "default": None}, "a": {"type": "integer"}},
        "required": ["b"],
    }
    definition = ToolDefinition("s", "t", "does t", schema)
    lock = Lockfile(
        generated_at=1,
        config_path="perstack.toml",
        config_hash="sha256:00",
        experts={
            "e": LockedExpert(
                key="e",
                name="e",
                version="1.0.0",
                instruction="i",
                skills={"s": {"type": "mcpStdioSkill", "name": "s"}},
                tool_definitions=[definition],
            )
        },
    )
    path = tmp_path / "perstack.lock"
    path.write_text(render(lock))
    back = read_lockfile(path)
    assert back.config_hash == "sha256:00"
    read = back.experts["e"].tool_definitions[0]
    assert read.input_schema == {
        "properties": {"a": {"type": "integer"}, "b": {"type": "string"}},
        "required": ["b"],
        "type": "object",
    }
    assert back.tools_by_skill("e") == {"s": [read]}


def test_a_lock_written_by_the_reference_reads_back() -> None:
    lock = read_lockfile(REFERENCE_LOCK)
    assert lock.config_hash is None
    echoer = lock.experts["echoer"]
    assert [d.name for d in echoer.tool_definitions] == ["attemptCompletion", "echo"]
    assert echoer.skills["e2e-echo"]["command"] == "node"


def reference_project(tmp_path: Path, edit: tuple[str, str] | None = None) -> Path:
    recorded = REFERENCE_LOCK.parent.parent
    toml = (recorded / "perstack.toml").read_text()
    if edit is not None:
        toml = toml.replace(*edit)
    (tmp_path / "perstack.toml").write_text(toml)
    shutil.copy(REFERENCE_LOCK, tmp_path / "perstack.lock")
    return tmp_path / "perstack.toml"


def test_a_reference_lock_is_used_when_its_skills_are_the_configs(tmp_path: Path) -> None:
    lock = lock_for_run(load_config(reference_project(tmp_path)), frozen=True)
    assert lock is not None
    tools = lock.tools_by_skill("echoer")
    assert tools is not None and [d.name for d in tools["e2e-echo"]] == ["echo"]


def test_a_reference_lock_whose_skills_differ_is_refused_naming_the_field(
    tmp_path: Path,
) -> None:
    config = reference_project(tmp_path, ('pick = ["echo"]', 'pick = ["echo", "add"]'))
    with pytest.raises(LockfileError, match=r'skills."e2e-echo".pick differs'):
        lock_for_run(load_config(config), frozen=True)
    assert lock_for_run(load_config(config)) is None


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_during_install_stops_it_with_no_server_left_and_no_lock(
    tmp_path: Path, signum: signal.Signals
) -> None:
    marker = f"install-{uuid.uuid4().hex}"
    args = [str(FAKE_SERVER), "hang-at-start", marker]
    toml = (
        '[experts."w"]\ninstruction = "x"\n[experts."w".skills."slow"]\n'
        f'type = "mcpStdioSkill"\ncommand = {json.dumps(sys.executable)}\n'
        f"args = {json.dumps(args)}\n"
    )
    project = make_project(tmp_path, toml)
    process = subprocess.Popen(
        [sys.executable, "-m", "runtime.cli", "install", "--config", str(project.config)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes_with(marker), "the server never started"
    process.send_signal(signum)
    process.communicate(timeout=30)
    assert process.returncode == 128 + signum
    assert processes_with(marker) == []
    assert not (project.root / "perstack.lock").exists()
