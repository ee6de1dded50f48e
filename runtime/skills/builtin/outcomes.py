"""How the built-in tools report back: JSON text, as the reference's base skill writes it.

A tool returns a JSON-ready dict on success and raises ``ToolFailure`` for anything the
model got wrong or the file system refused; the skill turns both into a ``ToolOutcome``.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from runtime.skills.skill import ToolOutcome


class ToolFailure(Exception):
    """A tool call that cannot be done as asked. The message tells the model what to change."""

    def __init__(self, message: str, *, kind: str = "Error", **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.details = details


def to_json(value: Any) -> str:
    """Compact JSON like the reference's ``JSON.stringify`` (no spaces, non-ASCII kept)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def success(value: dict[str, Any]) -> ToolOutcome:
    return ToolOutcome.text(to_json(value))


def failure(error: ToolFailure) -> ToolOutcome:
    body: dict[str, Any] = {"error": error.kind, "message": error.message, **error.details}
    return ToolOutcome.text(to_json(body), is_error=True)


def invalid_arguments(tool_name: str, error: ValidationError) -> ToolFailure:
    """One line per bad field: where, what, and the value the model sent."""
    problems = []
    for item in error.errors(include_url=False):
        where = ".".join(str(part) for part in item["loc"]) or "(arguments)"
        if item["type"] == "missing":
            problems.append(f"'{where}' is required")
        else:
            problems.append(f"'{where}': {item['msg']} (got {item['input']!r:.80})")
    message = f"Invalid arguments for {tool_name}: " + "; ".join(problems)
    return ToolFailure(message, kind="InvalidArguments")
