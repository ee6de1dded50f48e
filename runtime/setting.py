"""RunSetting: everything one run was started with (written as run-setting.json).

Secrets never land here: the API key and the environment are not recorded, only the names
of the variables a run was allowed to see.
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


class ProviderConfig(WireModel):
    provider_name: str
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
    temperature: float | None = None
    max_steps: int
    max_retries: int
    timeout: int
    started_at: int
    updated_at: int
    env: dict[str, str] = Field(default_factory=dict)
    verbose: bool | None = None
    # Ours: the runtime that wrote this, and the reasoning budget in tokens.
    runtime_version: str | None = None
    reasoning_budget: int | None = None
