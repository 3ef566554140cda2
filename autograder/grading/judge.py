"""What a graded test holds: its spec, the fixtures and the runner, and helpers that
turn an Observation into pass, or a failure message a student can act on."""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Sequence

import pytest
import torch

from autograder.grading.budget import Budget
from autograder.grading.compare import Hint, check_tensor, describe_args, tolerance_ratio
from autograder.config import PartSpec, TestSpec, Tolerance
from autograder.grading.fixture_store import Case, HiddenFixturesUnavailable
from autograder.grading.fresh_cases import CaseSource
from autograder.records import Observation, ProbeRequest

class GradingFailure(AssertionError):
    """A test failed for a reason the message explains; reported without a traceback.

    ``called``: which of the student's own graded callees (``watch``) the failing test's
    probes reached, so that the message can send the student to the callee's part first."""

    def __init__(self, message: str, called: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.called = called


# Where a failure's message shows the student's own output (report.py cuts the table there).
OUTPUT_MARK = "\nOutput of your code"
OUTPUT_SHOWN = 1500  # characters of it, the last ones

HINT_MARK = "Hint: "


def without_hints(message: str) -> str:
    """``message`` without its hints (each runs from "Hint: " to the end of its line), the
    student's output kept: for a failure whose cause is elsewhere."""
    body, mark, printed = message.partition(OUTPUT_MARK)
    lines = [line.split(HINT_MARK, 1)[0].rstrip() for line in body.splitlines()]
    return "\n".join(line for line in lines if line.strip()) + mark + printed


_EXCEPTION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]{0,99}")


def exception_type(message: str) -> str:
    """The exception's class name at the start of a worker's ``Type: message`` text, or
    ``an exception`` when that start is not a plain name."""
    head = message.split(":", 1)[0].strip()
    return head if _EXCEPTION_NAME.fullmatch(head) else "an exception"


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
    cases: CaseSource  # frozen, or drawn for this submission
    runner: Any  # SubmissionRunner; typed loosely so tests can fake it
    # Calibration hook: (test number, what was compared, tolerance ratio) per comparison.
    recorder: Callable[[str, str, float], None] | None = None
    # What a submission cannot know (see FixtureStore.secret), mixed with its own digest.
    secret: str = ""
    # Correct callees (attribute -> substitute) for a caller's second chance, see plugin.
    fallback: dict[str, str] = field(default_factory=dict)
    budget: Budget | None = None  # the submission's overall time budget
    _probes: int = 0
    _outputs: list[str] = field(default_factory=list)  # what this test's probes printed
    # The student's graded callees whose use is watched (a caller's ``callee_fallback``).
    watch: tuple[str, ...] = ()
    _called: set[str] = field(default_factory=set)

    def with_fallback(self, substitutes: dict[str, str]) -> "Grader":
        """The same test again, with correct callees, from the same probe seeds."""
        return replace(self, fallback=dict(substitutes), _probes=0, _outputs=[], _called=set())

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
        return self.spec.judged_tolerance

    def case(self, name: str) -> Case:
        """The case ``name``: on Gradescope a visible one is drawn for this submission."""
        try:
            return self.cases.case(name, self.secret)
        except HiddenFixturesUnavailable:
            pytest.skip("hidden test: runs on Gradescope only")

    def fail(self, message: str) -> GradingFailure:
        """The failure of this test. A visible test shows what the student's code printed
        while it ran (print-debugging is feedback too); a non-visible one never does, since
        a print of its inputs would show them."""
        text = f"Part {self.part.number} ({', '.join(self.part.functions)}): {message}"
        printed = "\n".join(o.strip() for o in self._outputs if o.strip())
        if printed and self.reveal:
            shown = printed if len(printed) <= OUTPUT_SHOWN else "[...]\n" + printed[-OUTPUT_SHOWN:]
            text += f"{OUTPUT_MARK} (truncated):\n{shown}"
        return GradingFailure(text, tuple(sorted(self._called)))

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
        if self.watch and not self.fallback:
            params["watch"] = list(self.watch)
        timeout = self.spec.timeout
        if self.budget is not None:
            if self.budget.exhausted:
                raise self.fail(self.budget.message())
            timeout = self.budget.clamp(timeout)
        request = ProbeRequest(probe, (self.part.module,), params, inputs, seed, timeout, dict(self.fallback), visible=not self.spec.hidden)
        observation = self.runner.run(request)
        self._outputs.append(observation.output)
        called = observation.values.get("called")
        if isinstance(called, list):
            self._called.update(str(name) for name in called if str(name) in self.watch)
        if observation.status == "timeout" and self.budget is not None and self.budget.exhausted:
            raise self.fail(self.budget.message())
        if not observation.ok:
            verb = STATUS_TEXT.get(observation.status, observation.status)
            if observation.status == "missing":
                text = observation.message
            elif self.spec.hidden and observation.status in ("error", "import_error"):
                # The message of an exception is the submission's own text: in a non-visible
                # test it could carry the test's inputs out. Its type is the kind of mistake.
                where = f"{self.part.module}.py" if observation.status == "import_error" or observation.phase == "import" else call
                text = (f"{where} {verb} {exception_type(observation.message)} (the message of an exception is not shown "
                        "for a non-visible test; the visible tests of this part show it)")
            elif observation.status == "import_error" or observation.phase == "import":
                text = f"{self.part.module}.py {verb}: {observation.message}"
            else:
                text = f"{call} {verb}: {observation.message}"
            if exception_type(observation.message) == "NotImplementedError" or (not self.spec.hidden and "NotImplementedError" in observation.message):
                text += "\n(not implemented yet)"
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
