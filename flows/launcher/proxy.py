"""One execution's egress proxy: an internal network, a squid container on it and on the
egress network, and the thread that turns squid's access log into ``proxyAccess`` events.

The execution's container joins only the internal network, which has no route out: the
proxy is the one way out, and it lets through only the allowed domains.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from pathlib import Path
from typing import Any

import docker
import docker.errors
from docker.models.containers import Container
from docker.models.networks import Network

from flows.launcher.attach import STDOUT, AttachedStream
from flows.launcher.container import hardening, labels_for
from flows.launcher.decisions import Decision, DecisionThrottle, parse_access_line
from flows.launcher.engine import MANAGED_LABEL, ROLE_LABEL
from flows.launcher.errors import ProxyStartError
from flows.launcher.events import EventSink
from flows.launcher.limits import MIB, Limits
from flows.launcher.output import LineSplitter
from flows.launcher.proxy_config import PROXY_PORT, render_squid_config
from flows.launcher.spec import LaunchSpec

logger = logging.getLogger(__name__)

EGRESS_NETWORK = "perstack-egress"  # the default of NetworkPolicy.egress_network
# squid starts in well under a second here; a cold engine may take a few.
PROXY_READY_TIMEOUT_SECONDS = 20.0
# squid needs about 1.7 s to exit on SIGTERM even with shutdown_lifetime 0; past this it
# is stopped by force.
# TODO(#5): one proxy per execution costs ~0.4 s to start and ~1.7 s to stop; a proxy
# shared by the executions of one policy would pay that once.
PROXY_STOP_SECONDS = 3
# The log thread ends once the stopped proxy's stream closes; the throttle keeps what is
# left to report small, so this only runs out when the caller's callback hangs.
LOG_DRAIN_SECONDS = 30.0
# proxy.log keeps every decision up to this size: a flood of requests (thousands a
# second) must not fill the host's disk through it.
PROXY_LOG_MAX_BYTES = 64 * MIB
_READY_MARK = b"Accepting HTTP Socket connections"
_PROXY_SHM_BYTES = 16 * MIB
_PROXY_LIMITS = Limits(memory_bytes=256 * MIB, cpus=0.5, pids=64)


def ensure_egress_network(
    client: docker.DockerClient, name: str = EGRESS_NETWORK, labels: dict[str, str] | None = None
) -> Network:
    """The bridge network the proxies reach out through, created once and shared."""
    with contextlib.suppress(docker.errors.NotFound):
        return client.networks.get(name)
    all_labels = {**(labels or {}), MANAGED_LABEL: "true", ROLE_LABEL: "egress"}
    try:
        return client.networks.create(name, driver="bridge", labels=all_labels)
    except docker.errors.APIError:  # created meanwhile by a concurrent launch
        return client.networks.get(name)


def _subnets(network: Network) -> tuple[str, ...]:
    """The address ranges of ``network`` (where the host's gateway is)."""
    configs = (network.attrs.get("IPAM") or {}).get("Config") or []
    return tuple(c["Subnet"] for c in configs if c.get("Subnet"))


class EgressProxy:
    def __init__(
        self,
        client: docker.DockerClient,
        spec: LaunchSpec,
        execution_id: str,
        sink: EventSink,
        log_path: Path,
    ) -> None:
        self._client = client
        self._spec = spec
        self._execution_id = execution_id
        self._sink = sink
        self._log_path = log_path
        self._network: Network | None = None
        self._container: Container | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._egress_subnets: tuple[str, ...] = ()
        self._throttle = DecisionThrottle()
        # Set when the log thread outlived the drain: it must not report into a sink the
        # launcher is about to close.
        self._abandoned = False
        self._log_bytes = 0
        self._log_dropped = 0

    @property
    def network_name(self) -> str:
        return f"perstack-net-{self._execution_id}"

    def start(self) -> str:
        """Start the proxy and return its URL on the internal network."""
        egress_network = self._spec.network.egress_network
        labels = labels_for(self._spec, self._execution_id, "network")
        egress = ensure_egress_network(self._client, egress_network, dict(self._spec.labels))
        self._egress_subnets = _subnets(egress)
        self._network = self._client.networks.create(
            self.network_name,
            driver="bridge",
            internal=True,
            labels=labels,
            # An internal network still gives the host an address on its bridge, and
            # through it every address of the host (services on the egress gateway
            # included) would be reachable without the proxy. No address, no route.
            options={"com.docker.network.bridge.inhibit_ipv4": "true"},
        )
        self._sink.status("starting", "proxy")
        self._container = self._client.containers.create(**self._container_kwargs())
        self._client.networks.get(egress_network).connect(self._container)
        stream = AttachedStream(self._client, self._container.id)
        self._thread = threading.Thread(
            target=self._follow, args=(stream,), name="proxy-log", daemon=True
        )
        self._thread.start()
        self._container.start()
        self._wait_ready()
        self._container.reload()
        address = self._container.attrs["NetworkSettings"]["Networks"][self.network_name]
        self._sink.status("healthy", "proxy")
        return f"http://{address['IPAddress']}:{PROXY_PORT}"

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + PROXY_READY_TIMEOUT_SECONDS
        while not self._ready.wait(0.05):
            assert self._thread is not None
            if not self._thread.is_alive():
                raise ProxyStartError(f"the proxy exited before it was ready; see {self._log_path}")
            if time.monotonic() > deadline:
                raise ProxyStartError(
                    f"the proxy was not ready after {PROXY_READY_TIMEOUT_SECONDS} s; "
                    f"see {self._log_path}"
                )

    def stop(self) -> None:
        """Stop and remove the proxy and the internal network; safe to call at any point."""
        if self._container is not None:
            with contextlib.suppress(docker.errors.APIError):
                self._container.stop(timeout=PROXY_STOP_SECONDS)
            if self._thread is not None:
                self._thread.join(LOG_DRAIN_SECONDS)
                if self._thread.is_alive():
                    self._abandoned = True
                    logger.warning(
                        "the proxy's log was not read to its end within %.0f s (a slow event "
                        "callback?); its last decisions may be missing from %s",
                        LOG_DRAIN_SECONDS,
                        self._log_path,
                    )
            with contextlib.suppress(docker.errors.NotFound):
                self._container.remove(force=True)
            self._sink.status("stopped", "proxy")
            self._container = None
        if self._network is not None:
            with contextlib.suppress(docker.errors.NotFound):
                self._network.remove()
            self._network = None

    def _container_kwargs(self) -> dict[str, Any]:
        policy = self._spec.network
        config = render_squid_config(
            policy.domains, pinned=tuple(policy.proxy_hosts), internal=self._egress_subnets
        )
        return {
            "image": self._spec.proxy_image,
            "name": f"perstack-proxy-{self._execution_id}",
            "environment": {"PERSTACK_SQUID_CONF": config},
            "labels": labels_for(self._spec, self._execution_id, "proxy"),
            "network": self.network_name,
            "extra_hosts": dict(self._spec.network.proxy_hosts),
            **hardening(_PROXY_LIMITS),
            # squid keeps its metadata in shared memory even as a single process.
            "ipc_mode": "private",
            "shm_size": _PROXY_SHM_BYTES,
        }

    def _follow(self, stream: AttachedStream) -> None:
        with self._log_path.open("ab") as log:
            access = LineSplitter(lambda line: self._on_access_line(line, log))
            cache_log = LineSplitter(lambda line: self._on_cache_log_line(line, log))
            try:
                for stream_id, data in stream.frames():
                    (access if stream_id == STDOUT else cache_log).feed(data)
            finally:
                stream.close()
            access.close()
            cache_log.close()
            self._report(self._throttle.flush())
            if self._log_dropped:
                log.write(
                    f"proxy.log stopped at {PROXY_LOG_MAX_BYTES} bytes; "
                    f"{self._log_dropped} later lines were not kept\n".encode()
                )

    def _on_cache_log_line(self, line: bytes, log: Any) -> None:
        self._keep(line, log)
        if _READY_MARK in line:
            self._ready.set()

    def _on_access_line(self, line: bytes, log: Any) -> None:
        self._keep(line, log)
        decision = parse_access_line(line, self._spec.network.domains)
        if decision is not None:
            self._report(self._throttle.offer(decision))

    def _keep(self, line: bytes, log: Any) -> None:
        if self._log_bytes + len(line) + 1 > PROXY_LOG_MAX_BYTES:
            self._log_dropped += 1
            return
        self._log_bytes += len(line) + 1
        log.write(line + b"\n")
        log.flush()

    def _report(self, decisions: list[Decision]) -> None:
        if self._abandoned:
            return
        for d in decisions:
            self._sink.proxy(d.action, d.domain, d.port, d.reason)
            logger.info("proxy %s %s:%d (%s)", d.action, d.domain, d.port, d.reason)
