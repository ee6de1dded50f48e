"""The container launcher: one fresh, hardened container per execution.

No Prefect here: the flows call ``launch`` (or ``launch_async``) and nothing else needs
an orchestrator to use it.
"""

from flows.launcher.engine import connect, engine_unavailable_reason, remove_leftovers
from flows.launcher.errors import (
    EngineUnavailableError,
    ImageMissingError,
    InvalidSpecError,
    LauncherError,
    ProxyStartError,
)
from flows.launcher.launch import launch, launch_async
from flows.launcher.limits import Limits
from flows.launcher.policy import egress_domains, network_policy_for
from flows.launcher.proxy import ensure_egress_network
from flows.launcher.result import Captured, LaunchResult, Outcome, Timings
from flows.launcher.spec import LaunchSpec, NetworkPolicy, user_workspace

__all__ = [
    "Captured",
    "EngineUnavailableError",
    "ImageMissingError",
    "InvalidSpecError",
    "LaunchResult",
    "LaunchSpec",
    "LauncherError",
    "Limits",
    "NetworkPolicy",
    "Outcome",
    "ProxyStartError",
    "Timings",
    "connect",
    "egress_domains",
    "engine_unavailable_reason",
    "ensure_egress_network",
    "launch",
    "launch_async",
    "network_policy_for",
    "remove_leftovers",
    "user_workspace",
]
