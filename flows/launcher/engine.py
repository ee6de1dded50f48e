"""The Docker engine: connecting, and finding what the launcher left behind by label."""

from __future__ import annotations

import logging
import os
import socket
from functools import cache
from pathlib import Path

import docker
import docker.errors
import requests.exceptions

from flows.launcher.errors import EngineUnavailableError

logger = logging.getLogger(__name__)

# Every container and network the launcher creates carries MANAGED_LABEL=true, so that
# leftovers (a launcher killed with SIGKILL cannot clean up) can be found and removed.
MANAGED_LABEL = "perstack.managed"
EXECUTION_LABEL = "perstack.execution"
ROLE_LABEL = "perstack.role"
# The process that created a container or network: "<boot id>/<PID namespace>/<hostname>/
# <pid>/<start time>". A launcher on the same machine and in the same PID namespace can
# tell whether that process still lives; one that died without cleaning up (SIGKILL, OOM,
# power cut of a worker) leaves resources that the next launch removes. The namespace is
# named, not guessed from the hostname: a flow-run container of the docker work pool has
# the host's hostname (network_mode host) but PIDs of its own, and launchers there and on
# the host took each other's running executions for orphans and removed them.
OWNER_LABEL = "perstack.owner"
# API calls are local and quick; a daemon that does not answer in this long is stuck.
API_TIMEOUT_SECONDS = 60


def connect() -> docker.DockerClient:
    """A client for the engine named by DOCKER_HOST (the local socket by default)."""
    try:
        client = docker.from_env(timeout=API_TIMEOUT_SECONDS)
        client.ping()
    except (docker.errors.DockerException, requests.exceptions.RequestException) as error:
        raise EngineUnavailableError(f"no Docker engine is reachable: {error}") from error
    return client


def engine_unavailable_reason() -> str | None:
    """None when an engine answers; otherwise why not (for skip messages and doctors)."""
    try:
        connect().close()
    except EngineUnavailableError as error:
        return str(error)
    return None


def remove_leftovers(client: docker.DockerClient, labels: dict[str, str] | None = None) -> int:
    """Remove every managed container, then network, matching ``labels``; returns how many."""
    selector = [f"{MANAGED_LABEL}=true", *(f"{k}={v}" for k, v in (labels or {}).items())]
    removed = 0
    for container in client.containers.list(all=True, filters={"label": selector}):
        try:
            container.remove(force=True)
            removed += 1
        except docker.errors.NotFound:
            pass
    for network in client.networks.list(filters={"label": selector}):
        try:
            network.remove()
            removed += 1
        except docker.errors.NotFound:
            pass
    if removed:
        logger.info("removed %d leftover containers and networks", removed)
    return removed


@cache
def owner_label() -> str:
    """This process's ``OWNER_LABEL`` value."""
    return "/".join(
        (
            _boot_id(),
            _pid_namespace(),
            socket.gethostname(),
            str(os.getpid()),
            _start_time(os.getpid()),
        )
    )


def remove_orphans(client: docker.DockerClient) -> int:
    """Remove the managed containers, then networks, whose owner process is provably gone.

    Resources of another machine, boot or PID namespace are left alone, as are those of a
    process that still runs and those labelled in a form this launcher does not know: only
    their own launcher may remove them.
    """
    selector = {"label": [f"{MANAGED_LABEL}=true", OWNER_LABEL]}
    removed = 0
    # The low-level listings carry the labels: no inspection per container.
    for container in client.api.containers(all=True, filters=selector):
        if _owner_is_gone((container.get("Labels") or {}).get(OWNER_LABEL, "")):
            try:
                client.api.remove_container(container["Id"], force=True)
                removed += 1
            except docker.errors.NotFound:
                pass
    for network in client.api.networks(filters=selector):
        if _owner_is_gone((network.get("Labels") or {}).get(OWNER_LABEL, "")):
            try:
                client.api.remove_network(network["Id"])
                removed += 1
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError as error:  # still in use: a container survived
                logger.warning("could not remove orphaned network %s: %s", network["Name"], error)
    if removed:
        logger.warning("removed %d containers and networks of launchers that died", removed)
    return removed


def _owner_is_gone(owner: str) -> bool:
    parts = owner.split("/")
    if len(parts) != 5 or _pid_namespace() == UNKNOWN_NAMESPACE:
        return False
    boot_id, namespace, hostname, pid, started = parts
    here = (_boot_id(), _pid_namespace(), socket.gethostname())
    if (boot_id, namespace, hostname) != here or not pid.isdigit():
        return False
    return _start_time(int(pid)) != started


UNKNOWN_NAMESPACE = "unknown-pidns"


@cache
def _pid_namespace() -> str:
    """This process's PID namespace (the inode /proc/self/ns/pid names)."""
    try:
        link = os.readlink("/proc/self/ns/pid")  # "pid:[4026531836]"
    except OSError:
        return UNKNOWN_NAMESPACE
    inode = link.partition("[")[2].rstrip("]")
    return inode if inode.isdigit() else UNKNOWN_NAMESPACE


@cache
def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown-boot"


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot ("" when there is no such
    process): with the pid, it names one process even after the pid is reused."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    # The command name (field 2) may hold spaces and parentheses; fields follow the last ')'.
    fields = stat[stat.rfind(")") + 2 :].split()
    return fields[19] if len(fields) > 19 else ""
