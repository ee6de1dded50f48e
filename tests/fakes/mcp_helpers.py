"""Helpers for tests of MCP skills: configs for the fake server, an event recorder, and a
fixture that closes every skill a test made and checks that no server process is left."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest_asyncio

from runtime.config import McpSseSkill, McpStdioSkill
from runtime.events import Event
from runtime.skills.mcp import McpSkill, McpTimeouts
from runtime.skills.mcp.process import group_members

FAKE_SERVER = Path(__file__).with_name("mcp_server.py")
WRAPPER = Path(__file__).with_name("mcp_wrapper.sh")
# Short enough to keep failure tests quick, long enough for a cold Python server to start.
TEST_TIMEOUTS = McpTimeouts(start_s=15.0, call_s=15.0, term_grace_s=1.0, kill_reap_s=2.0)


def fake_config(mode: str = "serve", *extra: str, **fields: Any) -> McpStdioSkill:
    return McpStdioSkill(
        type="mcpStdioSkill",
        command=sys.executable,
        args=[str(FAKE_SERVER), mode, *extra],
        **fields,
    )


def wrapped_config(mode: str = "serve") -> McpStdioSkill:
    return McpStdioSkill(type="mcpStdioSkill", command=str(WRAPPER), args=[sys.executable, mode])


class Events(list[Event]):
    def types(self) -> list[str]:
        return [event.type for event in self]

    def of(self, kind: str) -> list[Any]:
        return [event for event in self if event.type == kind]


def processes_with(marker: str) -> list[int]:
    """Live processes whose command line contains ``marker``."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{entry.name}/cmdline").read_bytes()
            state = Path(f"/proc/{entry.name}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if marker.encode() in cmdline and state not in (b"Z", b"X"):
            found.append(int(entry.name))
    return found


MakeSkill = Callable[..., tuple[McpSkill, Events]]


async def skill_maker() -> AsyncIterator[MakeSkill]:
    """Make skills; afterwards close them all and assert each server's group is gone."""
    made: list[McpSkill] = []

    def make(
        config: McpStdioSkill | McpSseSkill,
        name: str = "fake",
        **options: Any,
    ) -> tuple[McpSkill, Events]:
        events = Events()
        options.setdefault("timeouts", TEST_TIMEOUTS)
        skill = McpSkill(
            name,
            config,
            expert_key="tester",
            job_id="job",
            run_id="run",
            emit=events.append,
            **options,
        )
        made.append(skill)
        return skill, events

    yield make
    groups = []
    for skill in made:
        if skill.process is not None:
            groups.append(skill.process.pgid)
        await skill.close()
    left = {pgid: group_members(pgid) for pgid in groups if group_members(pgid)}
    assert not left, f"server processes left behind: {left}"


# Test modules use it as `make_skill_fixture = MAKE_SKILL` and ask for `make_skill`.
MAKE_SKILL = pytest_asyncio.fixture(skill_maker, name="make_skill")
