"""What a Job spends, shared by every Run of it (the coordinator's and each delegate's).

Steps: ``maxSteps`` counts the whole Job. Step numbers are continuous across its Runs, and
every generation happens at a step number taken here, so no Run, delegated or continued,
ever generates past the limit.
"""

from __future__ import annotations


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
