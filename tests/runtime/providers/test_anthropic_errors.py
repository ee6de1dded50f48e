"""How HTTP statuses, stream error types and retry-after headers become ProviderErrors."""

from __future__ import annotations

import email.utils
import time

import pytest

from runtime.generation import RETRY_AFTER_MAX_S, RetryPolicy
from runtime.providers.anthropic_errors import retry_after_seconds, status_error, stream_error


def test_retry_after_ms_wins_over_seconds() -> None:
    assert retry_after_seconds({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5


def test_retry_after_in_seconds() -> None:
    assert retry_after_seconds({"retry-after": "3"}) == 3.0


def test_retry_after_as_an_http_date() -> None:
    later = email.utils.formatdate(time.time() + 30, usegmt=True)

    seconds = retry_after_seconds({"retry-after": later})

    assert seconds is not None and 25 <= seconds <= 31


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"retry-after": "soon"},
        {"retry-after-ms": "x"},
        {"retry-after": "inf"},
        {"retry-after": "NaN"},
        {"retry-after": "1e400"},
        {"retry-after-ms": "Infinity"},
    ],
)
def test_absent_or_unreadable_retry_after_is_none(headers: dict[str, str]) -> None:
    assert retry_after_seconds(headers) is None


def test_a_retry_after_far_in_the_future_is_waited_only_up_to_the_cap() -> None:
    seconds = retry_after_seconds({"retry-after": "Wed, 21 Oct 2099 07:28:00 GMT"})
    error = status_error(429, "slow down", retry_after_s=seconds)

    assert RetryPolicy(max_retries=5).delay_for(1, error) == RETRY_AFTER_MAX_S


@pytest.mark.parametrize(
    ("status", "retryable", "kind"),
    [
        (408, True, "timeout"),
        (409, True, "server"),
        (413, False, "client"),
        (422, False, "client"),
        (501, True, "server"),
        (529, True, "overloaded"),
    ],
)
def test_status_mapping(status: int, retryable: bool, kind: str) -> None:
    error = status_error(status, "m", retry_after_s=None)

    assert (error.retryable, error.kind, error.status_code) == (retryable, kind, status)


@pytest.mark.parametrize(
    ("error_type", "retryable", "kind"),
    [
        ("overloaded_error", True, "overloaded"),
        ("rate_limit_error", True, "rate_limit"),
        ("api_error", True, "server"),
        ("some_future_error", True, "server"),
        ("invalid_request_error", False, "client"),
        ("authentication_error", False, "auth"),
    ],
)
def test_stream_error_event_mapping(error_type: str, retryable: bool, kind: str) -> None:
    error = stream_error(error_type, "m")

    assert (error.retryable, error.kind) == (retryable, kind)
