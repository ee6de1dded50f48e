"""Errors of the flows: what went wrong around an execution, not inside it.

``InfrastructureError`` is the one family worth retrying (no engine, a container that
could not start); a run that completed or stopped on its own is never retried, it ends
as ``ExecutionFailedError`` when it did not complete.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flows.execution import ExecutionResult


class FlowsError(Exception):
    """Base of the flows' own errors."""


class InfrastructureError(FlowsError):
    """The execution could not be run at all (engine unreachable, container not started)."""


class ExecutionFailedError(FlowsError):
    """The execution ran and ended other than completed; ``result`` says how."""

    def __init__(self, result: ExecutionResult) -> None:
        super().__init__(
            f"{result.expert} for {result.user} ended {result.outcome}: {result.reason}"
        )
        self.result = result

    def __reduce__(self) -> tuple[type[ExecutionFailedError], tuple[ExecutionResult]]:
        return (type(self), (self.result,))


class BatchInputError(FlowsError, ValueError):
    """A batch file or parameter that cannot be read, with where and what to change."""
