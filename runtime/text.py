"""Text that can always be written as UTF-8 JSON.

File names that are not UTF-8 (decoded with surrogate escapes), or a JSON string holding
a lone ``\\udc80``, give Python strings that cannot be encoded. Everything a tool returns
or a model sends passes through ``scrub`` before it enters the run's state, so one odd
file name can never crash a run or an event.
"""

from __future__ import annotations

from typing import Any

REPLACEMENT = "\ufffd"


def scrub_text(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD (unchanged when valid)."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "".join(REPLACEMENT if "\ud800" <= ch <= "\udfff" else ch for ch in text)
    return text


def scrub(value: Any) -> Any:
    """``scrub_text`` applied to every string in a JSON-like value (keys included)."""
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, dict):
        return {scrub_text(k) if isinstance(k, str) else k: scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(item) for item in value]
    return value
