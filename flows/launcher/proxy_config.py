"""The squid configuration of one execution's allow-list proxy.

Rules, in order: a name outside the allow-list is refused before any DNS lookup; an
allowed name that resolves to a link-local, loopback or unspecified address (the cloud
metadata service lives at 169.254.169.254) is refused too; so is one that resolves to a
private or otherwise internal address (RFC 1918, shared address space, unique local
IPv6, the egress network, where the host is), unless the operator pinned that very name
to its address (``NetworkPolicy.proxy_hosts``: an LLM gateway inside the network, say);
the rest is let through. Each decision is written to stdout as one ``PERSTACK_ACCESS``
line, which the launcher turns into a ``proxyAccess`` event.
"""

from __future__ import annotations

from flows.launcher.domains import domain_pattern

PROXY_PORT = 3128
ACCESS_TAG = "PERSTACK_ACCESS"
REASON_NOT_ALLOWED = "domain not in the allow-list"
REASON_FORBIDDEN_ADDRESS = "resolves to a link-local, loopback, private or internal address"
REASON_ALLOWED = "domain in the allow-list"
REASON_MALFORMED = "refused by the proxy as malformed or unsupported"
_FORBIDDEN_NETWORKS = (
    "169.254.0.0/16",  # IPv4 link-local, cloud metadata services
    "fe80::/10",  # IPv6 link-local
    "127.0.0.0/8",  # the proxy's own loopback
    "::1",
    "0.0.0.0/8",
    "fd00:ec2::254",  # a metadata service's IPv6 address
)
# Refused unless the name was pinned by the operator: a public name whose DNS someone else
# controls must not become a way into the host's own network.
_INTERNAL_NETWORKS = (
    "10.0.0.0/8",
    "172.16.0.0/12",  # Docker's default bridges, the host's gateway among them
    "192.168.0.0/16",
    "100.64.0.0/10",  # shared address space (one cloud's metadata service is there)
    "168.63.129.16",  # another cloud's platform endpoint
    "198.18.0.0/15",
    "224.0.0.0/3",  # multicast and reserved
    "fc00::/7",  # unique local IPv6
)
# An unanswered lookup must not hold a request for squid's default 30 s.
DNS_TIMEOUT_SECONDS = 5


# TODO(#5): an allowed domain is allowed on every port; the policy could name ports too.
def render_squid_config(
    domains: tuple[str, ...], pinned: tuple[str, ...] = (), internal: tuple[str, ...] = ()
) -> str:
    """squid.conf for an allow-list of ``domains``; ``pinned`` names may reach internal
    addresses, ``internal`` networks are refused besides the usual ones."""
    lines = [
        f"http_port {PROXY_PORT}",
        "pid_filename /tmp/squid.pid",
        "cache_log stdio:/dev/stderr",
        "logfile_rotate 0",
        "coredump_dir /tmp",
        "cache deny all",
        "cache_mem 8 MB",
        "memory_cache_shared off",
        "shutdown_lifetime 0 seconds",
        "pinger_enable off",
        f"dns_timeout {DNS_TIMEOUT_SECONDS} seconds",
        "via off",
        "forwarded_for delete",
        "httpd_suppress_version_string on",
        "visible_hostname perstack-proxy",
        # The decision, as the client asked: method, host, port, squid status, HTTP status.
        f"logformat perstack {ACCESS_TAG}\t%rm\t%>rd\t%>rP\t%Ss\t%>Hs",
        "access_log stdio:/dev/stdout perstack",
        "buffered_logs off",
    ]
    if domains:
        patterns = " ".join(domain_pattern(d) for d in domains)
        lines.append(f"acl allowed_domains dstdom_regex -n -i {patterns}")
    else:
        lines.append("acl allowed_domains dstdom_regex -n -i ^$")
    # -n: match the name as the client wrote it; without it squid would match an IP
    # literal through its reverse lookup (and /etc/hosts), letting addresses in by name.
    lines += [
        f"acl forbidden_addresses dst {' '.join(_FORBIDDEN_NETWORKS)}",
        f"acl internal_addresses dst {' '.join((*_INTERNAL_NETWORKS, *internal))}",
        "http_access deny !allowed_domains",
        "http_access deny forbidden_addresses",
    ]
    if pinned:
        lines += [
            f"acl pinned_names dstdomain -n {' '.join(sorted(set(pinned)))}",
            "http_access allow pinned_names",
        ]
    lines += [
        "http_access deny internal_addresses",
        "http_access allow allowed_domains",
        "http_access deny all",
    ]
    return "\n".join(lines) + "\n"
