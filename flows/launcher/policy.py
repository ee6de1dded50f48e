"""The network policy an Expert needs, read from its perstack.toml.

Egress is the LLM provider's host plus the ``allowedDomains`` of every skill of the
Expert and of the Experts it delegates to (they all run in the same container). An
offline provider with no skill domains gets no network at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from flows.launcher.spec import NetworkPolicy
from runtime.config import LoadedConfig, load_config

# Where the anthropic provider sends requests when no base URL is configured.
ANTHROPIC_DEFAULT_HOST = "api.anthropic.com"
_OFFLINE_PROVIDERS = frozenset({"scripted"})


def egress_domains(
    loaded: LoadedConfig, expert_key: str, provider_base_url: str | None = None
) -> list[str]:
    """The domains the execution of ``expert_key`` may reach, unnormalised, sorted."""
    domains: set[str] = set()
    provider_host = _provider_host(loaded, provider_base_url)
    if provider_host is not None:
        domains.add(provider_host)
    loaded.check_delegates(expert_key)  # a delegate the file lacks: say which, and where
    seen: set[str] = set()
    pending = [expert_key]
    while pending:
        key = pending.pop()
        if key in seen:
            continue
        seen.add(key)
        expert = loaded.expert(key)
        for skill in expert.effective_skills().values():
            domains.update(getattr(skill, "allowed_domains", []))
        pending.extend(expert.delegates)
    return sorted(domains)


def network_policy_for(
    config_path: Path,
    expert_key: str,
    *,
    provider_base_url: str | None = None,
    proxy_hosts: Mapping[str, str] | None = None,
    egress_network: str = "perstack-egress",
) -> NetworkPolicy:
    """``allowList`` of the provider host and skills' domains, or ``none`` when empty."""
    domains = egress_domains(load_config(config_path), expert_key, provider_base_url)
    if not domains:
        return NetworkPolicy.none()
    return NetworkPolicy.allow(domains, proxy_hosts=proxy_hosts, egress_network=egress_network)


def _provider_host(loaded: LoadedConfig, base_url: str | None) -> str | None:
    provider = loaded.config.provider
    name = provider.provider_name if provider is not None else "anthropic"
    if name in _OFFLINE_PROVIDERS and base_url is None:
        return None
    if base_url is None and provider is not None and name == "anthropic":
        base_url = provider.typed_setting().base_url
    if base_url is None:
        return ANTHROPIC_DEFAULT_HOST
    return urlsplit(base_url).hostname
