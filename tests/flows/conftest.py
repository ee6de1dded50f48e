"""Fixtures for the container tests: a real Docker engine, labelled and cleaned up.

Tests marked ``docker`` skip with the reason when no engine (or no image) is there, but
never under CI=true, where a missing engine is a failure. Everything a test session
creates carries the label ``test.session=<id>`` and is removed at the end, whatever
happened.
"""

from __future__ import annotations

import contextlib
import gc
import os
import textwrap
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

from flows.launcher import (
    EngineUnavailableError,
    LaunchSpec,
    connect,
    ensure_egress_network,
    remove_leftovers,
)
from flows.launcher.engine import MANAGED_LABEL

SESSION_LABEL = "test.session"
# Scripts report by printing one JSON object of type "probe" on stdout. Like `perstack`,
# a script is PID 1 of its container and first splits off the runtime's init, so that it
# runs as the runtime would: a child of that init.
PROBE = """\
import json, os
from runtime.pid1 import become_init_if_pid1
become_init_if_pid1()
def report(**fields):
    print(json.dumps({'type': 'probe', **fields}), flush=True)
"""


def script(body: str) -> str:
    """A Python script for the container: the ``report`` helper, then ``body``."""
    return PROBE + textwrap.dedent(body)


RUNTIME_IMAGE = "perstack-runtime:latest"
PROXY_IMAGE = "perstack-proxy:latest"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and the container tests cannot run: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def session_id() -> str:
    return uuid.uuid4().hex[:12]


@pytest.fixture(scope="session")
def docker_client(session_id: str) -> Iterator[docker.DockerClient]:
    try:
        client = connect()
    except EngineUnavailableError as error:
        _unavailable(f"{error} (start one with .ci/setup-docker.sh)")
    for image in (RUNTIME_IMAGE, PROXY_IMAGE):
        try:
            client.images.get(image)
        except docker.errors.ImageNotFound:
            _unavailable(f"image {image} is missing (build it with .ci/setup-docker.sh)")
    try:
        yield client
    finally:
        remove_leftovers(client, {SESSION_LABEL: session_id})
        client.close()


@pytest.fixture
def leftovers(docker_client: docker.DockerClient, session_id: str) -> Callable[[], list[str]]:
    """Names of this session's managed containers and networks still in the engine."""

    def listing() -> list[str]:
        selector = {"label": [f"{MANAGED_LABEL}=true", f"{SESSION_LABEL}={session_id}"]}
        names = [c.name for c in docker_client.containers.list(all=True, filters=selector)]
        names += [
            n.name
            for n in docker_client.networks.list(filters=selector)
            if n.attrs.get("Labels", {}).get("perstack.role") != "egress"
        ]
        return names

    return listing


@dataclass
class Egress:
    name: str
    gateway: str


@pytest.fixture(scope="session")
def egress(docker_client: docker.DockerClient, session_id: str) -> Egress:
    """The session's egress network; the host is reachable on its gateway address."""
    network = ensure_egress_network(
        docker_client, f"perstack-egress-test-{session_id}", {SESSION_LABEL: session_id}
    )
    network.reload()
    return Egress(network.name, network.attrs["IPAM"]["Config"][0]["Gateway"])


class _Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        body = b"hello from the host"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass


@pytest.fixture
def host_server(egress: Egress) -> Iterator[str]:
    """A plain HTTP server on the egress network's gateway: ``address:port``."""
    server = ThreadingHTTPServer((egress.gateway, 0), _Hello)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"{egress.gateway}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def make_spec(
    docker_client: docker.DockerClient, session_id: str, tmp_path: Path
) -> Callable[..., LaunchSpec]:
    """A LaunchSpec with the session's label, a fresh workspace and capture dir."""
    counter = iter(range(1_000_000))

    def make(**options: Any) -> LaunchSpec:
        n = next(counter)
        options.setdefault("workspace", tmp_path / f"workspaces-{n}" / "alice")
        options.setdefault("capture_dir", tmp_path / f"captures-{n}")
        options["labels"] = {SESSION_LABEL: session_id, **options.get("labels", {})}
        return LaunchSpec(**options)

    return make


