"""The runtime's errors. Errors the model should see are ``ToolOutcome(is_error=True)``
results, not exceptions; everything here stops something."""

from __future__ import annotations


class PerstackError(Exception):
    """Base of every error the runtime raises on purpose."""


class ConfigError(PerstackError):
    """perstack.toml (or a flag, or an env file) is wrong. The message names the file, the
    key path and the fix."""


class SkillError(PerstackError):
    """A skill cannot serve: it did not start, died, or timed out."""

    def __init__(self, skill_name: str, message: str) -> None:
        super().__init__(f"skill {skill_name!r}: {message}")
        self.skill_name = skill_name


class WorkspaceError(PerstackError):
    """A path the runtime was asked to touch is outside the workspace or otherwise refused."""


class StorageError(PerstackError):
    """A job, checkpoint or event file could not be read or written."""


class RunStopped(PerstackError):
    """The run was stopped from outside (SIGTERM/SIGINT)."""
