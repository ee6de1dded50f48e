"""Errors of `perstack log`. Each one is a usage error (exit code 2) whose message says what
was asked, what exists, and what to try."""

from __future__ import annotations

import difflib
import os
from collections.abc import Collection, Sequence

from runtime.errors import PerstackError

# An error message lists at most this many known ids; a workspace with hundreds of jobs
# would otherwise bury the one line that matters.
MAX_LISTED_IDS = 20
# An id looked for in every job lists only a few of the workspace's, the latest job's first.
MAX_LISTED_ELSEWHERE = 5


def _listing(known: Sequence[str], limit: int = MAX_LISTED_IDS) -> str:
    shown = ", ".join(known[:limit])
    more = len(known) - limit
    return shown + (f" (and {more} more)" if more > 0 else "")


class LogError(PerstackError):
    """`perstack log` cannot show what was asked for."""


class UnreadableFileError(PerstackError):
    """A file that must be shown in full (a checkpoint) cannot be read or understood."""

    def __init__(self, path: str, reason: str, message: str = "") -> None:
        super().__init__(message or f"cannot show {path}: {reason}")
        self.path = path
        self.reason = reason


class NoJobsError(LogError):
    def __init__(self, jobs_dir: str) -> None:
        missing = "" if os.path.isdir(jobs_dir) else " (there is no such folder)"
        super().__init__(
            f"no jobs in {jobs_dir}{missing}; point --workspace at the folder a run used "
            "(or PERSTACK_STORAGE_PATH at its perstack folder)"
        )
        self.jobs_dir = jobs_dir


class UnknownIdError(LogError):
    """A job, run or checkpoint id that is not in the workspace (or a prefix of several)."""

    def __init__(
        self, kind: str, given: str, known: Sequence[str], where: str, message: str = ""
    ) -> None:
        super().__init__(message or _unknown_id_message(kind, given, known, where))
        self.kind = kind
        self.given = given
        self.known = list(known)


def _unknown_id_message(kind: str, given: str, known: Sequence[str], where: str) -> str:
    if not known:
        return f"unknown {kind} {given!r}: {where} has no {kind}s"
    candidates = [k for k in known if k.startswith(given)]
    if len(candidates) > 1:
        return f"{kind} {given!r} is ambiguous in {where}; it starts {_listing(candidates)}"
    return f"unknown {kind} {given!r} in {where}; known: {_listing(known)}"


class NotInWorkspaceError(UnknownIdError):
    """A run or checkpoint asked for without --job that no job of the workspace holds, or
    a prefix of ids held in several places."""

    def __init__(
        self, kind: str, given: str, held: Sequence[tuple[str, str]], jobs_dir: str
    ) -> None:
        """``held``: (id, its job) of every run or checkpoint, the latest job's first."""
        known = [id_ for id_, _ in held]
        self.candidates = [(i, job) for i, job in held if given and i.startswith(given)]
        if len(self.candidates) > 1:
            listed = _listing([f"{i} (job {job})" for i, job in self.candidates])
            message = (
                f"{kind} {given!r} is ambiguous in {jobs_dir}; it starts {listed}; "
                "give more of the id, or name the job with --job"
            )
        elif known:
            message = (
                f"unknown {kind} {given!r}: it is in no job of {jobs_dir}; known {kind}s, "
                f"the latest job's first: {_listing(known, MAX_LISTED_ELSEWHERE)}"
            )
        else:
            message = f"unknown {kind} {given!r}: no job of {jobs_dir} has {kind}s"
        super().__init__(kind, given, known, jobs_dir, message)


class BadStepFilterError(LogError):
    def __init__(self, given: str) -> None:
        super().__init__(
            f"--step {given!r} is not a step filter; use N, >N, >=N, <N, <=N or N-M "
            "(for example 3, >3, 2-5)"
        )
        self.given = given


class BadEventTypeError(LogError):
    def __init__(self, given: str, known: Collection[str]) -> None:
        names = sorted(known)
        close = difflib.get_close_matches(given, names, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        super().__init__(
            f"--type {given!r} is not an event type{hint}; the types are {', '.join(names)}"
        )
        self.given = given


class BadFilterExpressionError(LogError):
    def __init__(self, given: str, reason: str) -> None:
        super().__init__(
            f"--filter {given!r}: {reason}; write .field OP value with OP one of "
            "== != > >= < <= (for example '.toolCalls[].toolName == \"readTextFile\"')"
        )
        self.given = given
