"""The network policy, from inside a real container: ``none``, and the allow-list proxy
with each decision reported as a ``proxyAccess`` event."""

from __future__ import annotations

import time

import pytest

from flows.launcher import Limits, NetworkPolicy
from flows.launcher.proxy_config import REASON_FORBIDDEN_ADDRESS, REASON_NOT_ALLOWED
from tests.flows.conftest import SESSION_LABEL, script

pytestmark = pytest.mark.docker

FETCH = """
import urllib.request
def fetch(url, proxy=True):
    handlers = [] if proxy else [urllib.request.ProxyHandler({})]
    try:
        with urllib.request.build_opener(*handlers).open(url, timeout=3) as response:
            return response.read().decode()
    except Exception as error:
        return type(error).__name__ + ': ' + str(getattr(error, 'code', ''))
"""


def fetch_script(urls: list[str], proxy: bool = True) -> str:
    return script(FETCH + f"report(results={{u: fetch(u, {proxy}) for u in {urls!r}}})\n")


def allow(egress, *domains: str, **hosts: str) -> NetworkPolicy:
    return NetworkPolicy.allow(list(domains), proxy_hosts=hosts, egress_network=egress.name)


def test_with_network_none_nothing_is_reachable(run_python, host_server):
    run = run_python(
        fetch_script([f"http://{host_server}/", "http://169.254.169.254/"], proxy=False)
    )
    results = run.probe()["results"]
    assert all(not r.startswith("hello") for r in results.values()), results


def test_an_allowed_request_passes_the_proxy_and_is_reported(run_python, egress, host_server):
    port = host_server.rsplit(":", 1)[1]
    run = run_python(
        fetch_script([f"http://llm.test:{port}/", f"http://LLM.Test.:{port}/again"]),
        network=allow(egress, "llm.test", **{"llm.test": egress.gateway}),
        limits=Limits(wall_clock_seconds=60),
    )
    assert set(run.probe()["results"].values()) == {"hello from the host"}
    decisions = run.launcher_events("proxyAccess")
    assert [(e["action"], e["domain"], e["port"]) for e in decisions] == [
        ("allowed", "llm.test", int(port))
    ] * 2


def test_allowed_domains_match_regardless_of_case_and_trailing_dot(run_python, egress, host_server):
    port = host_server.rsplit(":", 1)[1]
    run = run_python(
        fetch_script([f"http://api.llm.test:{port}/"]),
        network=allow(egress, "LLM.Test.", **{"api.llm.test": egress.gateway}),
        limits=Limits(wall_clock_seconds=60),
    )
    assert run.probe()["results"] == {f"http://api.llm.test:{port}/": "hello from the host"}


def test_disallowed_and_metadata_addresses_are_blocked_and_reported(
    run_python, egress, host_server
):
    port = host_server.rsplit(":", 1)[1]
    urls = [
        "http://example.org/",
        "http://169.254.169.254/latest/meta-data/",
        f"http://{host_server}/",  # the allowed host's address, not its name
        "http://metadata.llm.test/",  # an allowed name that resolves to link-local
        f"http://llm.test.evil.example:{port}/",
    ]
    run = run_python(
        fetch_script(urls),
        network=allow(
            egress,
            "llm.test",
            **{"llm.test": egress.gateway, "metadata.llm.test": "169.254.169.254"},
        ),
        limits=Limits(wall_clock_seconds=60),
    )
    assert set(run.probe()["results"].values()) == {"HTTPError: 403"}
    decisions = {e["domain"]: e for e in run.launcher_events("proxyAccess")}
    assert {e["action"] for e in decisions.values()} == {"blocked"}
    assert decisions["169.254.169.254"]["reason"] == REASON_NOT_ALLOWED
    assert decisions[egress.gateway]["reason"] == REASON_NOT_ALLOWED
    assert decisions["metadata.llm.test"]["reason"] == REASON_FORBIDDEN_ADDRESS
    assert decisions["example.org"]["port"] == 80


