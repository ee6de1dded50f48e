"""Every fault the fake can inject reaches the loop as the right ProviderError."""

from __future__ import annotations

import socket

import pytest

from runtime.providers.anthropic import AnthropicProvider
from runtime.providers.provider import Generation, ProviderError, StreamItem
from tests.fakes import FakeMessagesAPI
from tests.runtime.providers.conftest import TEST_KEY
from tests.runtime.providers.helpers import collect, make_request

LONG_TEXT = "A reply long enough to be streamed in many small pieces. " * 4


async def stream_until_error(
    provider: AnthropicProvider, timeout_s: float = 10.0
) -> tuple[list[StreamItem], ProviderError]:
    items: list[StreamItem] = []
    with pytest.raises(ProviderError) as caught:
        async for item in provider.stream(make_request(timeout_s=timeout_s)):
            items.append(item)
    assert not any(isinstance(i, Generation) for i in items), "a failed turn yielded a Generation"
    return items, caught.value


async def test_429_is_retryable_and_honours_retry_after(
    fake_api: FakeMessagesAPI, provider: AnthropicProvider
) -> None:
    fake_api.add_turns([{"http_error": {"status": 429, "retry_after": 7}}])

    _, error = await stream_until_error(provider)

    assert (error.retryable, error.status_code, error.kind) == (True, 429, "rate_limit")
    assert error.retry_after_s == 7


async def test_retry_after_with_a_fraction_of_a_second(
    fake_api: FakeMessagesAPI, provider: AnthropicProvider
) -> None:
    fake_api.add_turns([{"http_error": {"status": 429, "retry_after": 0.25}}])

    _, error = await stream_until_error(provider)

    assert error.retry_after_s == 0.25


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_server_errors_are_retryable(
    fake_api: FakeMessagesAPI, provider: AnthropicProvider, status: int
) -> None:
    fake_api.add_turns([{"http_error": {"status": status}}])

    _, error = await stream_until_error(provider)

    assert (error.retryable, error.status_code, error.kind) == (True, status, "server")
    assert error.retry_after_s is None


async def test_529_overloaded_is_retryable(
    fake_api: FakeMessagesAPI, provider: AnthropicProvider
) -> None:
    fake_api.add_turns([{"http_error": {"status": 529, "message": "Overloaded"}}])

    _, error = await stream_until_error(provider)

    assert (error.retryable, error.status_code, error.kind) == (True, 529, "overloaded")
    assert "Overloaded" in str(error)


@pytest.mark.parametrize(
    ("status", "kind"), [(400, "client"), (401, "auth"), (403, "auth"), (404, "client")]
)
async def test_client_errors_are_not_retried(
    fake_api: FakeMessagesAPI, provider: AnthropicProvider, status: int, kind: str
) -> None:
    fake_api.add_turns([{"http_error": {"status": status, "message": "bad thing"}}])

    _, error = await stream_until_error(provider)

    assert (error.retryable, error.status_code, error.kind) == (False, status, kind)
    assert "bad thing" in str(error)


async def test_sse_error_event_mid_stream_is_retryable_and_yields_no_generation(
    fake_api: FakeMessagesAPI, provider: AnthropicProvider
) -> None:
    fake_api.add_turns(
        [{"text": LONG_TEXT, "stream_error": {"type": "overloaded_error", "message": "Overloaded"}}]
    )

    items, error = await stream_until_error(provider)

    assert items, "the fake streams part of the turn before the error event"
    assert (error.retryable, error.kind) == (True, "overloaded")


async def test_sse_error_event_as_the_reference_recorded_it(
    fake_api: FakeMessagesAPI, provider: AnthropicProvider
) -> None:
    fake_api.add_turns([{"stream_error": {"type": "overloaded_error", "message": "Overloaded"}}])

    _, error = await stream_until_error(provider)

    assert error.retryable


async def test_invalid_request_error_event_is_not_retried(
    fake_api: FakeMessagesAPI, provider: AnthropicProvider
) -> None:
    fake_api.add_turns(
        [{"text": "x", "stream_error": {"type": "invalid_request_error", "message": "no"}}]
    )

    _, error = await stream_until_error(provider)

    assert (error.retryable, error.kind) == (False, "client")


