"""Tool input assembled from the ``input_json_delta`` fragments of a streamed ``tool_use`` block.

The Messages API splits a tool's JSON input anywhere, inside a key, a string, a number or an
escape sequence. Fragments are only meaningful together, so they are kept verbatim and parsed
once, when the block stops: the result is exactly the object the model wrote. No delta, or only
empty ones, means the model gave no arguments: ``{}``.
"""

from __future__ import annotations

import json
from typing import Any


class ToolInputError(ValueError):
    """The fragments of one tool input did not join into a JSON object."""


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
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ToolInputError(
                f"tool input is not valid JSON ({exc.msg} at character {exc.pos}): {text[:200]!r}"
            ) from exc
        if not isinstance(value, dict):
            raise ToolInputError(f"tool input is not a JSON object: {text[:200]!r}")
        return value
