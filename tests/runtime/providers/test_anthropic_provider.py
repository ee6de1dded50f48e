"""AnthropicProvider against the fake Messages API over loopback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from runtime.errors import ConfigError
from runtime.messages import TextPart, ThinkingPart, ToolCallPart
from runtime.providers.anthropic import AnthropicProvider, api_root
from runtime.providers.provider import ReasoningDelta, TextDelta
from tests.fakes import FakeMessagesAPI
from tests.runtime.providers.conftest import TEST_KEY
from tests.runtime.providers.helpers import READ_TOOL, collect, make_request


async def test_streamed_text_arrives_as_deltas_and_one_generation(
    fake_api: FakeMessagesAPI, provider: AnthropicProvider
) -> None:
    fake_api.add_turns([{"text": "Hello! Nice to meet you, how can I help today?"}])

    deltas, generation = await collect(provider, make_request())

    assert all(isinstance(d, TextDelta) for d in deltas)
    assert len(deltas) > 1
    assert "".join(d.text for d in deltas) == "Hello! Nice to meet you, how can I help today?"
    assert [type(p) for p in generation.contents] == [TextPart]
    assert generation.contents[0] == TextPart(
        id=generation.contents[0].id, text="Hello! Nice to meet you, how can I help today?"
    )
    assert generation.stop_reason == "end_turn"
    assert generation.model == "claude-sonnet-4-5"


async def test_thinking_streams_before_text_and_keeps_its_signature(
    fake_api: FakeMessagesAPI, provider: AnthropicProvider
) -> None:
    fake_api.add_turns(
        [{"thinking": "The user wants a notes file.", "text": "Done.", "signature": "sig-123"}]
    )

    deltas, generation = await collect(provider, make_request(reasoning_budget=2048))

    kinds = [type(d) for d in deltas]
    assert kinds.index(TextDelta) > max(i for i, k in enumerate(kinds) if k is ReasoningDelta)
    reasoning = "".join(d.text for d in deltas if isinstance(d, ReasoningDelta))
    assert reasoning == "The user wants a notes file."
    thinking = generation.contents[0]
    assert isinstance(thinking, ThinkingPart)
    assert (thinking.thinking, thinking.signature) == ("The user wants a notes file.", "sig-123")


async def test_tool_use_gives_tool_call_parts_in_order(
    fake_api: FakeMessagesAPI, provider: AnthropicProvider
) -> None:
    fake_api.add_turns(
        [
            {
                "text": "I will do both at once.",
                "tool_use": [
                    {"name": "writeTextFile", "input": {"path": "alpha.txt", "text": "alpha\n"}},
                    {"name": "readTextFile", "input": {"path": "seed.txt"}, "id": "toolu_fixed"},
                ],
            }
        ]
    )

    _, generation = await collect(provider, make_request(tools=[READ_TOOL]))

    calls = [p for p in generation.contents if isinstance(p, ToolCallPart)]
    assert [(c.tool_name, c.args) for c in calls] == [
        ("writeTextFile", {"path": "alpha.txt", "text": "alpha\n"}),
        ("readTextFile", {"path": "seed.txt"}),
    ]
    assert calls[0].tool_call_id.startswith("toolu_")
    assert calls[1].tool_call_id == "toolu_fixed"
    assert generation.stop_reason == "tool_use"


TRICKY_INPUT = {
    "path": 'dir/näme "quoted".txt',
    "text": "line1\nline2\t\\ end \u2603 😀",
    "count": -12.5e3,
    "flags": [True, False, None],
    "nested": {"": {"k": [1, {"x": "}"}]}},
}


async def test_tool_input_split_at_every_index_gives_the_original_object(
    fake_api: FakeMessagesAPI, provider: AnthropicProvider
) -> None:
    # One turn, one tool call per split point: fragments cut inside keys, values, escapes and
    # multi-byte characters (ensure_ascii=False keeps them raw).
    for ascii_only in (True, False):
        raw = json.dumps(TRICKY_INPUT, ensure_ascii=ascii_only)
        calls = [
            {"name": "writeTextFile", "input": TRICKY_INPUT, "partial_json": [raw[:i], raw[i:]]}
            for i in range(len(raw) + 1)
        ]
        fake_api.add_turns([{"tool_use": calls}])

        _, generation = await collect(provider, make_request(tools=[READ_TOOL]))

        args = [p.args for p in generation.contents if isinstance(p, ToolCallPart)]
        assert len(args) == len(raw) + 1
        assert all(a == TRICKY_INPUT for a in args)


async def test_tool_input_in_many_tiny_fragments_with_empty_ones_between(
    fake_api: FakeMessagesAPI, provider: AnthropicProvider
) -> None:
    raw = json.dumps(TRICKY_INPUT, ensure_ascii=False)
    fragments = [piece for ch in raw for piece in ("", ch)]
    fake_api.add_turns([{"tool_use": [{"name": "t", "input": {}, "partial_json": fragments}]}])

    _, generation = await collect(provider, make_request(tools=[READ_TOOL]))

    assert generation.contents[0].args == TRICKY_INPUT  # type: ignore[union-attr]


@pytest.mark.parametrize("fragments", [[], [""], ["", "  ", ""]], ids=["none", "empty", "blank"])
async def test_tool_input_with_no_or_empty_delta_is_an_empty_object(
    fake_api: FakeMessagesAPI, provider: AnthropicProvider, fragments: list[str]
) -> None:
    fake_api.add_turns(
        [{"tool_use": [{"name": "attemptCompletion", "input": {}, "partial_json": fragments}]}]
    )

    _, generation = await collect(provider, make_request(tools=[READ_TOOL]))

    assert generation.contents[0].args == {}  # type: ignore[union-attr]


@pytest.mark.parametrize("form", ["sdk", "sdk/", "reference", "reference/"])
async def test_both_base_url_forms_reach_v1_messages(form: str) -> None:
    with FakeMessagesAPI([{"text": "ok"}]) as api:
        base_url = {
            "sdk": api.url,
            "sdk/": api.url + "/",
            "reference": api.url_v1,
            "reference/": api.url_v1 + "/",
        }[form]
        provider = AnthropicProvider(base_url=base_url, api_key=TEST_KEY)
        try:
            await collect(provider, make_request())
        finally:
            await provider.aclose()
        assert [r.path for r in api.requests] == ["/v1/messages"]


def test_api_root_strips_only_a_trailing_v1() -> None:
    assert api_root("https://gw.example/v1") == "https://gw.example"
    assert api_root("https://gw.example/anthropic/v1/") == "https://gw.example/anthropic"
    assert api_root("https://gw.example/v10") == "https://gw.example/v10"
    assert api_root(None) is None


async def test_configured_headers_and_the_api_key_are_sent(
    fake_api: FakeMessagesAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-from-env")
    fake_api.add_turns([{"text": "ok"}])
    provider = AnthropicProvider(
        base_url=fake_api.url_v1, headers={"x-gateway-tenant": "acme", "x-trace": "t-1"}
    )
    try:
        await collect(provider, make_request())
    finally:
        await provider.aclose()

    headers = fake_api.requests[0].headers
    assert headers["x-gateway-tenant"] == "acme"
    assert headers["x-trace"] == "t-1"
    assert headers["x-api-key"] == "sk-ant-from-env"
    assert headers["anthropic-version"] == "2023-06-01"
    assert fake_api.requests[0].body["stream"] is True


async def test_a_configured_authorization_header_replaces_the_api_key(
    fake_api: FakeMessagesAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    fake_api.api_key = "gateway-token"
    fake_api.add_turns([{"text": "ok"}])
    provider = AnthropicProvider(
        base_url=fake_api.url_v1, headers={"Authorization": "Bearer gateway-token"}
    )
    try:
        _, generation = await collect(provider, make_request())
    finally:
        await provider.aclose()

    assert generation.contents[0].text == "ok"  # type: ignore[union-attr]
    assert "x-api-key" not in fake_api.requests[0].headers


def test_a_missing_api_key_is_a_config_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="ANTHROPIC_API_KEY"):
        AnthropicProvider(base_url="http://127.0.0.1:9")


async def test_request_matches_the_reference_shape(
    fake_api: FakeMessagesAPI, provider: AnthropicProvider
) -> None:
    fake_api.add_turns([{"text": "ok"}, {"text": "ok"}])

    await collect(provider, make_request(tools=[READ_TOOL], reasoning_budget=2048))
    await collect(provider, make_request(tools=None))

    with_tools, without_tools = (r.body for r in fake_api.requests)
    assert with_tools["system"] == [
        {"type": "text", "text": "You are a test expert.", "cache_control": {"type": "ephemeral"}}
    ]
    assert with_tools["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert with_tools["max_tokens"] == 64000
    assert with_tools["stream"] is True
    assert with_tools["tool_choice"] == {"type": "auto"}
    assert with_tools["tools"] == [
        {
            "name": "readTextFile",
            "description": "Read a text file.",
            "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}},
        }
    ]
    assert with_tools["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Create notes.txt"}]}
    ]
    assert "tools" not in without_tools and "tool_choice" not in without_tools
    assert "thinking" not in without_tools


async def test_usage_counts_cache_tokens(
    fake_api: FakeMessagesAPI, provider: AnthropicProvider
) -> None:
    usage = {
        "input_tokens": 50,
        "output_tokens": 20,
        "cache_creation_input_tokens": 300,
        "cache_read_input_tokens": 1000,
    }
    fake_api.add_turns([{"text": "ok", "usage": usage}])

    _, generation = await collect(provider, make_request())

    assert generation.usage.input_tokens == 1350  # uncached + cache writes + cache reads
    assert generation.usage.cached_input_tokens == 1000
    assert generation.usage.output_tokens == 20
    assert generation.usage.total_tokens == 1370


async def test_non_streamed_reply_from_the_fake_is_a_plain_message(
    fake_api: FakeMessagesAPI,
) -> None:
    import anthropic

    fake_api.add_turns([{"thinking": "hm", "text": "plain", "tool_use": [{"name": "t"}]}])
    client = anthropic.AsyncAnthropic(api_key=TEST_KEY, base_url=fake_api.url, max_retries=0)
    try:
        message = await client.messages.create(
            model="claude-sonnet-4-5",
            max_tokens=100,
            messages=[{"role": "user", "content": "hi"}],
        )
    finally:
        await client.close()

    assert [b.type for b in message.content] == ["thinking", "text", "tool_use"]
    assert message.stop_reason == "tool_use"
    assert fake_api.requests[0].body.get("stream") in (None, False)


def test_the_runtime_never_imports_the_anthropic_sdk_and_httpx_only_for_a_provider() -> None:
    code = (
        "import sys, runtime.cli, runtime.providers.anthropic as a, runtime.providers.scripted; "
        "before = 'httpx' in sys.modules; "
        "a.AnthropicProvider(api_key='k'); "
        "print(before, 'httpx' in sys.modules, 'anthropic' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[3],
    )
    assert out.stdout.split() == ["False", "True", "False"]


async def test_anthropic_base_url_from_the_environment_may_end_in_v1(
    fake_api: FakeMessagesAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake_api.url_v1)
    fake_api.add_turns([{"text": "ok"}])
    provider = AnthropicProvider(api_key=TEST_KEY)
    try:
        await collect(provider, make_request())
    finally:
        await provider.aclose()

    assert [r.path for r in fake_api.requests] == ["/v1/messages"]


async def test_a_consumer_that_stops_early_leaves_the_provider_usable(
    fake_api: FakeMessagesAPI, provider: AnthropicProvider
) -> None:
    fake_api.add_turns([{"text": "a long reply " * 20}, {"text": "next"}])

    stream = provider.stream(make_request())
    first = await anext(stream)
    await stream.aclose()  # type: ignore[attr-defined]
    _, generation = await collect(provider, make_request())

    assert isinstance(first, TextDelta)
    assert generation.contents[0] == TextPart(id=generation.contents[0].id, text="next")
