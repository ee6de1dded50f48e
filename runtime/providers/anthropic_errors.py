"""Anthropic SDK and transport errors translated into ``ProviderError`` at the boundary.

Only called once ``anthropic`` is imported (by ``AnthropicProvider``), so it may import it.
"""

from __future__ import annotations

import email.utils
import sys
import time
from collections.abc import Mapping
from typing import Any, Literal

from runtime.providers.provider import ProviderError

# The values of ``ProviderError.kind`` this module produces.
Kind = Literal["rate_limit", "overloaded", "server", "timeout", "connection", "client", "auth"]

_RETRYABLE_STATUS: dict[int, Kind] = {
    408: "timeout",
    409: "server",
    429: "rate_limit",
    500: "server",
    502: "server",
    503: "server",
    504: "server",
    529: "overloaded",
}
# What an ``error`` event in the middle of a 200 stream says, by its ``error.type``.
_STREAM_ERROR_KINDS: dict[str, tuple[Kind, bool]] = {
    "overloaded_error": ("overloaded", True),
    "rate_limit_error": ("rate_limit", True),
    "api_error": ("server", True),
    "timeout_error": ("timeout", True),
    "invalid_request_error": ("client", False),
    "authentication_error": ("auth", False),
    "permission_error": ("auth", False),
    "not_found_error": ("client", False),
    "request_too_large": ("client", False),
}


def transport_error_types() -> tuple[type[BaseException], ...]:
    """The HTTP libraries' base errors, for failures the SDK lets through while a stream is read.
    Newer SDKs use ``httpx2``, older ones ``httpx``: whichever is loaded is the one in use."""
    found: list[type[BaseException]] = []
    for name in ("httpx2", "httpx"):
        module = sys.modules.get(name)
        if module is not None:
            found.append(module.HTTPError)
    return tuple(found)


def translate(exc: BaseException) -> ProviderError:
    """The ``ProviderError`` for an SDK or transport exception (raise it ``from exc``)."""
    import anthropic

    if isinstance(exc, anthropic.APIStatusError):
        return _from_status(exc)
    if isinstance(exc, anthropic.APITimeoutError):
        return ProviderError(
            f"request to the model timed out: {exc}", retryable=True, kind="timeout"
        )
    if isinstance(exc, anthropic.APIConnectionError):
        return ProviderError(f"cannot reach the model: {exc}", retryable=True, kind="connection")
    if _is_timeout(exc):
        return ProviderError(
            f"reading the model's reply timed out: {_describe(exc)}", retryable=True, kind="timeout"
        )
    if isinstance(exc, transport_error_types()):
        return ProviderError(
            f"connection to the model failed mid-reply: {_describe(exc)}",
            retryable=True,
            kind="connection",
        )
    return ProviderError(
        f"the model's reply could not be read: {_describe(exc)}", retryable=True, kind="server"
    )


def _from_status(exc: Any) -> ProviderError:
    headers: Mapping[str, str] = exc.response.headers
    retry_after = retry_after_seconds(headers)
    if exc.status_code == 200:
        # An SSE ``error`` event after the stream started: the status line said 200.
        return stream_error(exc.type or "", _api_message(exc), retry_after_s=retry_after)
    error = status_error(exc.status_code, _api_message(exc), retry_after_s=retry_after)
    should_retry = headers.get("x-should-retry")
    if should_retry in ("true", "false"):
        error.retryable = should_retry == "true"
    return error


def status_error(status: int, message: str, *, retry_after_s: float | None) -> ProviderError:
    """A reply with an HTTP error status: 408/409/429/5xx/529 are retried, other 4xx are not."""
    retry_kind = _RETRYABLE_STATUS.get(status)
    return ProviderError(
        f"the model API answered {status}: {message}",
        retryable=retry_kind is not None or status >= 500,
        status_code=status,
        retry_after_s=retry_after_s,
        kind=retry_kind or _failure_kind(status),
    )


def stream_error(
    error_type: str, message: str, *, retry_after_s: float | None = None
) -> ProviderError:
    """An SSE ``error`` event in a stream that had started: transient unless a client error."""
    kind, retryable = _STREAM_ERROR_KINDS.get(error_type, ("server", True))
    return ProviderError(
        f"the model's reply stream failed: {error_type or 'error'}: {message}",
        retryable=retryable,
        kind=kind,
        retry_after_s=retry_after_s,
    )


def _failure_kind(status: int) -> Kind:
    if status in (401, 403):
        return "auth"
    return "server" if status >= 500 else "client"


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """``retry-after-ms``, else ``retry-after`` as seconds or an HTTP date; None if absent."""
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _api_message(exc: Any) -> str:
    return str(getattr(exc, "api_message", None) or exc)


def _is_timeout(exc: BaseException) -> bool:
    if isinstance(exc, TimeoutError):
        return True
    return any(
        isinstance(exc, module.TimeoutException)
        for name in ("httpx2", "httpx")
        if (module := sys.modules.get(name)) is not None
    )


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
