"""The proxy's decisions: squid's access-log lines read as allowed or blocked, and a
throttle so that an Expert making thousands of requests a second cannot bury the caller
(and the operator's log store) under events.

Every decision stays in ``proxy.log`` (up to its size cap). Events pass one by one up to
a rate; past it, the decisions of each second are folded into one summary event per
action, which says how many there were and which hosts they named.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from flows.launcher.domains import domain_allowed
from flows.launcher.proxy_config import (
    ACCESS_TAG,
    REASON_ALLOWED,
    REASON_FORBIDDEN_ADDRESS,
    REASON_MALFORMED,
    REASON_NOT_ALLOWED,
)

Action = Literal["allowed", "blocked"]
# Decisions reported one by one per second; the rest of that second are summarised. A
# working Expert makes a few requests a second at most.
EVENTS_PER_SECOND = 50
# How many of a summary's hosts it names.
SUMMARY_HOSTS = 5
SUMMARY_DOMAIN = "*"
# What squid answers a request it could not even parse: never forwarded anywhere.
_MALFORMED_STATUSES = frozenset({"400", "501"})


@dataclass(frozen=True)
class Decision:
    action: Action
    domain: str
    port: int
    reason: str


def parse_access_line(line: bytes, allowed: tuple[str, ...]) -> Decision | None:
    """The decision an access-log line records, or None for any other line."""
    fields = line.decode(errors="replace").split("\t")
    if len(fields) < 6 or fields[0] != ACCESS_TAG:
        return None
    _, method, domain, port_text, squid_status, http_status = fields[:6]
    default_port = 443 if method == "CONNECT" else 80
    port = int(port_text) if port_text.isdigit() else default_port
    if "DENIED" in squid_status:
        forbidden = domain_allowed(domain, allowed)
        return Decision(
            "blocked", domain, port, REASON_FORBIDDEN_ADDRESS if forbidden else REASON_NOT_ALLOWED
        )
    if squid_status.startswith(("NONE", "TAG_NONE")) and (
        domain in ("", "-") or http_status in _MALFORMED_STATUSES
    ):
        return Decision("blocked", domain, port, f"{REASON_MALFORMED} (HTTP {http_status})")
    if http_status.isdigit() and int(http_status) >= 500:
        # Let through, then failed on the way (no such host, refused, upstream error).
        reason = f"{REASON_ALLOWED}; the request then failed (HTTP {http_status})"
        return Decision("allowed", domain, port, reason)
    return Decision("allowed", domain, port, REASON_ALLOWED)


@dataclass
class _Window:
    count: int = 0
    hosts: dict[str, None] = field(default_factory=dict)  # ordered, unique

    def add(self, decision: Decision) -> None:
        self.count += 1
        if len(self.hosts) < SUMMARY_HOSTS:
            self.hosts[f"{decision.domain}:{decision.port}"] = None


class DecisionThrottle:
    """Passes up to ``per_second`` decisions each second and summarises the rest."""

    def __init__(
        self, per_second: int = EVENTS_PER_SECOND, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._per_second = per_second
        self._clock = clock
        self._second = -1
        self._passed = 0
        self._held: dict[Action, _Window] = {}
        self.summarised = 0

    def offer(self, decision: Decision) -> list[Decision]:
        """The decisions to report now: summaries of a past second, then this one if it
        is within the rate."""
        second = int(self._clock())
        out = self.flush() if second != self._second else []
        if second != self._second:
            self._second, self._passed = second, 0
        if self._passed < self._per_second:
            self._passed += 1
            return [*out, decision]
        self._held.setdefault(decision.action, _Window()).add(decision)
        return out

    def flush(self) -> list[Decision]:
        """Summaries of what was held back, one per action."""
        out = []
        for action, window in sorted(self._held.items()):
            hosts = ", ".join(window.hosts)
            reason = (
                f"{window.count} more {action} requests within one second, not reported one "
                f"by one (the proxy's log has each); among them {hosts}"
            )
            out.append(Decision(action, SUMMARY_DOMAIN, 0, reason))
            self.summarised += window.count
        self._held.clear()
        return out
