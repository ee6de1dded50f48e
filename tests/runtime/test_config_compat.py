"""The reference's own configs load: its slips and newer keys are accepted with a warning,
every other unknown key stays an error."""

import logging
import os
from pathlib import Path

import pytest

from runtime.config import load_config, load_env_files, parse_config
from runtime.errors import ConfigError
from tests.runtime.harness import Project, make_project

EXPERT = '[experts."a"]\ninstruction = "x"\n'


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "perstack.toml"
    path.write_text(text)
    return path


def test_env_path_that_toml_put_under_provider_loads_with_a_warning_and_is_ignored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Regression (compat C1): 20 of the reference's configs were refused.
    (tmp_path / "custom.env").write_text("PERSTACK_TEST_CUSTOM=1\n")
    monkeypatch.delenv("PERSTACK_TEST_CUSTOM", raising=False)
    path = write(tmp_path, '[provider]\nproviderName = "anthropic"\n\nenvPath = ["custom.env"]\n')
    path.write_text(path.read_text() + EXPERT)
    with caplog.at_level(logging.WARNING):
        loaded = load_config(path)
    assert loaded.config.env_path is None
    warning = caplog.text
    assert str(path) in warning and "envPath under [provider] is ignored" in warning
    assert "top level" in warning
    # As in the reference: the default env files, not the misplaced ones.
    assert load_env_files(loaded) == []
    assert "PERSTACK_TEST_CUSTOM" not in os.environ


def test_other_unknown_keys_under_provider_are_still_errors(tmp_path: Path) -> None:
    text = '[provider]\nproviderName = "anthropic"\nenvPaths = ["x"]\n' + EXPERT
    with pytest.raises(ConfigError, match=r"provider: unknown key 'envPaths'"):
        load_config(write(tmp_path, text))


def test_provider_tools_of_newer_reference_configs_load_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    text = (
        EXPERT + 'providerTools = ["webSearch"]\nproviderToolOptions = { webSearch = '
        "{ maxUses = 3 } }\n"
        '[[experts."a".providerSkills]]\ntype = "builtin"\nskillId = "pdf"\n'
    )
    path = write(tmp_path, text)
    with caplog.at_level(logging.WARNING):
        loaded = load_config(path)
    assert loaded.expert("a").instruction == "x"
    assert str(path) in caplog.text
    assert "providerTools and providerSkills and providerToolOptions are" in caplog.text
    assert "not supported by this runtime" in caplog.text


INTERACTIVE = (
    EXPERT + '[experts."a".skills."user"]\ntype = "interactiveSkill"\n'
    '[experts."a".skills."user".tools.askUser]\ninputJsonSchema = "{}"\n'
)


def test_an_interactive_tool_name_equal_to_its_key_is_accepted(tmp_path: Path) -> None:
    # Regression (compat C2): e2e continue-resume.toml and mixed-tools.toml were refused.
    loaded = load_config(write(tmp_path, INTERACTIVE + 'name = "askUser"\n'))
    skill = loaded.expert("a").effective_skills()["user"]
    assert list(getattr(skill, "tools", {})) == ["askUser"]


def test_an_interactive_tool_name_other_than_its_key_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, INTERACTIVE + 'name = "ask"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert str(path) in message
    assert 'skills."user".tools."askUser": name = \'ask\' is not the tool\'s key' in message


def test_whole_numbers_written_as_floats_are_accepted(tmp_path: Path) -> None:
    # Regression (compat C4): `maxSteps = 10.0` said "valid integer".
    text = "maxSteps = 10.0\nmaxRetries = 2.0\ntimeout = 60000.0\n" + EXPERT
    config = load_config(write(tmp_path, text)).config
    assert (config.max_steps, config.max_retries, config.timeout) == (10, 2, 60000)
    assert isinstance(config.max_steps, int)
    with pytest.raises(ConfigError, match=r"maxSteps: .*integer.*10\.5"):
        load_config(write(tmp_path, "maxSteps = 10.5\n" + EXPERT))


def test_timeout_zero_means_zero_ms_as_in_the_reference(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The reference passes it to AbortSignal.timeout(0): every generation aborts at once.
    with caplog.at_level(logging.WARNING):
        config = load_config(write(tmp_path, "timeout = 0\n" + EXPERT)).config
    assert config.timeout == 0
    assert "timeout = 0 means 0 ms per generation" in caplog.text
    with pytest.raises(ConfigError, match="timeout"):
        load_config(write(tmp_path, "timeout = -1\n" + EXPERT))


def test_errors_under_provider_setting_name_the_setting_table(tmp_path: Path) -> None:
    # Regression (compat C7): they said `provider: …` and `provider.baseUrl: …`.
    base = EXPERT + '[provider]\nproviderName = "anthropic"\n[provider.setting]\n'
    with pytest.raises(ConfigError) as caught:
        parse_config((base + 'apiKey = "x"\n').encode(), tmp_path / "p.toml")
    assert "provider.setting: unknown key 'apiKey'" in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        parse_config((base + 'baseUrls = "x"\n').encode(), tmp_path / "p.toml")
    assert "(did you mean 'baseUrl'?)" in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        parse_config((base + 'baseUrl = "http://x.example"\n').encode(), tmp_path / "p.toml")
    assert "provider.setting.baseUrl: " in str(caught.value)


@pytest.fixture
def ghosts(tmp_path: Path) -> Project:
    return make_project(
        tmp_path,
        '[experts."lead"]\ninstruction = "x"\ndelegates = ["@org/ghost"]\n'
        '[experts."worker"]\ninstruction = "x"\n',
    )


def test_an_expert_runs_though_another_expert_of_the_file_names_an_unknown_delegate(
    ghosts: Project,
) -> None:
    assert ghosts.run([{"text": "done"}], expert="worker").code == 0


def test_running_an_expert_whose_delegate_is_not_defined_is_a_usage_error(
    ghosts: Project,
) -> None:
    result = ghosts.run([{"text": "done"}], expert="lead")
    assert result.code == 2
    assert result.events == []
    assert "experts.\"lead\".delegates names '@org/ghost'" in result.stderr
    assert not list(ghosts.workspace.glob("perstack/jobs/*"))
