"""The launcher's pure parts, without an engine: domains, the proxy's rules, line
splitting, what a launch request may ask for."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from flows.launcher import (
    InvalidSpecError,
    LaunchSpec,
    Limits,
    NetworkPolicy,
    network_policy_for,
    user_workspace,
)
from flows.launcher.domains import domain_allowed, domain_pattern, normalize_domain
from flows.launcher.output import LineSplitter
from flows.launcher.proxy_config import render_squid_config
from flows.launcher.workspace import measure_workspace, workspace_bytes


@pytest.mark.parametrize("spelling", ["example.com", "EXAMPLE.com", "example.com.", "Example.COM."])
def test_spellings_of_a_domain_are_the_same_domain(spelling):
    assert normalize_domain(spelling) == "example.com"
    assert re.match(domain_pattern("example.com"), spelling, re.IGNORECASE)
    assert domain_allowed(spelling, ("example.com",))


@pytest.mark.parametrize("host", ["api.example.com", "API.Example.com."])
def test_subdomains_of_an_allowed_domain_are_allowed(host):
    assert re.match(domain_pattern("example.com"), host, re.IGNORECASE)
    assert domain_allowed(host, ("example.com",))


@pytest.mark.parametrize("host", ["example.com.evil.net", "notexample.com", "example.co"])
def test_look_alike_domains_are_not_allowed(host):
    assert not re.match(domain_pattern("example.com"), host, re.IGNORECASE)
    assert not domain_allowed(host, ("example.com",))


@pytest.mark.parametrize("bad", ["169.254.169.254", "[::1]", "", "exa mple.com", "-a.com"])
def test_addresses_and_malformed_names_are_refused_as_allowed_domains(bad):
    with pytest.raises(InvalidSpecError):
        NetworkPolicy.allow([bad])


def test_the_proxy_config_refuses_link_local_and_matches_names_without_lookups():
    config = render_squid_config(("api.anthropic.com", "example.com"))
    assert "dstdom_regex -n -i" in config
    assert "169.254.0.0/16" in config and "fe80::/10" in config
    rules = [line for line in config.splitlines() if line.startswith("http_access")]
    assert rules == [
        "http_access deny !allowed_domains",
        "http_access deny forbidden_addresses",
        "http_access deny internal_addresses",
        "http_access allow allowed_domains",
        "http_access deny all",
    ]


def test_only_names_the_operator_pinned_may_reach_internal_addresses():
    config = render_squid_config(
        ("llm.internal",), pinned=("gateway.llm.internal",), internal=("172.30.0.0/16",)
    )
    internal = next(line for line in config.splitlines() if "acl internal_addresses" in line)
    for network in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7", "172.30.0.0/16"):
        assert network in internal.split()
    rules = [line for line in config.splitlines() if line.startswith("http_access")]
    assert rules.index("http_access allow pinned_names") < rules.index(
        "http_access deny internal_addresses"
    )
    assert rules.index("http_access deny forbidden_addresses") < rules.index(
        "http_access allow pinned_names"
    )
    assert "acl pinned_names dstdomain -n gateway.llm.internal" in config


def test_pinned_names_are_normalised_and_their_addresses_checked():
    policy = NetworkPolicy.allow(["llm.test"], proxy_hosts={"LLM.Test.": "10.0.0.5"})
    assert policy.proxy_hosts == {"llm.test": "10.0.0.5"}
    with pytest.raises(InvalidSpecError, match="not-an-address"):
        NetworkPolicy.allow(["llm.test"], proxy_hosts={"llm.test": "not-an-address"})


def test_a_policy_with_no_domains_allows_nothing():
    assert "dstdom_regex -n -i ^$" in render_squid_config(())


def test_lines_split_inside_a_multibyte_character_are_joined_before_decoding():
    lines: list[bytes] = []
    splitter = LineSplitter(lines.append)
    data = "é😀\n日本\nlast".encode()
    for byte in data:
        splitter.feed(bytes([byte]))
    splitter.close()
    assert [line.decode() for line in lines] == ["é😀", "日本", "last"]


def test_capture_dir_inside_the_workspace_is_refused(tmp_path):
    with pytest.raises(InvalidSpecError, match="outside"):
        LaunchSpec(workspace=tmp_path / "ws", capture_dir=tmp_path / "ws" / "captures")


@pytest.mark.parametrize("name", ["HTTPS_PROXY", "no_proxy", "1BAD", "A-B"])
def test_reserved_or_malformed_environment_names_are_refused(tmp_path, name):
    with pytest.raises(InvalidSpecError):
        LaunchSpec(workspace=tmp_path / "ws", capture_dir=tmp_path / "c", env={name: "x"})


def test_a_missing_host_variable_is_named(tmp_path, monkeypatch):
    monkeypatch.delenv("PERSTACK_TEST_ABSENT", raising=False)
    spec = LaunchSpec(
        workspace=tmp_path / "ws",
        capture_dir=tmp_path / "c",
        env_from_host=("PERSTACK_TEST_ABSENT",),
    )
    with pytest.raises(InvalidSpecError, match="PERSTACK_TEST_ABSENT"):
        spec.resolved_env()


@pytest.mark.parametrize("user", ["..", "../bob", "a/b", "", "."])
def test_a_user_id_cannot_escape_the_workspace_root(user):
    with pytest.raises(InvalidSpecError):
        user_workspace(Path("/srv/workspaces"), user)


def test_limits_must_be_positive():
    with pytest.raises(ValueError, match="pids"):
        Limits(pids=0)


def test_workspace_size_does_not_follow_symlinks(tmp_path):
    big = tmp_path / "outside"
    big.mkdir()
    (big / "blob").write_bytes(b"x" * 1_000_000)
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "link").symlink_to(big)
    assert workspace_bytes(workspace) < 100_000


def test_a_workspace_nested_past_path_length_limits_is_measured(tmp_path):
    # A chain of 2,300 folders is a path of over 4,600 bytes: too long to open by path.
    depth = 2_300
    fd = os.open(tmp_path, os.O_RDONLY)
    try:
        for _ in range(depth):
            os.mkdir("d", dir_fd=fd)
            child = os.open("d", os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = child
        leaf = os.open("leaf", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(leaf, b"x" * 10_000)
        os.close(leaf)
    finally:
        os.close(fd)
    try:
        usage = measure_workspace(tmp_path, max_depth=depth + 10)
        shallow = measure_workspace(tmp_path, max_depth=100)
    finally:
        _remove_chain(tmp_path, depth)  # pytest's own clean-up would recurse too deep
    assert usage.entries == depth + 1
    assert usage.bytes >= 10_000
    assert usage.too_deep is False
    assert shallow.too_deep is True
    assert shallow.entries == 100


def _remove_chain(top: Path, depth: int) -> None:
    """Remove a chain of ``d`` folders deeper than shutil.rmtree can recurse."""
    fds = [os.open(top, os.O_RDONLY)]
    for _ in range(depth):
        fds.append(os.open("d", os.O_RDONLY, dir_fd=fds[-1]))
    os.unlink("leaf", dir_fd=fds[-1])
    while len(fds) > 1:
        os.close(fds.pop())
        os.rmdir("d", dir_fd=fds[-1])
    os.close(fds[0])


def test_workspace_entries_count_files_folders_and_links(tmp_path):
    (tmp_path / "a").mkdir()
    for n in range(5):
        (tmp_path / "a" / f"empty-{n}").touch()
    (tmp_path / "link").symlink_to("/etc")
    usage = measure_workspace(tmp_path)
    assert usage.entries == 7
    assert usage.too_deep is False


def test_a_missing_workspace_measures_empty(tmp_path):
    assert measure_workspace(tmp_path / "absent") == measure_workspace(tmp_path)


def test_the_expert_spec_passes_the_job_id_to_the_runtime(tmp_path):
    spec = LaunchSpec.for_expert(
        "support-analyst", "Triage", workspace=tmp_path / "ws", capture_dir=tmp_path / "c"
    )
    assert spec.args[:2] == ("support-analyst", "Triage")
    assert spec.args[2:4] == ("--job-id", spec.job_id)


def test_the_policy_allows_the_provider_host_and_every_skills_domains(tmp_path):
    config = tmp_path / "perstack.toml"
    config.write_text(
        """
