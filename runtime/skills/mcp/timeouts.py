"""How long an MCP server may take, each bound named with its reason.

Defaults are overridable per run through the environment (milliseconds):
``PERSTACK_MCP_START_TIMEOUT_MS`` and ``PERSTACK_MCP_CALL_TIMEOUT_MS``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass

logger = logging.getLogger(__name__)

# Spawn, handshake and tool discovery together. Generous because `npx -y`/`uvx` may first
# fetch the package; a server that needs longer is broken for an interactive agent.
START_TIMEOUT_S = 30.0
# One tool call. Tools do real work (git, HTTP), but a server that stays silent this long
# must not hold the run until the run's own, much longer, timeout.
CALL_TIMEOUT_S = 120.0
# After its stdin closes a well-behaved server exits by itself; this is its chance to.
STDIN_CLOSE_GRACE_S = 0.5
# Between SIGTERM to the server's process group and SIGKILL: time to flush and exit.
TERM_GRACE_S = 2.0
# After SIGKILL, how long we watch for the group to disappear before giving up on it.
KILL_REAP_S = 2.0
# Closing the client session (HTTP DELETE, task teardown) before we stop waiting for it.
SESSION_CLOSE_S = 2.0
# After a server died, time to read its last stderr lines into the error message.
STDERR_DRAIN_S = 0.5

START_ENV = "PERSTACK_MCP_START_TIMEOUT_MS"
CALL_ENV = "PERSTACK_MCP_CALL_TIMEOUT_MS"


@dataclass(frozen=True)
class McpTimeouts:
    start_s: float = START_TIMEOUT_S
    call_s: float = CALL_TIMEOUT_S
    stdin_close_grace_s: float = STDIN_CLOSE_GRACE_S
    term_grace_s: float = TERM_GRACE_S
    kill_reap_s: float = KILL_REAP_S
    session_close_s: float = SESSION_CLOSE_S
    stderr_drain_s: float = STDERR_DRAIN_S

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> McpTimeouts:
        env = os.environ if environ is None else environ
        return cls(
            start_s=_seconds(env, START_ENV, START_TIMEOUT_S),
            call_s=_seconds(env, CALL_ENV, CALL_TIMEOUT_S),
        )

    @property
    def close_bound_s(self) -> float:
        """The longest closing one stdio server can take."""
        return (
            self.session_close_s + self.stdin_close_grace_s + self.term_grace_s + self.kill_reap_s
        )


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    text = env.get(name)
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        logger.warning(
            "%s=%r is not a whole number of milliseconds; using %s s", name, text, default
        )
        return default
    if value < 1:
        logger.warning("%s=%r must be at least 1 ms; using %s s", name, text, default)
        return default
    return value / 1000
