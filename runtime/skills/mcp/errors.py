"""Errors of MCP skills. All of them stop the run (tool failures go back to the model as
``ToolOutcome(is_error=True)`` results instead)."""

from __future__ import annotations

from runtime.errors import SkillError


class McpSkillError(SkillError):
    """An MCP server could not serve: it did not start, died, or did not answer in time.

    ``stderr`` holds the server's last stderr lines (already in the message, kept apart for
    callers that show them differently)."""

    def __init__(self, skill_name: str, message: str, *, stderr: list[str] | None = None) -> None:
        self.stderr = list(stderr or [])
        tail = "\n".join(f"  {line}" for line in self.stderr)
        super().__init__(skill_name, f"{message}\nserver stderr:\n{tail}" if tail else message)
        self.reason = message
