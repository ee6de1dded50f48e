"""The settings of the hardened container, in one place.

Read-only root, a small tmpfs /tmp, the image's non-root user, no capabilities,
no-new-privileges, pids/memory/CPU limits, no IPC namespace mounts (/dev/shm is not
writable), and the per-user workspace as the only writable mount. The runtime container
gets no engine init: ``perstack`` as PID 1 splits off its own (``runtime.pid1``), which
reaps and forwards SIGTERM like the engine's but, unlike it, is not dumpable, so the
Expert's processes cannot read the container's environment (the API key) from
``/proc/1/environ`` nor write to its stdout through ``/proc/1/fd/1``. The proxy keeps the
engine's init. The network is decided by the caller (``none`` or the per-execution
internal network).
"""

from __future__ import annotations

from typing import Any

from docker.types import LogConfig, Mount, Ulimit

from flows.launcher.engine import (
    EXECUTION_LABEL,
    MANAGED_LABEL,
    OWNER_LABEL,
    ROLE_LABEL,
    owner_label,
)
from flows.launcher.limits import Limits
from flows.launcher.spec import LaunchSpec

WORKSPACE_IN_CONTAINER = "/workspace"
# LaunchSpec.inputs, read-only.
INPUTS_IN_CONTAINER = "/input"
# The launcher reads stdout/stderr from the attach stream; the engine's own log copy is
# kept small, only for someone inspecting a container by hand while it runs.
_LOG_CONFIG = LogConfig(type="json-file", config={"max-size": "1m", "max-file": "1"})


def labels_for(spec: LaunchSpec, execution_id: str, role: str) -> dict[str, str]:
    return {
        **spec.labels,
        MANAGED_LABEL: "true",
        EXECUTION_LABEL: execution_id,
        ROLE_LABEL: role,
        OWNER_LABEL: owner_label(),
    }


def hardening(limits: Limits, *, init: bool = True) -> dict[str, Any]:
    """The isolation settings shared by the runtime and proxy containers."""
    return {
        "read_only": True,
        "tmpfs": {"/tmp": f"rw,nosuid,nodev,noexec,size={limits.tmpfs_bytes},mode=1777"},
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges:true"],
        "pids_limit": limits.pids,
        "mem_limit": limits.memory_bytes,
        "memswap_limit": limits.memory_bytes,  # no swap: the memory limit is the limit
        "nano_cpus": int(limits.cpus * 1_000_000_000),
        "ipc_mode": "none",
        "init": init,
        "log_config": _LOG_CONFIG,
    }


def runtime_container_kwargs(
    spec: LaunchSpec, execution_id: str, env: dict[str, str], network: str
) -> dict[str, Any]:
    """Keyword arguments for ``client.containers.create`` of the execution's container."""
    limits = spec.limits
    kwargs: dict[str, Any] = {
        "image": spec.image,
        "command": list(spec.args),
        "name": f"perstack-run-{execution_id}",
        "hostname": "perstack",
        "user": spec.user,
        "working_dir": WORKSPACE_IN_CONTAINER,
        "environment": env,
        "labels": labels_for(spec, execution_id, "runtime"),
        "mounts": _mounts(spec),
        # A single file can never be larger than the whole workspace may be; this bounds
        # how far a fast writer overshoots between two size checks.
        "ulimits": [
            Ulimit(name="fsize", soft=limits.workspace_bytes, hard=limits.workspace_bytes),
            Ulimit(name="nofile", soft=limits.open_files, hard=limits.open_files),
        ],
        "network_mode": "none" if network == "none" else None,
        "network": None if network == "none" else network,
        "stdin_open": False,
        "tty": False,
        **hardening(limits, init=False),
    }
    if spec.entrypoint is not None:
        kwargs["entrypoint"] = list(spec.entrypoint)
    return {k: v for k, v in kwargs.items() if v is not None}


def _mounts(spec: LaunchSpec) -> list[Mount]:
    workspace = Mount(
        target=WORKSPACE_IN_CONTAINER,
        source=str(spec.workspace.absolute()),
        type="bind",
        read_only=False,
    )
    if spec.inputs is None:
        return [workspace]
    inputs = Mount(
        target=INPUTS_IN_CONTAINER, source=str(spec.inputs.resolve()), type="bind", read_only=True
    )
    return [workspace, inputs]
