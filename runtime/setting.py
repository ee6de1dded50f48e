"""RunSetting: everything one run was started with (written as run-setting.json).

Secrets never land here: the API key and the environment are not recorded, only the names
of the variables a run was allowed to see.

The file must validate against the reference's ``runSettingSchema``: its ``getAllRuns``
silently skips a run-setting that does not, and then cannot find our jobs for
``--continue``. That schema requires ``temperature``, ``perstackApiBaseUrl`` and, for most
providers, ``providerConfig.apiKey``; we write the key as "" (the reference writes the real
one; we never do). ``providerName = "scripted"`` is ours and not in the reference's union:
such a run-setting does not validate there, which is moot, since the reference cannot run
that provider anyway.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from runtime.model import WireModel


class InteractiveToolCallResult(WireModel):
    tool_call_id: str
    tool_name: str
    skill_name: str
    text: str


class RunInput(WireModel):
    text: str | None = None
    interactive_tool_call_result: InteractiveToolCallResult | None = None


# The reference's default Perstack API (its `defaultPerstackApiBaseUrl`); we never call it.
DEFAULT_PERSTACK_API_BASE_URL = "https://api.perstack.ai"
# What a run without `temperature` in its config samples at: we send none, and the Messages
# API's default is 1.0 (also the only value it accepts with extended thinking).
DEFAULT_TEMPERATURE = 1.0


class ProviderConfig(WireModel):
    provider_name: str
    # Required by the reference's schema; always "": a key is a secret.
    api_key: str = ""
    base_url: str | None = None
    # Header names only: values can be credentials.
    header_names: list[str] | None = None


class RunSetting(WireModel):
    model: str
    provider_config: ProviderConfig
    job_id: str
    run_id: str
    expert_key: str
    input: RunInput
    experts: dict[str, Any] = Field(default_factory=dict)
    temperature: float = DEFAULT_TEMPERATURE
    max_steps: int
    max_retries: int
    timeout: int
    started_at: int
    updated_at: int
    perstack_api_base_url: str = DEFAULT_PERSTACK_API_BASE_URL
    env: dict[str, str] = Field(default_factory=dict)
    verbose: bool | None = None
    # Ours: the runtime that wrote this, and the reasoning budget in tokens.
    runtime_version: str | None = None
    reasoning_budget: int | None = None
