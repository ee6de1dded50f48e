"""Text that can always be written as UTF-8 JSON, and shown on a terminal.

File names that are not UTF-8 (decoded with surrogate escapes), or a JSON string holding
a lone ``\\udc80``, give Python strings that cannot be encoded. Everything a tool returns
or a model sends passes through ``scrub`` before it enters the run's state, so one odd
file name can never crash a run or an event.

What a model or a tool wrote can hold terminal control sequences (colours, a new window
title, OSC 52 to set the clipboard, a carriage return that hides a line): ``visible``
shows them as escapes before anything reaches a person's terminal.
"""

from __future__ import annotations

import re
from typing import Any

REPLACEMENT = "\ufffd"
# C0 controls but newline and tab, DEL, and C1 controls (8-bit CSI, OSC, …).
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


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


def visible(text: str) -> str:
    """``text`` for a terminal: each control character but newline and tab written as
    ``\\xNN`` (ESC is ``\\x1b``), so none of them acts."""
    return _CONTROLS.sub(lambda match: f"\\x{ord(match.group()):02x}", text)
