"""The Anthropic Messages API, streamed over ``httpx``.

One endpoint (``POST /v1/messages`` with ``stream: true``) and its server-sent events are all a
run needs, so the runtime speaks them itself rather than through the ``anthropic`` SDK, whose
import (its thousands of typed models) took well over a second of every container's start.
``httpx`` is imported when a provider is built, never when this module is.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
import unicodedata
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

from runtime.errors import ConfigError
from runtime.providers.anthropic_errors import response_error, transport_error
from runtime.providers.anthropic_stream import Delta, StreamAssembler, protocol_error
from runtime.providers.convert import request_body
from runtime.providers.provider import GenerationRequest, ProviderError, StreamItem
from runtime.providers.sse import server_sent_events

if TYPE_CHECKING:
    import httpx

logger = logging.getLogger(__name__)

API_KEY_ENV = "ANTHROPIC_API_KEY"
BASE_URL_ENV = "ANTHROPIC_BASE_URL"
DEFAULT_API_ROOT = "https://api.anthropic.com"
API_VERSION = "2023-06-01"
# Connecting to the API (or a local gateway) should take well under this; a hung connect is
# reported as a retryable timeout instead of eating the whole generation's budget.
CONNECT_TIMEOUT_S = 10.0
# Closing a stream we gave up on must not hang the run.
CLOSE_TIMEOUT_S = 5.0
# An error reply's body is read up to this size for its message.
MAX_ERROR_BODY = 64 * 1024
# Headers whose values are credentials, and the shortest value worth redacting.
_AUTH_HEADERS = frozenset({"x-api-key", "authorization", "proxy-authorization"})
MIN_SECRET_LENGTH = 8


def api_root(base_url: str | None) -> str | None:
    """The URL that ``/v1/messages`` is appended to. The reference's ``baseUrl`` ends in ``/v1``,
    the SDKs' does not: both spellings, with or without a trailing slash, reach the same
    ``…/v1/messages``."""
    if not base_url:
        return None
    url = base_url.rstrip("/")
    if url.endswith("/v1"):
        url = url[: -len("/v1")]
    return url


class AnthropicProvider:
    """Streams generations from the Messages API. It never retries by itself: the agent loop
    retries ``ProviderError(retryable=True)`` and tells the world with ``retry`` events."""

    name = "anthropic"

    def __init__(
        self,
        *,
        base_url: str | None = None,
        headers: Mapping[str, str] | None = None,
        api_key: str | None = None,
    ) -> None:
        key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
        # A key pasted or read from a file often carries a line break or spaces around it.
        key = key.strip() if key else key
        if not key and not _has_auth_header(headers):
            raise ConfigError(
                f"{API_KEY_ENV} is not set: export it, or put it in the env file named by "
                "envPath in perstack.toml (or --env-path)"
            )
        if key:
            _check_header_safe(key)
        import httpx

        self.base_url = api_root(base_url or os.environ.get(BASE_URL_ENV))
        self._url = f"{self.base_url or DEFAULT_API_ROOT}/v1/messages"
        self._headers = {
            "anthropic-version": API_VERSION,
            "accept": "text/event-stream",
            **({"x-api-key": key} if key else {}),
            # The configured headers last: a gateway may need its own auth or version.
            **dict(headers or {}),
        }
        # Never quoted in an error, even when a gateway echoes the request in its reply.
        self._secrets = [
            value
            for name, value in self._headers.items()
            if name.lower() in _AUTH_HEADERS and len(value) >= MIN_SECRET_LENGTH
        ]
        # Proxies and SSL_CERT_FILE come from the environment (trust_env), as in the container.
        self._client = httpx.AsyncClient(follow_redirects=False)

    async def stream(self, request: GenerationRequest) -> AsyncIterator[StreamItem]:
        body = {**request_body(request), "stream": True}
        assembler = StreamAssembler()
        started = time.monotonic()
        deadline = asyncio.get_running_loop().time() + request.timeout_s
        outcome = "failed"
        try:
            # aclosing: a consumer that stops early (or is cancelled) closes the HTTP stream now.
            events = self._events(body, request.timeout_s, deadline, assembler)
            async with contextlib.aclosing(events):
                async for delta_batch in events:
                    for delta in delta_batch:
                        yield delta
            generation = assembler.finish()
            outcome = "completed"
        except ProviderError as exc:
            exc.args = (self._redact(str(exc)),)
            raise
        finally:
            logger.debug(
                "anthropic generation %s %s in %.3fs",
                request.model,
                outcome,
                time.monotonic() - started,
            )
        yield generation

    async def _events(
        self, body: dict[str, Any], timeout_s: float, deadline: float, assembler: StreamAssembler
    ) -> AsyncGenerator[list[Delta], None]:
        """Each event's deltas; every failure, before or after the first byte, translated."""
        import httpx

        timeout = httpx.Timeout(timeout_s, connect=min(CONNECT_TIMEOUT_S, timeout_s))
        request = self._client.build_request(
            "POST", self._url, json=body, headers=self._headers, timeout=timeout
        )
        try:
            async with asyncio.timeout_at(deadline):
                response = await self._client.send(request, stream=True)
        except TimeoutError as exc:
            raise _deadline_error(timeout_s) from exc
        except httpx.HTTPError as exc:
            raise transport_error(exc, started=False) from exc
        try:
            if response.status_code != 200 or not _is_event_stream(response.headers):
                raise response_error(
                    response.status_code, response.headers, await _head(response, deadline)
                )
            events = server_sent_events(response.aiter_bytes()).__aiter__()
            while True:
                try:
                    async with asyncio.timeout_at(deadline):
                        event = await events.__anext__()
                except StopAsyncIteration:
                    return
                except TimeoutError as exc:
                    raise _deadline_error(timeout_s) from exc
                except httpx.HTTPError as exc:
                    raise transport_error(exc, started=True) from exc
                yield assembler.feed(_decode(event.event, event.data))
                if assembler.stopped:
                    # Done: a gateway's trailing "[DONE]" or pings are not waited for.
                    return
        finally:
            await _close_quietly(response)

    async def aclose(self) -> None:
        await self._client.aclose()

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "[redacted]")
        return text


