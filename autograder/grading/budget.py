"""One wall-clock budget for a whole grading of one submission.

Gradescope stops an autograder after its own limit (10 minutes by default) and then
records nothing at all. A submission that is merely slow in every probe (each just
under its timeout, plus a retry) could add up past that. So each submission's grading
has one budget (grading.yaml ``sandbox.budget_seconds``, below Gradescope's limit): a
probe gets at most what is left of it, and once it is used up the remaining tests fail
at once with a message naming it, so that results.json is written in time."""
from __future__ import annotations

import time
from dataclasses import dataclass

KEY = "sandbox.budget_seconds"


@dataclass(frozen=True)
class Budget:
    seconds: float
    started: float  # time.monotonic() when the submission's grading began

    @property
    def deadline(self) -> float:
        return self.started + self.seconds

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    @property
    def exhausted(self) -> bool:
        return self.remaining() <= 0

    def clamp(self, timeout: float) -> float:
        """A probe's timeout, cut to what is left of the budget."""
        return max(0.0, min(timeout, self.remaining()))

    def message(self) -> str:
        return (
            f"not graded: this grading used up its overall time budget of {self.seconds:g} s "
            f"({KEY} in grading.yaml) before this test ran; earlier tests took too long "
            "(slow or hanging code), so the remaining tests fail without running"
        )