def test_an_allowed_name_resolving_to_an_internal_address_is_blocked_unless_pinned(
    run_python, egress, host_server, docker_client, session_id
):
    # A neighbour on the egress network whose name, under an allowed domain, resolves (by
    # the engine's DNS, as a name someone else controls would) to an internal address.
    neighbour = docker_client.containers.run(
        "perstack-runtime:latest",
        entrypoint=["sleep", "60"],
        detach=True,
        labels={"perstack.managed": "true", SESSION_LABEL: session_id},
        network=egress.name,
        networking_config={
            egress.name: docker_client.api.create_endpoint_config(aliases=["neighbour.llm.test"])
        },
    )
    try:
        port = host_server.rsplit(":", 1)[1]
        urls = [f"http://neighbour.llm.test:{port}/", f"http://llm.test:{port}/"]
        run = run_python(
            fetch_script(urls),
            network=allow(egress, "llm.test", **{"llm.test": egress.gateway}),
            limits=Limits(wall_clock_seconds=60),
        )
    finally:
        neighbour.remove(force=True)
    assert run.probe()["results"] == {urls[0]: "HTTPError: 403", urls[1]: "hello from the host"}
    decisions = {e["domain"]: e for e in run.launcher_events("proxyAccess")}
    assert decisions["neighbour.llm.test"]["action"] == "blocked"
    assert decisions["neighbour.llm.test"]["reason"] == REASON_FORBIDDEN_ADDRESS
    assert decisions["llm.test"]["action"] == "allowed"


def test_without_the_proxy_the_internal_network_has_no_route_out(run_python, egress, host_server):
    run = run_python(
        fetch_script([f"http://{host_server}/", "http://169.254.169.254/"], proxy=False),
        network=allow(egress, "llm.test", **{"llm.test": egress.gateway}),
        limits=Limits(wall_clock_seconds=60),
    )
    results = run.probe()["results"]
    assert all(not r.startswith("hello") for r in results.values()), results
    assert run.launcher_events("proxyAccess") == []


def test_the_proxy_and_its_network_are_removed_afterwards(run_python, egress, leftovers):
    run_python(script("report()\n"), network=allow(egress, "llm.test"))
    assert leftovers() == []


def test_names_outside_do_not_resolve_inside_the_internal_network(run_python, egress):
    run = run_python(
        script(
            """
            import socket
            def resolve(name):
                try:
                    return socket.gethostbyname(name)
                except OSError as error:
                    return type(error).__name__
            report(results={n: resolve(n) for n in ['deb.debian.org', 'llm.test', 'pypi.org']})
            """
        ),
        network=allow(egress, "llm.test", **{"llm.test": egress.gateway}),
    )
    # DNS is no way around the proxy: only the proxy resolves names.
    assert set(run.probe()["results"].values()) == {"gaierror"}


def test_concurrent_executions_each_get_their_own_proxy_and_network(
    make_spec, docker_client, egress, host_server, leftovers
):
    from concurrent.futures import ThreadPoolExecutor

    from flows.launcher import launch

    port = host_server.rsplit(":", 1)[1]
    specs = [
        make_spec(
            entrypoint=("python3", "-c"),
            args=(fetch_script([f"http://llm.test:{port}/{n}"]),),
            network=allow(egress, "llm.test", **{"llm.test": egress.gateway}),
            limits=Limits(wall_clock_seconds=60),
        )
        for n in range(3)
    ]
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda s: launch(s, client=docker_client), specs))
    assert {r.outcome.value for r in results} == {"completed"}
    assert len({r.execution_id for r in results}) == 3
    for result in results:
        text = result.captured.events.read_text()
        assert "hello from the host" in text and '"action":"allowed"' in text
    assert leftovers() == []


def test_a_flood_of_requests_is_summarised_and_no_decision_is_lost(run_python, egress, make_spec):
    # Regression: with a slow callback most decisions of a flood never reached the events
    # file (the log thread was given 5 s, then wrote to a closed file).
    from flows.launcher import launch

    requests = 1500
    body = FETCH + f"for n in range({requests}):\n    fetch(f'http://h{{n}}.evil.test/')\n"
    spec = make_spec(
        entrypoint=("python3", "-c"),
        args=(script(body + "report(done=True)\n"),),
        network=allow(egress, "llm.test"),
        limits=Limits(wall_clock_seconds=120),
    )
    slow = []
    result = launch(spec, on_event=lambda e: (slow.append(e), time.sleep(0.001)))
    decisions = [e for e in slow if e.get("type") == "proxyAccess"]
    one_by_one = [e for e in decisions if e["domain"] != "*"]
    summarised = sum(int(e["reason"].split()[0]) for e in decisions if e["domain"] == "*")
    assert len(one_by_one) + summarised == requests
    assert len(decisions) < requests
    logged = result.captured.proxy_log.read_text().count("PERSTACK_ACCESS")
    assert logged == requests