@dataclass
class Run:
    result: Any  # LaunchResult
    events: list[dict[str, Any]]

    def container_events(self, type_: str = "probe") -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("type") == type_]

    def probe(self) -> dict[str, Any]:
        """The single ``probe`` object the test's script printed."""
        (found,) = self.container_events("probe")
        return found

    def launcher_events(self, type_: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("type") == type_]


@pytest.fixture
def run_python(
    docker_client: docker.DockerClient, make_spec: Callable[..., LaunchSpec]
) -> Callable[..., Run]:
    """Run a Python script in the hardened runtime image; the script reports by printing
    JSON objects (``{"type": "probe", ...}``)."""
    from flows.launcher import launch

    def run(code: str, **options: Any) -> Run:
        events: list[dict[str, Any]] = []
        spec = make_spec(entrypoint=("python3", "-c"), args=(code,), **options)
        result = launch(spec, on_event=events.append, client=docker_client)
        return Run(result, events)

    return run


# -- TLS in front of the fake Messages API -------------------------------------------------
# The runtime speaks plain HTTP only to loopback, so a provider reached through the proxy
# is HTTPS, as the real one is: this front terminates TLS on the egress gateway with a
# self-signed certificate the container is told to trust, and relays to the fake.

TLS_HOST = "llm.test"
# A relay that cannot connect or hand over bytes for this long is broken.
RELAY_TIMEOUT_SECONDS = 30.0


def self_signed_certificate(host: str) -> tuple[bytes, bytes]:
    """(certificate PEM, key PEM) for ``host``; the certificate is its own CA."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return certificate.public_bytes(serialization.Encoding.PEM), key_pem


class TlsFront:
    """Accepts TLS on ``listen_host`` and relays each connection to 127.0.0.1:``port``."""

    def __init__(self, listen_host: str, target_port: int, cert_dir: Path) -> None:
        import socket
        import ssl

        certificate, key = self_signed_certificate(TLS_HOST)
        self.certificate_pem = certificate
        (cert_dir / "front.pem").write_bytes(certificate)
        (cert_dir / "front.key").write_bytes(key)
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(cert_dir / "front.pem", cert_dir / "front.key")
        self._target_port = target_port
        self._listener = socket.create_server((listen_host, 0))
        self.port = self._listener.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._sockets: list[Any] = []
        self._accepting = threading.Thread(target=self._accept, daemon=True)
        self._accepting.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            thread = threading.Thread(target=self._relay, args=(client,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _relay(self, client: Any) -> None:
        import socket

        self._sockets.append(client)
        try:
            client.settimeout(RELAY_TIMEOUT_SECONDS)
            secure = self._context.wrap_socket(client, server_side=True)
            upstream = socket.create_connection(("127.0.0.1", self._target_port))
        except OSError:
            client.close()
            return
        self._sockets += [secure, upstream]
        back = threading.Thread(target=_pump, args=(upstream, secure), daemon=True)
        back.start()
        _pump(secure, upstream)
        back.join(RELAY_TIMEOUT_SECONDS)
        for sock in (secure, upstream):
            sock.close()

    def close(self) -> None:
        import socket

        # shutdown() wakes the thread blocked in accept(); close() alone would not.
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._accepting.join(RELAY_TIMEOUT_SECONDS)
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()
        for thread in self._threads:
            thread.join(RELAY_TIMEOUT_SECONDS)


def _pump(source: Any, target: Any) -> None:
    try:
        while data := source.recv(65536):
            target.sendall(data)
    except OSError:
        pass
    with contextlib.suppress(OSError):
        target.shutdown(1)  # SHUT_WR: the other side sees the end of this direction


@pytest.fixture(scope="module", autouse=True)
def collect_prefect_garbage(request: pytest.FixtureRequest) -> Iterator[None]:
    """Prefect's clients leave pooled sockets behind per closed event loop (see
    flow_harness.PREFECT_SOCKETS). Collect them at the end of each flow test module, where
    that module's filters apply, not in whichever test the collector happens to run next."""
    yield
    if request.module.__name__.rsplit(".", 1)[-1].startswith("test_flow_"):
        gc.collect()