def _check_header_safe(key: str) -> None:
    """A key that cannot travel in an HTTP header fails now, without being quoted."""
    for position, char in enumerate(key):
        if not "!" <= char <= "~":
            raise ConfigError(
                f"{API_KEY_ENV} holds {unicodedata.name(char, f'U+{ord(char):04X}')!r} at "
                f"position {position + 1} (of {len(key)}), which an HTTP header cannot carry: "
                "set it to the key alone, as the console shows it"
            )


def _is_event_stream(headers: Mapping[str, str]) -> bool:
    return headers.get("content-type", "").split(";")[0].strip().lower() == "text/event-stream"


async def _head(response: httpx.Response, deadline: float) -> bytes:
    """The start of an error reply's body; a body that does not come in time is left unread."""
    import httpx

    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout_at(deadline):
            async for chunk in response.aiter_bytes():
                chunks.append(chunk)
                size += len(chunk)
                if size >= MAX_ERROR_BODY:
                    break
    except (TimeoutError, httpx.HTTPError):
        logger.debug("reading an error reply's body failed", exc_info=True)
    return b"".join(chunks)[:MAX_ERROR_BODY]


def _decode(name: str, data: str) -> dict[str, Any]:
    try:
        event = json.loads(data)
    except json.JSONDecodeError as exc:
        raise protocol_error(
            f"{name} event whose data is not JSON ({exc.msg}): {data[:200]!r}"
        ) from exc
    if not isinstance(event, dict):
        raise protocol_error(f"{name} event whose data is not a JSON object: {data[:200]!r}")
    return event


def _deadline_error(timeout_s: float) -> ProviderError:
    return ProviderError(
        f"the generation did not finish within its timeout of {timeout_s:g}s",
        retryable=True,
        kind="timeout",
    )


async def _close_quietly(response: httpx.Response) -> None:
    import httpx

    try:
        async with asyncio.timeout(CLOSE_TIMEOUT_S):
            await response.aclose()
    except (TimeoutError, httpx.HTTPError):
        logger.debug("closing an abandoned reply stream failed", exc_info=True)


def _has_auth_header(headers: Mapping[str, str] | None) -> bool:
    names = {name.lower() for name in (headers or {})}
    return bool(names & _AUTH_HEADERS)
