"""The Anthropic Messages API through the official SDK, streamed.

``anthropic`` costs seconds to import, so it is imported when a provider is built, never when
this module is.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

from runtime.errors import ConfigError
from runtime.providers.anthropic_errors import translate, transport_error_types
from runtime.providers.anthropic_stream import StreamAssembler
from runtime.providers.convert import request_body
from runtime.providers.provider import GenerationRequest, ProviderError, StreamItem

if TYPE_CHECKING:
    from anthropic import AsyncAnthropic

logger = logging.getLogger(__name__)

API_KEY_ENV = "ANTHROPIC_API_KEY"
BASE_URL_ENV = "ANTHROPIC_BASE_URL"
# Connecting to the API (or a local gateway) should take well under this; a hung connect is
# reported as a retryable timeout instead of eating the whole generation's budget.
CONNECT_TIMEOUT_S = 10.0
# Closing a stream we gave up on must not hang the run.
CLOSE_TIMEOUT_S = 5.0


_preloading: threading.Thread | None = None


def preload_sdk() -> None:
    """Start importing the SDK in a background thread, so that its cost (seconds, cold) overlaps
    with configuration loading and skill start-up. Idempotent; building a provider simply waits
    for an import still in progress (Python's import lock)."""
    global _preloading
    if _preloading is None and "anthropic" not in sys.modules:
        _preloading = threading.Thread(target=_import_sdk, name="anthropic-preload", daemon=True)
        _preloading.start()


def _import_sdk() -> None:
    try:
        import anthropic  # noqa: F401
    except ImportError:
        logger.debug("preloading the anthropic SDK failed", exc_info=True)


def sdk_base_url(base_url: str | None) -> str | None:
    """The SDK appends ``/v1/messages`` itself; the reference's ``baseUrl`` ends in ``/v1``.
    Both spellings, with or without a trailing slash, reach the same ``…/v1/messages``."""
    if not base_url:
        return None
    url = base_url.rstrip("/")
    if url.endswith("/v1"):
        url = url[: -len("/v1")]
    return url


class AnthropicProvider:
    """Streams generations from the Messages API. The SDK's own retries are off: the agent loop
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
        if not key and not _has_auth_header(headers):
            raise ConfigError(
                f"{API_KEY_ENV} is not set: export it, or put it in the env file named by "
                "envPath in perstack.toml (or --env-path)"
            )
        from anthropic import AsyncAnthropic

        # The SDK would read ANTHROPIC_BASE_URL itself, but not in the reference's /v1 form.
        self.base_url = sdk_base_url(base_url or os.environ.get(BASE_URL_ENV))
        self._client: AsyncAnthropic = AsyncAnthropic(
            api_key=key or None,
            base_url=self.base_url,
            default_headers=dict(headers or {}),
            max_retries=0,
        )
        self._errors = _sdk_error_types()

    async def stream(self, request: GenerationRequest) -> AsyncIterator[StreamItem]:
        body = request_body(request)
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
    ) -> AsyncGenerator[list[Any], None]:
        """Each raw event's deltas; every failure, before or after the first byte, translated."""
        from anthropic import Timeout

        timeout = Timeout(timeout_s, connect=min(CONNECT_TIMEOUT_S, timeout_s))
        try:
            async with asyncio.timeout_at(deadline):
                raw = await self._client.messages.create(**body, stream=True, timeout=timeout)
        except TimeoutError as exc:
            raise _deadline_error(timeout_s) from exc
        except self._errors as exc:
            raise translate(exc) from exc
        try:
            events = raw.__aiter__()
            while True:
                try:
                    async with asyncio.timeout_at(deadline):
                        event = await events.__anext__()
                except StopAsyncIteration:
                    return
                except TimeoutError as exc:
                    raise _deadline_error(timeout_s) from exc
                except self._errors as exc:
                    raise translate(exc) from exc
                yield assembler.feed(event)
        finally:
            await _close_quietly(raw)

    async def aclose(self) -> None:
        await self._client.close()


def _sdk_error_types() -> tuple[type[BaseException], ...]:
    import anthropic

    # JSONDecodeError: an SSE data line that is not JSON (a garbled stream).
    return (anthropic.APIError, json.JSONDecodeError, *transport_error_types())


def _deadline_error(timeout_s: float) -> ProviderError:
    return ProviderError(
        f"the generation did not finish within its timeout of {timeout_s:g}s",
        retryable=True,
        kind="timeout",
    )


async def _close_quietly(raw: Any) -> None:
    quiet: tuple[type[BaseException], ...] = (TimeoutError, *transport_error_types())
    try:
        async with asyncio.timeout(CLOSE_TIMEOUT_S):
            await raw.close()
    except quiet:
        logger.debug("closing an abandoned reply stream failed", exc_info=True)


def _has_auth_header(headers: Mapping[str, str] | None) -> bool:
    names = {name.lower() for name in (headers or {})}
    return bool(names & {"x-api-key", "authorization"})
