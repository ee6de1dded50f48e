"""Choose and build the provider a run uses, from perstack.toml and the command line."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from runtime.config import SUPPORTED_PROVIDERS, LoadedConfig, check_base_url
from runtime.errors import ConfigError
from runtime.providers.provider import Provider

SCRIPT_ENV = "PERSTACK_SCRIPT"
# Used when neither perstack.toml nor --model names one.
DEFAULT_MODEL = "claude-sonnet-4-5"


@dataclass(frozen=True)
class ProviderChoice:
    name: str
    model: str
    base_url: str | None = None
    headers: dict[str, str] | None = None
    script: Path | None = None


def choose_provider(
    loaded: LoadedConfig,
    *,
    provider: str | None,
    model: str | None,
    script: str | None,
) -> ProviderChoice:
    table = loaded.config.provider
    name = provider or (table.provider_name if table else "anthropic")
    if name not in SUPPORTED_PROVIDERS:
        raise ConfigError(
            f"{loaded.path}: provider {name!r} is not supported by this runtime; "
            f"use one of {', '.join(SUPPORTED_PROVIDERS)} (--provider or [provider] providerName)"
        )
    setting = table.typed_setting() if table and table.provider_name == name else None
    if name == "scripted":
        return _scripted(loaded, script or (setting.script if setting else None))
    chosen_model = model or loaded.config.model or DEFAULT_MODEL
    base_url = (setting.base_url if setting else None) or os.environ.get("ANTHROPIC_BASE_URL")
    if base_url is not None:
        try:
            check_base_url(base_url)
        except ValueError as error:
            raise ConfigError(f"ANTHROPIC_BASE_URL / baseUrl: {error}") from None
    return ProviderChoice(
        name=name,
        model=chosen_model,
        base_url=base_url,
        headers=setting.headers if setting else None,
    )


def _scripted(loaded: LoadedConfig, script: str | None) -> ProviderChoice:
    script = script or os.environ.get(SCRIPT_ENV)
    if not script:
        raise ConfigError(
            "the scripted provider needs a script: pass --script PATH, set "
            f"{SCRIPT_ENV}, or set `script` in [provider.setting]"
        )
    path = Path(script)
    if not path.is_absolute():
        path = path if path.is_file() else loaded.root / path
    if not path.is_file():
        raise ConfigError(f"{script}: script file not found; check --script / {SCRIPT_ENV}")
    return ProviderChoice(name="scripted", model=f"scripted:{path.name}", script=path)


def build_provider(choice: ProviderChoice) -> Provider:
    if choice.name == "scripted":
        from runtime.providers.scripted import ScriptedProvider

        assert choice.script is not None
        return ScriptedProvider(choice.script)
    from runtime.providers.anthropic import AnthropicProvider

    return AnthropicProvider(base_url=choice.base_url, headers=choice.headers)
