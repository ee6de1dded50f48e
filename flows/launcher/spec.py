"""What one execution asks for: image, command, workspace, environment, limits, network."""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from flows.launcher.domains import normalize_domain, normalize_domains
from flows.launcher.errors import InvalidSpecError
from flows.launcher.limits import Limits
from runtime.ids import new_id
from runtime.pid1 import DEADLINE_ENV

DEFAULT_IMAGE = "perstack-runtime:latest"
DEFAULT_PROXY_IMAGE = "perstack-proxy:latest"
# The image's non-root user (Dockerfile: PERSTACK_UID).
DEFAULT_USER = "10001:10001"
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_USER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# Names the launcher sets itself; a caller passing them would redirect or bypass the proxy.
_RESERVED_ENV = frozenset(
    {
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "no_proxy",
        "all_proxy",
        DEADLINE_ENV,
    }
)


@dataclass(frozen=True)
class NetworkPolicy:
    """``none``: no network at all. ``allowList``: egress only to ``domains`` (and their
    subdomains) through the allow-list proxy; everything else, link-local and metadata
    addresses included, is refused and reported."""

    mode: Literal["none", "allowList"] = "none"
    domains: tuple[str, ...] = ()
    # Names the proxy resolves by itself (host -> address): an LLM gateway inside the
    # network, say. A pinned name may reach an internal address; no other name may.
    proxy_hosts: Mapping[str, str] = field(default_factory=dict)
    # The bridge network the proxy reaches out through (created when missing).
    egress_network: str = "perstack-egress"

    @classmethod
    def none(cls) -> NetworkPolicy:
        return cls()

    @classmethod
    def allow(
        cls,
        domains: list[str] | tuple[str, ...],
        proxy_hosts: Mapping[str, str] | None = None,
        egress_network: str = "perstack-egress",
    ) -> NetworkPolicy:
        try:
            normalized = normalize_domains(tuple(domains))
            pinned = {
                normalize_domain(name): str(ipaddress.ip_address(address))
                for name, address in (proxy_hosts or {}).items()
            }
        except ValueError as error:
            raise InvalidSpecError(f"network policy: {error}") from error
        return cls(
            mode="allowList",
            domains=normalized,
            proxy_hosts=pinned,
            egress_network=egress_network,
        )


@dataclass(frozen=True)
class LaunchSpec:
    """One execution. ``args`` follow the image's entrypoint (for the runtime image:
    ``[expert_key, query]``); ``entrypoint`` replaces it (tests, benchmarks).

    ``env`` holds values passed as they are; ``env_from_host`` names variables copied from
    the launcher's own environment. Nothing else is passed, and values are never logged.
    ``capture_dir`` (on the host, outside the workspace) receives events.jsonl, stderr.log
    and, with a proxy, proxy.log. ``inputs`` (on the host, outside the workspace) is a
    folder the container reads at ``/input``, read-only: files the runtime needs (the
    scripted model's replies, a query too large for the command line) that the Expert must
    not be able to change, and that the host never writes into the workspace, where a link
    or a FIFO the Expert left could redirect or block the write.
    """

    workspace: Path
    capture_dir: Path
    args: tuple[str, ...] = ()
    image: str = DEFAULT_IMAGE
    entrypoint: tuple[str, ...] | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    env_from_host: tuple[str, ...] = ()
    limits: Limits = field(default_factory=Limits)
    network: NetworkPolicy = field(default_factory=NetworkPolicy)
    labels: Mapping[str, str] = field(default_factory=dict)
    user: str = DEFAULT_USER
    proxy_image: str = DEFAULT_PROXY_IMAGE
    job_id: str | None = None
    run_id: str | None = None
    inputs: Path | None = None

    def __post_init__(self) -> None:
        names = [*self.env, *self.env_from_host]
        bad = [n for n in names if not _ENV_NAME.match(n) or n in _RESERVED_ENV]
        if bad:
            raise InvalidSpecError(
                f"environment variable names {bad!r} are invalid or reserved for the launcher"
            )
        # The container controls the workspace: symlinks planted there must never redirect
        # what the launcher writes on the host, nor what the container is given to read.
        _refuse_inside_workspace("capture_dir", self.capture_dir, self.workspace)
        if self.inputs is not None:
            _refuse_inside_workspace("inputs", self.inputs, self.workspace)
        if any(k.startswith("perstack.") for k in self.labels):
            raise InvalidSpecError("labels under 'perstack.' are set by the launcher itself")

    @classmethod
    def for_expert(
        cls,
        expert: str,
        query: str | None,
        *,
        workspace: Path,
        capture_dir: Path,
        runtime_args: tuple[str, ...] = (),
        job_id: str | None = None,
        **options: Any,
    ) -> LaunchSpec:
        """An execution of the runtime image: ``perstack run ... EXPERT QUERY``, with the
        job id decided here so the launcher's events and the runtime's share it. ``query``
        None: ``runtime_args`` carry ``--query-file``."""
        job = job_id or new_id()
        query_arg = () if query is None else (query,)
        args = (expert, *query_arg, "--job-id", job, *runtime_args)
        return cls(workspace=workspace, capture_dir=capture_dir, args=args, job_id=job, **options)

    def resolved_env(self) -> dict[str, str]:
        """The environment handed to the container: only the named variables."""
        env = dict(self.env)
        missing = [n for n in self.env_from_host if n not in os.environ]
        if missing:
            raise InvalidSpecError(f"environment variables {missing!r} are not set on the host")
        env.update({n: os.environ[n] for n in self.env_from_host})
        return env


def _refuse_inside_workspace(name: str, path: Path, workspace: Path) -> None:
    """Refuse ``path`` inside ``workspace``, links resolved on both sides."""
    resolved, top = path.resolve(), workspace.resolve()
    if resolved == top or top in resolved.parents:
        raise InvalidSpecError(
            f"{name} {str(path)!r} is inside the workspace {str(workspace)!r}; put it outside"
        )


def user_workspace(root: Path, user_id: str) -> Path:
    """The per-user workspace under ``root``; ``user_id`` may not escape it."""
    if not _USER_ID.match(user_id) or user_id in {".", ".."}:
        raise InvalidSpecError(f"user id {user_id!r} must be 1-64 letters, digits, '_', '.' or '-'")
    return root / user_id
