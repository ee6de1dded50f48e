"""Identifiers shaped like the reference's (cuid2: 24 lowercase base-36 characters)."""

from __future__ import annotations

import secrets
import time

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
_LETTERS = _ALPHABET[10:]
ID_LENGTH = 24


def new_id() -> str:
    """A random id: a letter, then 23 base-36 characters (about 119 bits of randomness)."""
    number = secrets.randbits(122)
    chars = [secrets.choice(_LETTERS)]
    for _ in range(ID_LENGTH - 1):
        number, digit = divmod(number, 36)
        chars.append(_ALPHABET[digit])
    return "".join(chars)


def now_ms() -> int:
    """Wall-clock time in UTC milliseconds, the unit of every timestamp we write."""
    return time.time_ns() // 1_000_000