@pytest.mark.parametrize("after", [0, 1, 3, 6])
async def test_dropped_connection_mid_stream_is_retryable_and_yields_no_generation(
    fake_api: FakeMessagesAPI, provider: AnthropicProvider, after: int
) -> None:
    fake_api.add_turns([{"text": LONG_TEXT, "drop_after_events": after}])

    _, error = await stream_until_error(provider)

    assert error.retryable
    assert error.kind in ("connection", "server")


async def test_dropped_connection_after_the_last_event_but_before_the_end_still_fails(
    fake_api: FakeMessagesAPI, provider: AnthropicProvider
) -> None:
    # Every event except message_stop: the turn is incomplete, so it must not land.
    # message_start, ping, block start, one delta, block stop, message_delta | message_stop
    fake_api.add_turns([{"text": "short", "drop_after_events": 6}])

    _, error = await stream_until_error(provider)

    assert error.retryable


async def test_read_timeout_between_events_is_retryable(
    fake_api: FakeMessagesAPI, provider: AnthropicProvider
) -> None:
    fake_api.add_turns([{"text": LONG_TEXT, "delay_between_events_s": 5}])

    _, error = await stream_until_error(provider, timeout_s=0.3)

    assert (error.retryable, error.kind) == (True, "timeout")


async def test_no_first_byte_within_the_timeout_is_retryable(
    fake_api: FakeMessagesAPI, provider: AnthropicProvider
) -> None:
    fake_api.add_turns([{"text": "late", "delay_first_byte_s": 5}])

    _, error = await stream_until_error(provider, timeout_s=0.3)

    assert (error.retryable, error.kind) == (True, "timeout")


async def test_small_delays_still_give_the_whole_turn(
    fake_api: FakeMessagesAPI, provider: AnthropicProvider
) -> None:
    fake_api.add_turns(
        [{"text": "slow but fine", "delay_first_byte_s": 0.05, "delay_between_events_s": 0.01}]
    )

    _, generation = await collect(provider, make_request())

    assert generation.contents[0].text == "slow but fine"  # type: ignore[union-attr]


async def test_a_turn_after_a_failed_one_succeeds_on_the_same_provider(
    fake_api: FakeMessagesAPI, provider: AnthropicProvider
) -> None:
    fake_api.add_turns(
        [
            {"text": LONG_TEXT, "drop_after_events": 4},
            {"http_error": {"status": 529}},
            {"text": "recovered"},
        ]
    )

    await stream_until_error(provider)
    await stream_until_error(provider)
    _, generation = await collect(provider, make_request())

    assert generation.contents[0].text == "recovered"  # type: ignore[union-attr]
    assert len(fake_api.requests) == 3  # one request per attempt: the SDK did not retry


async def test_unreachable_server_is_a_retryable_connection_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    provider = AnthropicProvider(base_url=f"http://127.0.0.1:{port}/v1", api_key=TEST_KEY)
    try:
        _, error = await stream_until_error(provider)
    finally:
        await provider.aclose()

    assert (error.retryable, error.kind) == (True, "connection")


async def test_running_out_of_script_is_a_non_retryable_error_naming_the_script(
    fake_api: FakeMessagesAPI, provider: AnthropicProvider
) -> None:
    fake_api.add_turns([{"text": "only one"}])
    await collect(provider, make_request())

    _, error = await stream_until_error(provider)

    assert not error.retryable
    assert "no turn left after 1 turn" in str(error)


async def test_the_api_error_message_and_type_reach_the_error(
    fake_api: FakeMessagesAPI, provider: AnthropicProvider
) -> None:
    fake_api.add_turns(
        [
            {
                "http_error": {
                    "status": 400,
                    "type": "invalid_request_error",
                    "message": "max_tokens: 0",
                }
            }
        ]
    )

    _, error = await stream_until_error(provider)

    assert "400" in str(error) and "max_tokens: 0" in str(error)
    assert error.__cause__ is None  # a reply, not an exception, was the failure


async def test_a_wrong_api_key_is_an_auth_error_that_is_not_retried() -> None:
    with FakeMessagesAPI([{"text": "never"}], api_key="sk-right") as api:
        provider = AnthropicProvider(base_url=api.url, api_key="sk-wrong")
        try:
            _, error = await stream_until_error(provider)
        finally:
            await provider.aclose()

        assert (error.retryable, error.status_code, error.kind) == (False, 401, "auth")
        assert api.turns_played == 0
