"""Messages API and transport failures translated into ``ProviderError`` at the boundary.

The scripted provider shares the status and stream rules, so ``httpx`` is not imported here.
"""

from __future__ import annotations

import email.utils
import json
import math
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import httpx

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
# How much of an error body that is not the API's JSON error object goes into the message.
MAX_ERROR_TEXT = 500
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


def transport_error(exc: httpx.HTTPError, *, started: bool) -> ProviderError:
    """A failure of the HTTP exchange itself: all are transient, so all are retried."""
    import httpx  # loaded already by whoever caught ``exc``; the scripted provider never is

    if isinstance(exc, httpx.TimeoutException):
        where = "reading the model's reply" if started else "the request to the model"
        return ProviderError(f"{where} timed out: {_describe(exc)}", retryable=True, kind="timeout")
    if started:
        return ProviderError(
            f"connection to the model failed mid-reply: {_describe(exc)}",
            retryable=True,
            kind="connection",
        )
    return ProviderError(
        f"cannot reach the model at {_url(exc)}: {_describe(exc)}",
        retryable=True,
        kind="connection",
    )


def response_error(status: int, headers: Mapping[str, str], body: bytes) -> ProviderError:
    """A reply that is not a stream: an HTTP error status, or a 200 that carries no events."""
    retry_after = retry_after_seconds(headers)
    error_type, message = _error_body(body)
    if 200 <= status < 300:
        if error_type:
            return stream_error(error_type, message, retry_after_s=retry_after)
        return ProviderError(
            "the model API answered without an event stream "
            f"(content-type {headers.get('content-type') or 'missing'!r}): {message}",
            retryable=True,
            kind="server",
        )
    error = status_error(status, message, retry_after_s=retry_after)
    should_retry = headers.get("x-should-retry")
    if should_retry in ("true", "false"):
        error.retryable = should_retry == "true"
    return error


def _error_body(body: bytes) -> tuple[str, str]:
    """``(error.type, error.message)`` of the API's error object, else ``("", the text)``."""
    text = body.decode("utf-8", "replace").strip()
    try:
        payload = json.loads(text)
    except json.JSONDecodeError:
        payload = None
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict):
        message = error.get("message")
        return str(error.get("type") or ""), str(message) if message else json.dumps(error)
    return "", text[:MAX_ERROR_TEXT] or "(empty body)"


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
    """``retry-after-ms``, else ``retry-after`` as seconds or an HTTP date; None if absent or
    not a finite number (``inf``, ``nan``), so that the loop's own backoff applies."""
    millis = _finite(headers.get("retry-after-ms"))
    if millis is not None:
        return max(0.0, millis / 1000)
    value = headers.get("retry-after")
    if not value:
        return None
    seconds = _finite(value)
    if seconds is not None:
        return max(0.0, seconds)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _finite(value: str | None) -> float | None:
    try:
        number = float(value) if value else None
    except ValueError:
        return None
    return number if number is not None and math.isfinite(number) else None


def _url(exc: httpx.HTTPError) -> str:
    try:
        return str(exc.request.url)
    except RuntimeError:  # no request attached
        return "its base URL"


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
