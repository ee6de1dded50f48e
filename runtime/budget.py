"""What a Job spends, shared by every Run of it (the coordinator's and each delegate's).

Steps: ``maxSteps`` counts the whole Job. Step numbers are continuous across its Runs, and
every generation happens at a step number taken here, so no Run, delegated or continued,
ever generates past the limit. Usage: see ``JobUsage``.
"""

from __future__ import annotations

from runtime.checkpoint import Usage


class StepBudget:
    """The Job's step numbers, up to ``max_steps``."""

    def __init__(self, max_steps: int, last: int = 0) -> None:
        self.max_steps = max_steps
        self.last = last

    @property
    def exhausted(self) -> bool:
        return self.last >= self.max_steps

    def take(self) -> int | None:
        """The next step number, or None when the Job has used all its steps.

        Synchronous on purpose: Runs going on concurrently (delegates called in one turn)
        cannot both take the last step."""
        if self.exhausted:
            return None
        self.last += 1
        return self.last


class JobUsage:
    """The tokens the Job used, summed over every generation of every one of its Runs.

    The rule, one for every place usage is reported: each generation's usage is added here
    exactly once. A checkpoint carries this total as it was when the checkpoint was written
    (cumulative across the whole Job, delegates included, as the reference's checkpoints
    are), so the Job's latest checkpoint holds its usage; job.json holds the total when the
    Job last stopped. A continued Job starts from what its files say it had used.
    """

    def __init__(self, start: Usage | None = None) -> None:
        self.total = start or Usage()

    def add(self, usage: Usage) -> Usage:
        self.total = self.total + usage
        return self.total