[provider]
providerName = "anthropic"

[experts."lead"]
instruction = "lead"
delegates = ["helper"]

[experts."lead".skills."fetch"]
type = "mcpStdioSkill"
command = "mcp-server-fetch"
allowedDomains = ["Docs.Example.com."]

[experts."helper"]
instruction = "help"

[experts."helper".skills."search"]
type = "mcpSseSkill"
endpoint = "https://search.example.net/sse"
allowedDomains = ["search.example.net"]
"""
    )
    policy = network_policy_for(config, "lead")
    assert policy.mode == "allowList"
    assert policy.domains == ("api.anthropic.com", "docs.example.com", "search.example.net")


def test_an_offline_expert_without_skill_domains_gets_no_network(tmp_path):
    config = tmp_path / "perstack.toml"
    config.write_text('[provider]\nproviderName = "scripted"\n\n[experts."a"]\ninstruction = "x"\n')
    assert network_policy_for(config, "a").mode == "none"


def test_the_launcher_imports_no_prefect():
    import subprocess
    import sys

    code = "import sys, flows.launcher; print(sorted(m for m in sys.modules if 'prefect' in m))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_line_nested_too_deep_to_parse_is_kept_as_text_and_following_goes_on(tmp_path):
    # Regression: a RecursionError from json.loads escaped the follow loop and launch().
    from flows.launcher.events import EventSink

    seen = []
    sink = EventSink(tmp_path / "events.jsonl", seen.append, "job", "run")
    sink.container_line(b"[" * 200_000)
    sink.container_line(b'{"type": "startRun", "jobId": "j", "runId": "r"}')
    sink.close()
    assert [e["type"] for e in seen] == ["startRun"]
    assert len((tmp_path / "events.jsonl").read_bytes().splitlines()) == 2


ACCESS = "PERSTACK_ACCESS\t{method}\t{domain}\t{port}\t{squid}\t{http}"


def access(domain: str, squid: str = "TCP_MISS", http: str = "200", **kw: str) -> bytes:
    fields = {"method": "GET", "port": "80", **kw}
    return ACCESS.format(domain=domain, squid=squid, http=http, **fields).encode()


def test_access_lines_read_as_the_decisions_squid_made():
    from flows.launcher.decisions import parse_access_line
    from flows.launcher.proxy_config import (
        REASON_ALLOWED,
        REASON_FORBIDDEN_ADDRESS,
        REASON_NOT_ALLOWED,
    )

    allowed = ("llm.test",)
    ok = parse_access_line(access("llm.test"), allowed)
    assert ok is not None and (ok.action, ok.reason, ok.port) == ("allowed", REASON_ALLOWED, 80)
    tunnel = parse_access_line(access("llm.test", method="CONNECT", port="-"), allowed)
    assert tunnel is not None and tunnel.port == 443
    denied = parse_access_line(access("evil.test", "TCP_DENIED", "403"), allowed)
    assert denied is not None and (denied.action, denied.reason) == ("blocked", REASON_NOT_ALLOWED)
    inner = parse_access_line(access("meta.llm.test", "TCP_DENIED", "403"), allowed)
    assert inner is not None and inner.reason == REASON_FORBIDDEN_ADDRESS
    assert parse_access_line(b"2026/12/04 squid started", allowed) is None


def test_requests_squid_could_not_parse_are_blocked_and_failures_say_so():
    # Regression: every status but DENIED was reported "allowed ... in the allow-list".
    from flows.launcher.decisions import parse_access_line

    for line in (access("-", "NONE_NONE", "400"), access("llm.test", "NONE_NONE", "501")):
        decision = parse_access_line(line, ("llm.test",))
        assert decision is not None and decision.action == "blocked"
        assert "malformed" in decision.reason
    failed = parse_access_line(access("llm.test", "TCP_MISS", "502"), ("llm.test",))
    assert failed is not None and failed.action == "allowed" and "HTTP 502" in failed.reason


def test_a_flood_of_decisions_is_summarised_past_the_rate():
    from flows.launcher.decisions import Decision, DecisionThrottle

    now = [100.0]
    throttle = DecisionThrottle(per_second=3, clock=lambda: now[0])
    out = []
    for n in range(10):
        out += throttle.offer(Decision("blocked", f"h{n}.test", 80, "r"))
    assert [d.domain for d in out] == ["h0.test", "h1.test", "h2.test"]
    now[0] = 101.2
    out = throttle.offer(Decision("allowed", "llm.test", 443, "ok"))
    (summary, passed) = out
    assert summary.domain == "*" and summary.action == "blocked"
    assert summary.reason.startswith("7 more blocked requests") and "h3.test:80" in summary.reason
    assert passed.domain == "llm.test"
    assert throttle.flush() == [] and throttle.summarised == 7


def test_set_id_bits_left_in_a_workspace_are_cleared_after_the_run(tmp_path):
    tool = tmp_path / "sub" / "tool"
    tool.parent.mkdir()
    tool.write_bytes(b"#!/bin/sh\n")
    tool.chmod(0o6755)
    plain = tmp_path / "plain"
    plain.write_text("x")
    plain.chmod(0o640)
    usage = measure_workspace(tmp_path, clear_set_id=True)
    assert usage.set_id_cleared == 1
    assert tool.stat().st_mode & 0o7777 == 0o755
    assert plain.stat().st_mode & 0o7777 == 0o640


def test_a_line_that_would_explode_in_memory_is_kept_but_not_parsed(tmp_path):
    # Regression: a 60 MiB line of empty objects took the launcher past 1.5 GB.
    from flows.launcher.events import MAX_PARSED_CONTAINERS, EventSink

    seen = []
    sink = EventSink(tmp_path / "events.jsonl", seen.append, "job", "run")
    bomb = b'{"type": "x", "a": [' + b"{}," * MAX_PARSED_CONTAINERS + b"{}]}"
    sink.container_line(bomb)
    sink.container_line(b'{"type": "completeRun", "jobId": "j", "runId": "r"}')
    sink.close()
    assert [e["type"] for e in seen] == ["completeRun"]
    assert (tmp_path / "events.jsonl").read_bytes().startswith(bomb)
