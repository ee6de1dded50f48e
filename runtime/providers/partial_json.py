"""Tool input assembled from the ``input_json_delta`` fragments of a streamed ``tool_use`` block.

The Messages API splits a tool's JSON input anywhere, inside a key, a string, a number or an
escape sequence. Fragments are only meaningful together, so they are kept verbatim and parsed
once, when the block stops: the result is exactly the object the model wrote. No delta, or only
empty ones, means the model gave no arguments: ``{}``.
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any

# Python writes integers of at most this many digits as text (the interpreter's own guard
# against quadratic conversion), and the history goes back to the API as JSON text.
MAX_INTEGER_DIGITS = sys.int_info.default_max_str_digits
# No tool's arguments nest this deep; the history is serialized recursively (json, pydantic,
# our scrubbing), so much deeper input would exhaust Python's recursion limit on the way.
MAX_INPUT_DEPTH = 100


class ToolInputError(ValueError):
    """The fragments of one tool input did not join into a JSON object."""


class UnusableToolInput(ToolInputError):
    """The input is a JSON object, but one the runtime cannot use as arguments or send back
    in the history: a number out of range (``1e999``, ``NaN``, a 5000-digit integer) or
    nesting deeper than ``MAX_INPUT_DEPTH``. The model is told, in the call's result."""


class ToolInputAssembler:
    """Collects the fragments of one ``tool_use`` block's input."""

    __slots__ = ("_fragments", "_initial")

    def __init__(self, initial: object = None) -> None:
        # ``content_block_start`` carries ``input: {}``; a non-empty one (non-streamed replays)
        # is used when no fragment follows.
        self._initial = initial
        self._fragments: list[str] = []

    def feed(self, fragment: str) -> None:
        self._fragments.append(fragment)

    @property
    def text(self) -> str:
        return "".join(self._fragments)

    def result(self) -> dict[str, Any]:
        """The parsed input. Raises ``ToolInputError`` when the joined text is not a JSON object."""
        text = self.text
        if not text.strip():
            return dict(self._initial) if isinstance(self._initial, dict) else {}
        try:
            value = json.loads(
                text,
                parse_constant=_no_constant,
                parse_float=_finite_float,
                parse_int=_bounded_int,
            )
        except json.JSONDecodeError as exc:
            raise ToolInputError(
                f"tool input is not valid JSON ({exc.msg} at character {exc.pos}): {text[:200]!r}"
            ) from exc
        except RecursionError as exc:
            raise UnusableToolInput(_too_deep()) from exc
        if not isinstance(value, dict):
            raise ToolInputError(f"tool input is not a JSON object: {text[:200]!r}")
        if _depth_exceeds(value, MAX_INPUT_DEPTH):
            raise UnusableToolInput(_too_deep())
        return value


def _no_constant(name: str) -> Any:
    raise UnusableToolInput(f"{name} is not a number JSON allows")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise UnusableToolInput(f"the number {_clip(text)} is out of range")
    return value


def _bounded_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_INTEGER_DIGITS:
        raise UnusableToolInput(
            f"the integer {_clip(text)} has {digits} digits (at most {MAX_INTEGER_DIGITS})"
        )
    return int(text)


def _depth_exceeds(value: Any, limit: int) -> bool:
    """Whether ``value`` nests more than ``limit`` arrays or objects deep (no recursion)."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if not isinstance(item, dict | list):
            continue
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        pending.extend((child, depth + 1) for child in children)
    return False


def _too_deep() -> str:
    return f"it nests deeper than {MAX_INPUT_DEPTH} levels"


def _clip(text: str) -> str:
    return text if len(text) <= 24 else f"{text[:20]}…"
