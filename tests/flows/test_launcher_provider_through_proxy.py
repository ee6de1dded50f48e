"""The example Expert with the real Anthropic SDK, in the hardened container, talking to
the fake Messages API through the allow-list proxy over HTTPS."""

from __future__ import annotations

import pytest

from flows.launcher import LaunchSpec, Limits, NetworkPolicy, Outcome, launch
from tests.fakes import FakeMessagesAPI
from tests.flows.conftest import TLS_HOST, TlsFront
from tests.flows.test_launcher_end_to_end import EXAMPLE, prepare_workspace

pytestmark = pytest.mark.docker


def test_the_expert_reaches_its_provider_only_through_the_proxy(
    docker_client, session_id, egress, tmp_path, leftovers
):
    workspace = prepare_workspace(tmp_path / "workspaces", "bob")
    (workspace / ".tls").mkdir()
    received: list[dict] = []
    with FakeMessagesAPI(EXAMPLE / "script.json") as api:
        front = TlsFront(egress.gateway, api.port, workspace / ".tls")
        try:
            spec = LaunchSpec.for_expert(
                "support-analyst",
                "Triage the tickets",
                runtime_args=("--provider", "anthropic"),
                workspace=workspace,
                capture_dir=tmp_path / "captures",
                env={
                    "ANTHROPIC_API_KEY": "test-key-not-secret",
                    "ANTHROPIC_BASE_URL": f"https://{TLS_HOST}:{front.port}",
                    "SSL_CERT_FILE": "/workspace/.tls/front.pem",
                },
                network=NetworkPolicy.allow(
                    [TLS_HOST], proxy_hosts={TLS_HOST: egress.gateway}, egress_network=egress.name
                ),
                labels={"test.session": session_id},
                limits=Limits(wall_clock_seconds=120),
            )
            result = launch(spec, on_event=received.append, client=docker_client)
        finally:
            front.close()
        requests = list(api.requests)

    stderr = result.captured.stderr.read_text()[-3000:]
    assert result.outcome is Outcome.COMPLETED, stderr
    assert len(requests) >= 5
    assert "test-key-not-secret" in repr(requests[0].headers)  # passed by name, arrived
    decisions = [e for e in received if e["type"] == "proxyAccess"]
    assert decisions and {(e["action"], e["domain"]) for e in decisions} == {("allowed", TLS_HOST)}
    assert "completeRun" in [e["type"] for e in received]
    assert "test-key-not-secret" not in repr(
        [e for e in received if e["type"] in {"dockerContainerStatus", "proxyAccess"}]
    )
    assert leftovers() == []
