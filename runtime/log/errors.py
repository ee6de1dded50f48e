"""Errors of `perstack log`. Each one is a usage error (exit code 2) whose message says what
was asked, what exists, and what to try."""

from __future__ import annotations

from collections.abc import Sequence

from runtime.errors import PerstackError

# An error message lists at most this many known ids; a workspace with hundreds of jobs
# would otherwise bury the one line that matters.
MAX_LISTED_IDS = 20


def _listing(known: Sequence[str]) -> str:
    shown = ", ".join(known[:MAX_LISTED_IDS])
    more = len(known) - MAX_LISTED_IDS
    return shown + (f" (and {more} more)" if more > 0 else "")


class LogError(PerstackError):
    """`perstack log` cannot show what was asked for."""


class UnreadableFileError(PerstackError):
    """A file that must be shown in full (a checkpoint) cannot be read or understood."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"cannot show {path}: {reason}")
        self.path = path


class NoJobsError(LogError):
    def __init__(self, jobs_dir: str) -> None:
        super().__init__(
            f"no jobs in {jobs_dir}; point --workspace at the folder a run used "
            "(or PERSTACK_STORAGE_PATH at its perstack folder)"
        )
        self.jobs_dir = jobs_dir


class UnknownIdError(LogError):
    """A job, run or checkpoint id that is not in the workspace (or a prefix of several)."""

    def __init__(self, kind: str, given: str, known: Sequence[str], where: str) -> None:
        if not known:
            message = f"unknown {kind} {given!r}: {where} has no {kind}s"
        else:
            candidates = [k for k in known if k.startswith(given)]
            if len(candidates) > 1:
                message = (
                    f"{kind} {given!r} is ambiguous in {where}; it starts {_listing(candidates)}"
                )
            else:
                message = f"unknown {kind} {given!r} in {where}; known: {_listing(known)}"
        super().__init__(message)
        self.kind = kind
        self.given = given
        self.known = list(known)


class BadStepFilterError(LogError):
    def __init__(self, given: str) -> None:
        super().__init__(
            f"--step {given!r} is not a step filter; use N, >N, >=N, <N, <=N or N-M "
            "(for example 3, >3, 2-5)"
        )
        self.given = given


class BadFilterExpressionError(LogError):
    def __init__(self, given: str, reason: str) -> None:
        super().__init__(
            f"--filter {given!r}: {reason}; write .field OP value with OP one of "
            "== != > >= < <= (for example '.toolCalls[].toolName == \"readTextFile\"')"
        )
        self.given = given
