"""One generation: stream it, relay its deltas as events, retry what is transient.

A failure in the middle of a stream discards everything that stream produced: only a
complete ``Generation`` leaves this module, so no half turn reaches a checkpoint.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import random
from collections.abc import Callable
from dataclasses import dataclass

from runtime.errors import ConfigError
from runtime.events import (
    CompleteStreamingReasoning,
    CompleteStreamingRunResult,
    Event,
    Retry,
    StartStreamingReasoning,
    StartStreamingRunResult,
    StreamReasoning,
    StreamRunResult,
)
from runtime.providers.provider import (
    Generation,
    GenerationRequest,
    Provider,
    ProviderError,
    ReasoningDelta,
    TextDelta,
)

logger = logging.getLogger(__name__)

# First backoff delay; doubles per attempt, with jitter. Overridable for tests and demos.
DEFAULT_RETRY_BASE_DELAY_S = 1.0
RETRY_BASE_DELAY_ENV = "PERSTACK_RETRY_BASE_DELAY_MS"
# No single wait longer than this unless the server's retry-after asks for it.
RETRY_MAX_DELAY_S = 60.0
# A retry-after beyond this (a far-off date, a gateway's bug) is not waited out in full: the
# run would hang with nothing to show for it.
RETRY_AFTER_MAX_S = 600.0


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int
    base_delay_s: float = DEFAULT_RETRY_BASE_DELAY_S
    max_delay_s: float = RETRY_MAX_DELAY_S

    @classmethod
    def from_env(cls, max_retries: int) -> RetryPolicy:
        base_ms = os.environ.get(RETRY_BASE_DELAY_ENV)
        if base_ms is None:
            return cls(max_retries=max_retries)
        try:
            delay_ms = float(base_ms)
        except ValueError:
            delay_ms = math.nan
        if not math.isfinite(delay_ms) or delay_ms < 0:
            raise ConfigError(
                f"{RETRY_BASE_DELAY_ENV}={base_ms!r} is not a number of milliseconds; set it "
                f"to 0 or more (default {DEFAULT_RETRY_BASE_DELAY_S * 1000:g}), or unset it"
            )
        return cls(max_retries=max_retries, base_delay_s=delay_ms / 1000)

    def delay_for(self, attempt: int, error: ProviderError) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        if error.retry_after_s is not None:
            return min(RETRY_AFTER_MAX_S, max(0.0, float(error.retry_after_s)))
        ceiling = min(self.max_delay_s, self.base_delay_s * 2.0 ** (attempt - 1))
        return ceiling * random.uniform(0.5, 1.0)


class StreamRelay:
    """Turns provider deltas into the reference's streaming events.

    ``text_is_run_result``: the run-result generation streams its text as
    start/stream/completeStreamingRunResult; tool-calling generations do not stream text.
    """

    def __init__(
        self,
        emit: Callable[[Event], None],
        make: Callable[..., dict[str, object]],
        *,
        text_is_run_result: bool,
    ) -> None:
        self._emit = emit
        self._base = make
        self._text_is_run_result = text_is_run_result
        self._reasoning: list[str] | None = None
        self._text: list[str] | None = None

    def feed(self, item: ReasoningDelta | TextDelta) -> None:
        if isinstance(item, ReasoningDelta):
            if self._reasoning is None:
                self._reasoning = []
                self._emit(StartStreamingReasoning.model_validate(self._base()))
            self._reasoning.append(item.text)
            self._emit(StreamReasoning.model_validate({**self._base(), "delta": item.text}))
            return
        self._finish_reasoning()
        if not self._text_is_run_result:
            return
        if self._text is None:
            self._text = []
            self._emit(StartStreamingRunResult.model_validate(self._base()))
        self._text.append(item.text)
        self._emit(StreamRunResult.model_validate({**self._base(), "delta": item.text}))

    def finish(self) -> None:
        self._finish_reasoning()
        if self._text is not None:
            text = "".join(self._text)
            self._emit(CompleteStreamingRunResult.model_validate({**self._base(), "text": text}))
            self._text = None

    def _finish_reasoning(self) -> None:
        if self._reasoning is not None:
            text = "".join(self._reasoning)
            self._emit(CompleteStreamingReasoning.model_validate({**self._base(), "text": text}))
            self._reasoning = None


async def _stream_once(
    provider: Provider, request: GenerationRequest, relay: StreamRelay
) -> Generation:
    try:
        async with asyncio.timeout(request.timeout_s):
            async for item in provider.stream(request):
                if isinstance(item, Generation):
                    relay.finish()
                    return item
                relay.feed(item)
    except TimeoutError as error:
        raise ProviderError(
            f"no complete reply within the generation timeout of {request.timeout_s:g} s",
            retryable=True,
            kind="timeout",
        ) from error
    raise ProviderError("the provider's stream ended without a reply", retryable=True)


async def generate(
    provider: Provider,
    request: GenerationRequest,
    *,
    policy: RetryPolicy,
    emit: Callable[[Event], None],
    base: Callable[[], dict[str, object]],
    text_is_run_result: bool,
) -> Generation:
    """Run one generation with retries; each retry is one ``retry`` event.

    Raises the last ``ProviderError`` when it is not retryable or retries are used up.
    """
    attempt = 0
    while True:
        attempt += 1
        relay = StreamRelay(emit, base, text_is_run_result=text_is_run_result)
        try:
            return await _stream_once(provider, request, relay)
        except ProviderError as error:
            if not error.retryable or attempt > policy.max_retries:
                raise
            delay = policy.delay_for(attempt, error)
            logger.warning(
                "generation attempt %d failed (%s); retrying in %.2f s", attempt, error, delay
            )
            emit(
                Retry.model_validate(
                    {
                        **base(),
                        "reason": str(error),
                        "attempt": attempt,
                        "delayMs": round(delay * 1000),
                        "statusCode": error.status_code,
                    }
                )
            )
            await asyncio.sleep(delay)
