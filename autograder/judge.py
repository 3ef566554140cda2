"""What a graded test holds: its spec, the fixtures and the runner, and helpers that
turn an Observation into pass, or a failure message a student can act on."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Sequence

import pytest
import torch

from autograder.budget import Budget
from autograder.compare import Hint, check_tensor, describe_args, tolerance_ratio
from autograder.config import PartSpec, TestSpec, Tolerance
from autograder.fixture_store import Case, FixtureStore, HiddenFixturesUnavailable
from autograder.records import Observation, ProbeRequest

DEFAULT_TOLERANCE = Tolerance(rtol=1e-5, atol=1e-6, why="default")


class GradingFailure(AssertionError):
    """A test failed for a reason the message explains; reported without a traceback."""


STATUS_TEXT = {
    "error": "raised",
    "import_error": "could not be imported",
    "missing": "is missing",
    "timeout": "timed out",
    "crashed": "crashed",
    "protocol": "returned something that could not be read",
}


@dataclass
class Grader:
    """Per-test helper; the only way tests reach the submission is ``probe``."""

    spec: TestSpec
    part: PartSpec
    store: FixtureStore
    runner: Any  # SubmissionRunner; typed loosely so tests can fake it
    # Calibration hook: (test number, what was compared, tolerance ratio) per comparison.
    recorder: Callable[[str, str, float], None] | None = None
    # What a submission cannot know (see FixtureStore.secret), mixed with its own digest.
    secret: str = ""
    # Correct callees (attribute -> substitute) for a caller's second chance, see plugin.
    fallback: dict[str, str] = field(default_factory=dict)
    budget: Budget | None = None  # the submission's overall time budget
    _probes: int = 0

    def with_fallback(self, substitutes: dict[str, str]) -> "Grader":
        """The same test again, with correct callees, from the same probe seeds."""
        return replace(self, fallback=dict(substitutes), _probes=0)

    def rng(self, label: str) -> torch.Generator:
        """A generator for inputs drawn per submission: the same submission always gets the
        same draw (a regrade repeats its grade), but no submission can predict it."""
        digest = hashlib.sha256(f"{self.secret}/{self.spec.number}/{label}".encode()).digest()
        return torch.Generator().manual_seed(int.from_bytes(digest[:8], "big") >> 1)

    @property
    def reveal(self) -> bool:
        return not self.spec.hidden

    @property
    def tolerance(self) -> Tolerance:
        return self.spec.tolerance or DEFAULT_TOLERANCE

    def case(self, name: str) -> Case:
        try:
            return self.store.case(name)
        except HiddenFixturesUnavailable:
            pytest.skip("hidden test: runs on Gradescope only")

    def fail(self, message: str) -> GradingFailure:
        return GradingFailure(f"Part {self.part.number} ({', '.join(self.part.functions)}): {message}")

    def probe(
        self,
        probe: str,
        params: dict[str, Any],
        inputs: dict[str, torch.Tensor],
        *,
        call: str,
    ) -> Observation:
        """Run one probe in a fresh worker; any failure of the worker fails the test.

        ``call`` says in words what was called, for the message."""
        seed = int.from_bytes(hashlib.sha256(f"{self.spec.number}/{self._probes}".encode()).digest()[:4], "big")
        self._probes += 1
        params = {"module": self.part.module, **params}
        timeout = self.spec.timeout
        if self.budget is not None:
            if self.budget.exhausted:
                raise self.fail(self.budget.message())
            timeout = self.budget.clamp(timeout)
        request = ProbeRequest(probe, (self.part.module,), params, inputs, seed, timeout, dict(self.fallback), visible=not self.spec.hidden)
        observation = self.runner.run(request)
        if observation.status == "timeout" and self.budget is not None and self.budget.exhausted:
            raise self.fail(self.budget.message())
        if not observation.ok:
            verb = STATUS_TEXT.get(observation.status, observation.status)
            if observation.status == "missing":
                text = observation.message
            elif observation.status == "import_error" or observation.phase == "import":
                text = f"{self.part.module}.py {verb}: {observation.message}"
            else:
                text = f"{call} {verb}: {observation.message}"
            if "NotImplementedError" in observation.message:
                text += "\n(not implemented yet)"
            if observation.output.strip():
                text += f"\nOutput of your code (truncated):\n{observation.output.strip()[-1500:]}"
            raise self.fail(text)
        return observation

    def call(self, function: str, case: Case, args: Sequence[str], **params: Any) -> Observation:
        what = f"{function}({describe_args(case.inputs, args)}{''.join(f', {k}={v!r}' for k, v in params.get('kwargs', {}).items())})"
        return self.probe("call", {"function": function, "args": list(args), **params}, case.inputs, call=what)

    def expect_close(
        self,
        observation: Observation,
        key: str,
        expected: torch.Tensor,
        *,
        what: str,
        hints: Sequence[Hint] = (),
        scalar: bool = False,
        tolerance: Tolerance | None = None,
        check_dtype: bool = False,
    ) -> None:
        """Compare one returned tensor. A gradient (``grad.*``) that never arrived counts
        as zero, so its message says that nothing reaches that input."""
        actual = observation.tensors.get(key)
        info = observation.values.get(key, {"type": "nothing"})
        gradient = key.startswith("grad.")
        if actual is None and gradient:
            actual, info = torch.zeros_like(expected), {"type": "Tensor"}
        self._record(key, actual, expected, tolerance)
        message = check_tensor(
            actual,
            info if isinstance(info, dict) else {"type": "nothing"},
            expected,
            tolerance=tolerance or self.tolerance,
            reveal=self.reveal,
            scalar=scalar,
            hints=hints,
            check_dtype=check_dtype,
            gradient=gradient,
        )
        if message is not None:
            raise self.fail(f"{what}\n  {message}")

    def _record(self, key: str, actual: torch.Tensor | None, expected: torch.Tensor, tolerance: Tolerance | None) -> None:
        if self.recorder is not None and actual is not None:
            self.recorder(self.spec.number, key, tolerance_ratio(actual, expected, tolerance or self.tolerance))

    def expect(self, condition: bool, message: str) -> None:
        if not condition:
            raise self.fail(message)

    def info(self, observation: Observation, key: str) -> dict[str, Any]:
        value = observation.values.get(key)
        return value if isinstance(value, dict) else {"type": "nothing"}
