import os
from pathlib import Path

import pytest

from runtime.config import find_config, load_config, load_env_files, parse_config
from runtime.errors import ConfigError
from tests.reference import RECORDINGS

SHARED = RECORDINGS


def write(tmp_path: Path, text: str, name: str = "perstack.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_every_recorded_reference_config_loads_unchanged() -> None:
    configs = sorted(SHARED.glob("*/perstack.toml"))
    assert configs, f"no reference configs under {SHARED}"
    for path in configs:
        loaded = load_config(path)
        assert loaded.config.experts, path


def test_unknown_key_names_file_key_path_and_the_closest_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[experts."reviewer"]\ninstruction = "x"\n'
        '[experts."reviewer".skills."git"]\ntype = "mcpStdioSkill"\ncommand = "uvx"\n'
        'comand = "uvx"\n',
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert str(path) in message
    assert 'experts."reviewer".skills."git": unknown key \'comand\'' in message
    assert "did you mean 'command'?" in message


def test_unknown_top_level_key_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown key 'maxStep'.*maxSteps"):
        load_config(write(tmp_path, 'maxStep = 3\n[experts."a"]\ninstruction = "x"\n'))


def test_missing_instruction_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r'experts\."a"\.instruction: required key is missing'):
        load_config(write(tmp_path, '[experts."a"]\ndescription = "x"\n'))


def test_invalid_toml_says_where(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "model = \n"))


def test_plain_http_base_url_is_refused_unless_loopback(tmp_path: Path) -> None:
    base = '[experts."a"]\ninstruction = "x"\n[provider]\nproviderName = "anthropic"\n'
    ok = parse_config(
        (base + '[provider.setting]\nbaseUrl = "http://127.0.0.1:8080/v1"\n').encode(),
        tmp_path / "p.toml",
    )
    assert ok.config.provider is not None
    assert ok.config.provider.typed_setting().base_url == "http://127.0.0.1:8080/v1"
    refused = (base + '[provider.setting]\nbaseUrl = "http://api.example.com/v1"\n').encode()
    with pytest.raises(ConfigError, match=r"provider.*http://api.example.com/v1.*https"):
        parse_config(refused, tmp_path / "p.toml")


def test_expert_without_skills_table_gets_the_builtin_skill(tmp_path: Path) -> None:
    loaded = load_config(write(tmp_path, '[experts."a"]\ninstruction = "x"\n'))
    assert list(loaded.expert("a").effective_skills()) == ["@perstack/base"]


def test_a_delegate_the_file_lacks_is_an_error_only_for_the_experts_that_reach_it(
    tmp_path: Path,
) -> None:
    # Regression (compat C3): the whole file was refused, so no Expert of it could run.
    text = (
        '[experts."a"]\ninstruction = "x"\ndelegates = ["ghost"]\n'
        '[experts."b"]\ninstruction = "x"\ndelegates = ["a"]\n'
        '[experts."c"]\ninstruction = "x"\n'
    )
    path = write(tmp_path, text)
    loaded = load_config(path)
    loaded.check_delegates("c")
    for key in ("a", "b"):
        with pytest.raises(ConfigError) as caught:
            loaded.check_delegates(key)
        message = str(caught.value)
        assert str(path) in message
        assert "experts.\"a\".delegates names 'ghost'" in message
        assert 'define [experts."ghost"]' in message


def test_unknown_expert_lists_the_known_ones(tmp_path: Path) -> None:
    loaded = load_config(write(tmp_path, '[experts."a"]\ninstruction = "x"\n'))
    with pytest.raises(ConfigError, match="experts defined: a"):
        loaded.expert("b")


def test_config_is_found_from_a_subfolder(tmp_path: Path) -> None:
    path = write(tmp_path, '[experts."a"]\ninstruction = "x"\n')
    sub = tmp_path / "x" / "y"
    sub.mkdir(parents=True)
    assert find_config(None, cwd=sub) == path
    with pytest.raises(ConfigError, match="config file not found"):
        find_config(tmp_path / "missing.toml")


def test_env_files_never_override_variables_already_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, 'envPath = ["settings.env"]\n[experts."a"]\ninstruction = "x"\n')
    write(tmp_path, "PERSTACK_TEST_SET=from-file\nPERSTACK_TEST_NEW=from-file\n", "settings.env")
    monkeypatch.setenv("PERSTACK_TEST_SET", "from-env")
    monkeypatch.delenv("PERSTACK_TEST_NEW", raising=False)
    load_env_files(load_config(path))
    assert os.environ["PERSTACK_TEST_SET"] == "from-env"
    assert os.environ["PERSTACK_TEST_NEW"] == "from-file"
    monkeypatch.delenv("PERSTACK_TEST_NEW")


def test_env_path_in_the_config_is_relative_to_it_and_on_the_command_line_to_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_dir, cwd = tmp_path / "config", tmp_path / "cwd"
    config_dir.mkdir()
    cwd.mkdir()
    path = write(config_dir, 'envPath = ["a.env"]\n[experts."a"]\ninstruction = "x"\n')
    write(config_dir, "PERSTACK_TEST_A=config-dir\n", "a.env")
    write(config_dir, "PERSTACK_TEST_B=config-dir\n", "b.env")
    write(cwd, "PERSTACK_TEST_B=cwd\n", "b.env")
    for name in ("PERSTACK_TEST_A", "PERSTACK_TEST_B"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(cwd)
    load_env_files(load_config(path), ["b.env"])
    assert os.environ["PERSTACK_TEST_A"] == "config-dir"
    assert os.environ["PERSTACK_TEST_B"] == "cwd"
    for name in ("PERSTACK_TEST_A", "PERSTACK_TEST_B"):
        monkeypatch.delenv(name)


def test_a_named_env_file_that_is_missing_is_an_error(tmp_path: Path) -> None:
    loaded = load_config(write(tmp_path, '[experts."a"]\ninstruction = "x"\n'))
    with pytest.raises(ConfigError, match="env file not found"):
        load_env_files(loaded, ["nope.env"])
