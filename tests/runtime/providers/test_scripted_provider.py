"""The scripted provider plays the reference recordings' scripts offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runtime.messages import TextPart, ThinkingPart, ToolCallPart
from runtime.providers.provider import Generation, ProviderError, ReasoningDelta, TextDelta
from runtime.providers.script import parse_script
from runtime.providers.scripted import ScriptedProvider
from tests.reference import RECORDINGS
from tests.runtime.providers.helpers import collect, make_request

REFERENCE_SCRIPTS = sorted(RECORDINGS.glob("*/script.json"))


def test_the_reference_scripts_are_there() -> None:
    assert len(REFERENCE_SCRIPTS) >= 5


@pytest.mark.parametrize(
    ("path", "turns"),
    [(p, json.loads(p.read_text())) for p in REFERENCE_SCRIPTS],
    ids=[p.parent.name for p in REFERENCE_SCRIPTS],
)
async def test_plays_every_turn_of_a_reference_script(
    path: Path, turns: list[dict[str, object]]
) -> None:
    provider = ScriptedProvider(path)

    for number, turn in enumerate(turns):
        if "stream_error" in turn:
            with pytest.raises(ProviderError) as caught:
                await collect(provider, make_request())
            assert caught.value.retryable, f"turn {number}"
            continue
        deltas, generation = await collect(provider, make_request())
        assert_plays(turn, deltas, generation)

    assert provider.turns_played == len(turns)


def assert_plays(
    turn: dict[str, object], deltas: list[ReasoningDelta | TextDelta], generation: Generation
) -> None:
    reasoning = "".join(d.text for d in deltas if isinstance(d, ReasoningDelta))
    text = "".join(d.text for d in deltas if isinstance(d, TextDelta))
    assert reasoning == turn.get("thinking", "")
    assert text == turn.get("text", "")
    thinking = [p.thinking for p in generation.contents if isinstance(p, ThinkingPart)]
    assert thinking == ([turn["thinking"]] if "thinking" in turn else [])
    texts = [p.text for p in generation.contents if isinstance(p, TextPart)]
    assert texts == ([turn["text"]] if "text" in turn else [])
    calls = [(p.tool_name, p.args) for p in generation.contents if isinstance(p, ToolCallPart)]
    expected = turn.get("tool_use", [])
    assert isinstance(expected, list)
    assert calls == [(c["name"], c["input"]) for c in expected]
    assert generation.stop_reason == ("tool_use" if calls else "end_turn")


async def test_model_name_says_the_replies_are_scripted() -> None:
    path = RECORDINGS / "01-plain-completion" / "script.json"
    provider = ScriptedProvider(path)

    _, generation = await collect(provider, make_request())

    assert provider.model == "scripted:script.json"
    assert generation.model == "scripted:script.json"
    assert provider.name == "scripted"


async def test_reasoning_streams_before_text_in_several_chunks() -> None:
    provider = ScriptedProvider(
        parse_script([{"thinking": "Let me think about it.", "text": "Here is the answer."}])
    )

    deltas, _ = await collect(provider, make_request())

    kinds = [type(d) for d in deltas]
    assert kinds == sorted(kinds, key=lambda k: k is TextDelta)
    assert kinds.count(ReasoningDelta) > 1 and kinds.count(TextDelta) > 1


async def test_tool_call_ids_look_like_anthropic_ones_and_are_deterministic() -> None:
    script = [{"tool_use": [{"name": "a", "input": {}}, {"name": "b", "input": {}}]}]

    ids = []
    for _ in range(2):
        _, generation = await collect(ScriptedProvider(parse_script(script)), make_request())
        ids.append([p.tool_call_id for p in generation.contents if isinstance(p, ToolCallPart)])

    assert ids[0] == ids[1]
    assert len(set(ids[0])) == 2
    assert all(i.startswith("toolu_") for i in ids[0])


async def test_usage_grows_with_the_conversation() -> None:
    provider = ScriptedProvider(parse_script([{"text": "ok"}, {"text": "ok"}]))

    _, short = await collect(provider, make_request(query="hi"))
    _, long = await collect(provider, make_request(query="hi " * 400))

    assert 0 < short.usage.input_tokens < long.usage.input_tokens
    assert long.usage.output_tokens > 0
    assert long.usage.total_tokens == long.usage.input_tokens + long.usage.output_tokens


async def test_running_out_of_script_names_the_file_and_the_turn_count(tmp_path: Path) -> None:
    path = tmp_path / "short.json"
    path.write_text('[{"text": "one"}]')
    provider = ScriptedProvider(path)
    await collect(provider, make_request())

    with pytest.raises(ProviderError) as caught:
        await collect(provider, make_request())

    assert not caught.value.retryable
    assert caught.value.kind == "script"
    assert str(path) in str(caught.value)
    assert "all 1 turn(s) were played" in str(caught.value)


async def test_stream_error_fails_after_part_of_the_turn_and_yields_no_generation() -> None:
    provider = ScriptedProvider(
        parse_script(
            [
                {"text": "partial " * 10, "stream_error": {"type": "overloaded_error"}},
                {"text": "ok"},
            ]
        )
    )

    items = []
    with pytest.raises(ProviderError) as caught:
        async for item in provider.stream(make_request()):
            items.append(item)

    assert items and not any(isinstance(i, Generation) for i in items)
    assert (caught.value.retryable, caught.value.kind) == (True, "overloaded")
    _, generation = await collect(provider, make_request())
    assert generation.contents[0].text == "ok"  # type: ignore[union-attr]


async def test_http_error_faults_carry_status_and_retry_after() -> None:
    provider = ScriptedProvider(
        parse_script(
            [
                {"http_error": {"status": 429, "retry_after": 2}},
                {"http_error": {"status": 401}},
            ]
        )
    )

    with pytest.raises(ProviderError) as limited:
        await collect(provider, make_request())
    with pytest.raises(ProviderError) as refused:
        await collect(provider, make_request())

    assert (limited.value.retryable, limited.value.retry_after_s) == (True, 2)
    assert (limited.value.status_code, limited.value.kind) == (429, "rate_limit")
    assert (refused.value.retryable, refused.value.kind) == (False, "auth")


async def test_dropped_connection_fault_is_a_retryable_connection_error() -> None:
    provider = ScriptedProvider(parse_script([{"text": "x" * 40, "drop_after_events": 2}]))

    items = []
    with pytest.raises(ProviderError) as caught:
        async for item in provider.stream(make_request()):
            items.append(item)

    assert len(items) == 2
    assert (caught.value.retryable, caught.value.kind) == (True, "connection")


async def test_scripted_usage_stop_reason_and_signature_are_reported_like_the_api() -> None:
    usage = {"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 90}
    provider = ScriptedProvider(
        parse_script(
            [
                {
                    "thinking": "t",
                    "text": "cut",
                    "signature": "sig",
                    "stop_reason": "max_tokens",
                    "usage": usage,
                }
            ]
        )
    )

    _, generation = await collect(provider, make_request())

    assert generation.stop_reason == "max_tokens"
    assert generation.usage.input_tokens == 100
    assert generation.usage.cached_input_tokens == 90
    assert generation.contents[0] == ThinkingPart(
        id=generation.contents[0].id, thinking="t", signature="sig"
    )
