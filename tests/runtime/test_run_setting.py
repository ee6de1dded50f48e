"""run-setting.json: what a run was started with, in a form the reference's schema accepts."""

import json
from pathlib import Path
from urllib.parse import urlparse

import pytest

from runtime.cli import main
from runtime.config import parse_config
from runtime.executor import Limits, build_run_setting
from runtime.providers.factory import ProviderChoice
from runtime.setting import DEFAULT_PERSTACK_API_BASE_URL, DEFAULT_TEMPERATURE, RunInput
from tests.fakes import FakeMessagesAPI
from tests.runtime.harness import WORKER_TOML, Project

SECRET = "sk-ant-never-written"


def _setting(toml: str, tmp_path: Path) -> dict[str, object]:
    loaded = parse_config(toml.encode(), tmp_path / "perstack.toml")
    choice = ProviderChoice(
        name="anthropic", model="claude-sonnet-4-5", headers={"x-api-key": SECRET}
    )
    setting = build_run_setting(
        loaded, choice, Limits(100, 5, 300_000), "worker", "j1", "r1", RunInput(text="hi")
    )
    data: dict[str, object] = json.loads(setting.to_json())
    return data


def test_run_setting_has_the_fields_the_reference_schema_requires(tmp_path: Path) -> None:
    # Regression (compat K3): without temperature, perstackApiBaseUrl and
    # providerConfig.apiKey the reference's getAllRuns skipped every run of ours.
    data = _setting(WORKER_TOML, tmp_path)
    assert data["temperature"] == DEFAULT_TEMPERATURE
    assert 0 <= DEFAULT_TEMPERATURE <= 1
    assert data["perstackApiBaseUrl"] == DEFAULT_PERSTACK_API_BASE_URL
    assert urlparse(str(data["perstackApiBaseUrl"])).scheme == "https"
    assert data["providerConfig"] == {
        "providerName": "anthropic",
        "apiKey": "",
        "headerNames": ["x-api-key"],
    }
    assert data["env"] == {}
    for key in ("model", "jobId", "runId", "expertKey", "input", "experts", "maxRetries"):
        assert key in data


def test_run_setting_takes_temperature_and_api_url_from_the_config(tmp_path: Path) -> None:
    toml = 'temperature = 0.25\nperstackApiBaseUrl = "https://perstack.example.com"\n'
    data = _setting(toml + WORKER_TOML, tmp_path)
    assert data["temperature"] == 0.25
    assert data["perstackApiBaseUrl"] == "https://perstack.example.com"


def test_the_api_key_never_lands_in_run_setting_json(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    with FakeMessagesAPI([{"text": "done"}]) as api:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", api.url_v1)
        code = main(
            [
                "run",
                "worker",
                "hi",
                "--config",
                str(project.config),
                "--workspace",
                str(project.workspace),
            ]
        )
    assert code == 0
    (path,) = project.workspace.glob("perstack/jobs/*/runs/*/run-setting.json")
    text = path.read_text()
    assert SECRET not in text
    assert json.loads(text)["providerConfig"]["apiKey"] == ""
