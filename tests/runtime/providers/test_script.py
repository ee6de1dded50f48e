"""Loading a script: errors name the file and the entry, and say what is expected."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.errors import ConfigError
from runtime.providers.script import ScriptError, load_script


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "script.json"
    path.write_text(text)
    return path


def test_a_valid_script_keeps_turns_and_faults(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[{"thinking": "t", "text": "x", "tool_use": [{"name": "a"}]},'
        ' {"http_error": {"status": 429, "retry_after": 1}, "delay_first_byte_s": 0.5}]',
    )

    first, second = load_script(path)

    assert first.turn.tool_use == [{"name": "a", "input": {}}]
    assert second.http_error is not None and second.http_error.retry_after == 1.0
    assert second.delay_first_byte_s == 0.5


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{}", "a script is a JSON array of turns"),
        ("[1]", "turn 0: a turn is a JSON object"),
        ('[{"text": "ok"}, {"txt": "typo"}]', "turn 1: unknown key 'txt'"),
        ('[{"text": 3}]', "turn 0: 'text' must be a string"),
        ('[{"tool_use": {"name": "a"}}]', "turn 0: 'tool_use' must be a list"),
        ('[{"tool_use": [{"input": {}}]}]', "turn 0, tool_use 0: 'name' must be"),
        ('[{"tool_use": [{"name": "a", "input": [1]}]}]', "turn 0, tool_use 0: 'input' must be"),
        ('[{"http_error": {"status": 200}}]', "turn 0, http_error: 'status' must be"),
        ('[{"stream_error": "boom"}]', "turn 0: 'stream_error' must be"),
        ('[{"drop_after_events": -1}]', "turn 0: 'drop_after_events' must be a number >= 0"),
        ("[{]", "not valid JSON (line 1"),
        ('[{"usage": {"input_tokens": 1.5}}]', "turn 0, usage: 'input_tokens' must be a whole"),
        ('[{"usage": {"tokens": 1}}]', "turn 0, usage: unknown key 'tokens'"),
        ('[{"stop_reason": 1}]', "turn 0: 'stop_reason' must be a string"),
    ],
)
def test_bad_scripts_are_refused_naming_file_and_entry(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path, text)

    with pytest.raises(ScriptError) as caught:
        load_script(path)

    assert str(caught.value).startswith(str(path))
    assert message in str(caught.value)


def test_a_missing_script_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the script"):
        load_script(tmp_path / "absent.json")
