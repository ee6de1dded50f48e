"""The Docker engine: connecting, and finding what the launcher left behind by label."""

from __future__ import annotations

import logging

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


# TODO(#5): a launcher killed with SIGKILL cannot remove its containers; nothing calls
# remove_leftovers on a schedule yet (a worker should at start-up, for its own labels).
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
