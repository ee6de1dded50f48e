"""Allowed egress domains: normalisation and the patterns the proxy matches them with.

``Example.COM.``, ``example.com.`` and ``example.com`` are one domain: DNS names are
case-insensitive and a trailing dot only marks the name as absolute. An allowed domain
also allows its subdomains. IP literals are refused as domains: an allow-list of names is
what the policy promises, and an address would bypass the link-local check by name.
"""

from __future__ import annotations

import ipaddress
import re

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_MAX_NAME_LENGTH = 253


def normalize_domain(domain: str) -> str:
    """The canonical form of an allowed domain: lower case, no trailing dot.

    Raises ``ValueError`` naming the value when it is not a plain DNS name.
    """
    name = domain.strip().lower().removesuffix(".")
    if name.startswith("*."):
        # `*.example.com` is how some configs say "and its subdomains"; we always mean that.
        name = name[2:]
    if _is_ip_literal(name):
        raise ValueError(f"allowed domain {domain!r} is an IP address; name a DNS domain")
    labels = name.split(".")
    if not name or len(name) > _MAX_NAME_LENGTH or not all(_LABEL.match(p) for p in labels):
        raise ValueError(f"allowed domain {domain!r} is not a valid DNS name")
    return name


def normalize_domains(domains: list[str] | tuple[str, ...] | frozenset[str]) -> tuple[str, ...]:
    """Normalised, deduplicated and sorted, so equal policies render equal configs."""
    return tuple(sorted({normalize_domain(d) for d in domains}))


def domain_pattern(domain: str) -> str:
    """A case-insensitive regular expression for the domain, its subdomains, and either
    spelling with or without the trailing dot (the proxy sees the name as the client sent
    it)."""
    return r"^(.+\.)?" + re.escape(normalize_domain(domain)) + r"\.?$"


def domain_allowed(host: str, allowed: tuple[str, ...]) -> bool:
    """Whether ``host`` falls under one of the allowed domains (the proxy's rule, in Python)."""
    name = host.strip().lower().removesuffix(".")
    return any(name == d or name.endswith("." + d) for d in allowed)


def _is_ip_literal(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True
