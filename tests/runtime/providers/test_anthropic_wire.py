"""The provider against replies the fake Messages API never sends: raw bytes from a real socket.

Gateways and proxies in front of the API answer with HTML pages, JSON without a stream, CRLF
line endings or garbage; each must become the right ``ProviderError`` or the right turn.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable

import pytest

from runtime.errors import ConfigError
from runtime.providers.anthropic import AnthropicProvider
from runtime.providers.provider import ProviderError
from runtime.providers.sse import LineSplitter, ServerSentEvent, SseDecoder
from tests.runtime.providers.helpers import collect, make_request


class RawServer:
    """Answers every request with the bytes it is given, then closes the connection."""

    def __init__(self) -> None:
        self.reply = b""
        # Keep the connection open after the reply, as a gateway that goes on sending would.
        self.hold_open = False
        # Or a reply made from the request (its head and body).
        self.reply_for: Callable[[bytes], bytes] | None = None
        self.requests: list[bytes] = []
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> RawServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/v1"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        self.requests.append(head + await reader.readexactly(length))
        writer.write(self.reply_for(self.requests[-1]) if self.reply_for else self.reply)
        await writer.drain()
        if self.hold_open:
            await reader.read()  # until the client hangs up
        writer.close()


def http_reply(status: str, content_type: str, body: bytes, *extra: str) -> bytes:
    head = [f"HTTP/1.1 {status}", f"content-type: {content_type}", *extra]
    head += [f"content-length: {len(body)}", "connection: close"]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def sse(*events: tuple[str, object], newline: str = "\n") -> bytes:
    return "".join(
        f"event: {name}{newline}data: {json.dumps(data)}{newline}{newline}" for name, data in events
    ).encode()


def text_turn(text: str) -> list[tuple[str, object]]:
    return [
        ("message_start", {"type": "message_start", "message": {"model": "m", "usage": {}}}),
        ("ping", {"type": "ping"}),
        (
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text"}},
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": text},
            },
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn"},
                "usage": {"input_tokens": 3, "output_tokens": 2},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]


@pytest.fixture
async def raw() -> AsyncIterator[RawServer]:
    async with RawServer() as server:
        yield server


async def generate(raw: RawServer, *, api_key: str = "sk-test", timeout_s: float = 10.0) -> object:
    provider = AnthropicProvider(base_url=raw.url, api_key=api_key)
    try:
        _, generation = await collect(provider, make_request(timeout_s=timeout_s))
    finally:
        await provider.aclose()
    return generation


async def failure(raw: RawServer, *, api_key: str = "sk-test") -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        await generate(raw, api_key=api_key)
    return caught.value


async def test_crlf_line_endings_give_the_whole_turn(raw: RawServer) -> None:
    raw.reply = http_reply("200 OK", "text/event-stream", sse(*text_turn("hi"), newline="\r\n"))

    generation = await generate(raw)

    assert generation.contents[0].text == "hi"  # type: ignore[attr-defined]
    assert generation.usage.total_tokens == 5  # type: ignore[attr-defined]


async def test_an_html_error_page_from_a_proxy_is_a_retryable_server_error_quoting_it(
    raw: RawServer,
) -> None:
    raw.reply = http_reply("502 Bad Gateway", "text/html", b"<h1>upstream unavailable</h1>")

    error = await failure(raw)

    assert (error.retryable, error.status_code, error.kind) == (True, 502, "server")
    assert "upstream unavailable" in str(error)


async def test_x_should_retry_false_overrides_a_retryable_status(raw: RawServer) -> None:
    body = json.dumps({"type": "error", "error": {"type": "api_error", "message": "no"}})
    raw.reply = http_reply(
        "500 Internal", "application/json", body.encode(), "x-should-retry: false"
    )

    error = await failure(raw)

    assert (error.retryable, error.status_code) == (False, 500)


async def test_a_200_json_reply_instead_of_a_stream_is_a_retryable_error_naming_it(
    raw: RawServer,
) -> None:
    raw.reply = http_reply("200 OK", "application/json", b'{"id": "msg_1", "content": []}')

    error = await failure(raw)

    assert error.retryable
    assert "without an event stream" in str(error) and "application/json" in str(error)


async def test_an_error_object_in_a_200_json_reply_is_read_as_a_stream_error(
    raw: RawServer,
) -> None:
    body = json.dumps({"type": "error", "error": {"type": "overloaded_error", "message": "busy"}})
    raw.reply = http_reply("200 OK", "application/json", body.encode())

    error = await failure(raw)

    assert (error.retryable, error.kind) == (True, "overloaded")
    assert "busy" in str(error)


@pytest.mark.parametrize(
    "data",
    [b"data: {not json\n\n", b"data: [1, 2]\n\n", b'data: {"type": "content_block_start"}\n\n'],
    ids=["not-json", "not-an-object", "no-index"],
)
async def test_garbled_event_data_is_a_retryable_malformed_stream_error(
    raw: RawServer, data: bytes
) -> None:
    start = sse(text_turn("x")[0])
    raw.reply = http_reply("200 OK", "text/event-stream", start + b"event: e\n" + data)

    error = await failure(raw)

    assert (error.retryable, error.kind) == (True, "server")
    assert "malformed reply stream" in str(error)


async def test_a_stream_cut_before_message_stop_is_retryable(raw: RawServer) -> None:
    raw.reply = http_reply("200 OK", "text/event-stream", sse(*text_turn("x")[:-1]))

    error = await failure(raw)

    assert (error.retryable, error.kind) == (True, "connection")


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x85"])
async def test_a_raw_unicode_line_separator_in_the_text_stays_in_the_text(
    raw: RawServer, separator: str
) -> None:
    # JSON strings may hold these unescaped; only CR and LF end a line of the event stream.
    body = sse(*text_turn("a" + separator + "b")).replace(
        json.dumps(separator)[1:-1].encode(), separator.encode()
    )
    raw.reply = http_reply("200 OK", "text/event-stream", body)

    generation = await generate(raw)

    assert generation.contents[0].text == "a" + separator + "b"  # type: ignore[attr-defined]


async def test_the_stream_is_read_as_utf8_whatever_charset_its_content_type_names(
    raw: RawServer,
) -> None:
    body = sse(*text_turn("héllo")).replace(b"\\u00e9", "é".encode())
    raw.reply = http_reply("200 OK", "text/event-stream; charset=ISO-8859-1", body)

    generation = await generate(raw)

    assert generation.contents[0].text == "héllo"  # type: ignore[attr-defined]


async def test_what_a_gateway_sends_after_message_stop_is_not_waited_for(raw: RawServer) -> None:
    trailer = b'data: [DONE]\n\nevent: ping\ndata: {"type": "ping"}\n\n'
    raw.reply = (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\n"
        + sse(*text_turn("done"))
        + trailer
    )
    raw.hold_open = True

    generation = await generate(raw, timeout_s=5.0)

    assert generation.contents[0].text == "done"  # type: ignore[attr-defined]


async def test_an_api_key_echoed_back_by_a_gateway_is_redacted_from_the_error(
    raw: RawServer,
) -> None:
    raw.reply_for = lambda request: http_reply(
        "401 Unauthorized", "text/html", b"<pre>" + request + b"</pre>"
    )

    error = await failure(raw, api_key="sk-ant-CANARY-0123456789")

    assert "CANARY" not in str(error)
    assert "[redacted]" in str(error)
    assert error.kind == "auth"


async def test_an_api_key_with_a_line_break_or_spaces_around_it_is_sent_trimmed(
    raw: RawServer,
) -> None:
    raw.reply = http_reply("200 OK", "text/event-stream", sse(*text_turn("ok")))

    await generate(raw, api_key="  sk-test-trimmed\n")

    assert b"\r\nx-api-key: sk-test-trimmed\r\n" in raw.requests[0]


@pytest.mark.parametrize("key", ["sk-ant-SEC\u201cRET", "sk-ant-SE\rCRET", "sk-ant SECRET"])
def test_an_api_key_a_header_cannot_carry_is_a_config_error_that_does_not_quote_it(
    key: str,
) -> None:
    with pytest.raises(ConfigError) as caught:
        AnthropicProvider(base_url="http://127.0.0.1:9/v1", api_key=key)

    assert "ANTHROPIC_API_KEY" in str(caught.value)
    assert "SEC" not in str(caught.value) and "RET" not in str(caught.value)


def test_sse_lines_split_anywhere_across_chunks_come_out_whole() -> None:
    stream = "data: a\u2028b\r\n\r\ndata: é😀\r\rx\ny\r\n".encode()
    lines = ["data: a\u2028b", "", "data: é😀", "", "x", "y"]

    for first in range(len(stream)):
        for second in range(first, len(stream)):
            splitter = LineSplitter()
            chunks = [stream[:first], stream[first:second], stream[second:]]
            assert [line for chunk in chunks for line in splitter.feed(chunk)] == lines


def decode(lines: list[str]) -> list[ServerSentEvent]:
    decoder = SseDecoder()
    return [event for line in lines if (event := decoder.feed(line)) is not None]


def test_sse_data_lines_join_with_newlines_and_comments_and_unknown_fields_are_skipped() -> None:
    lines = [": keep-alive", "event: a", "id: 7", "data: one", "data:two", "data:  three", ""]

    assert decode(lines) == [ServerSentEvent("a", "one\ntwo\n three")]


def test_sse_an_event_without_data_is_not_dispatched_and_the_name_resets() -> None:
    lines = ["event: empty", "", "data: x", "", "event: b", "data: y", ""]

    assert decode(lines) == [ServerSentEvent("message", "x"), ServerSentEvent("b", "y")]


def test_sse_an_event_not_closed_by_a_blank_line_is_not_dispatched() -> None:
    assert decode(["event: a", "data: half"]) == []
