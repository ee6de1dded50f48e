"""MCP skills over HTTP: the SSE transport (endpoint path ending in /sse) and streamable
HTTP (any other path), against the fake server listening on 127.0.0.1."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from runtime.config import McpSseSkill
from runtime.skills.mcp import McpSkillError
from runtime.skills.mcp.remote import transport_kind
from tests.fakes.mcp_helpers import FAKE_SERVER, MAKE_SKILL, MakeSkill

STARTUP_S = 20.0  # a cold Python server with uvicorn

make_skill_fixture = MAKE_SKILL


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _serve(mode: str) -> Iterator[int]:
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, str(FAKE_SERVER), mode, str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + STARTUP_S
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        else:
            pytest.fail(f"the fake {mode} server did not listen within {STARTUP_S} s")
        yield port
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=10)


@pytest.fixture
def sse_port() -> Iterator[int]:
    yield from _serve("sse")


@pytest.fixture
def http_port() -> Iterator[int]:
    yield from _serve("http")


def test_the_transport_follows_the_endpoint_path() -> None:
    assert transport_kind("https://tools.example.com/sse") == "sse"
    assert transport_kind("https://tools.example.com/v1/sse/") == "sse"
    assert transport_kind("https://tools.example.com/mcp") == "streamable-http"


async def test_a_server_over_sse_serves_its_tools(make_skill: MakeSkill, sse_port: int) -> None:
    config = McpSseSkill(type="mcpSseSkill", endpoint=f"http://127.0.0.1:{sse_port}/sse")
    skill, events = make_skill(config)
    outcome = await skill.call_tool("echo", {"message": "over sse"})
    assert outcome.contents[0].text == "over sse"  # type: ignore[union-attr]
    assert events.of("skillStarting")[0].command == "sse"
    failed = await skill.call_tool("fail", {"reason": "nope"})
    assert failed.is_error


async def test_a_server_over_streamable_http_serves_its_tools(
    make_skill: MakeSkill, http_port: int
) -> None:
    config = McpSseSkill(type="mcpSseSkill", endpoint=f"http://127.0.0.1:{http_port}/mcp")
    skill, events = make_skill(config)
    await skill.start()
    assert "echo" in {d.name for d in skill.tool_definitions()}
    outcome = await skill.call_tool("echo", {"message": "over http"})
    assert outcome.contents[0].text == "over http"  # type: ignore[union-attr]
    assert events.of("skillConnected")[0].server_info.name == "fake-server"


async def test_an_endpoint_nobody_listens_on_fails_with_a_clear_error(
    make_skill: MakeSkill,
) -> None:
    config = McpSseSkill(type="mcpSseSkill", endpoint=f"http://127.0.0.1:{_free_port()}/mcp")
    skill, _ = make_skill(config)
    with pytest.raises(McpSkillError, match="could not connect"):
        await skill.start()
