"""The tiny assignment's graded tests."""
from __future__ import annotations

import pytest

from autograder.grading.judge import Grader


@pytest.mark.graded("1.1")
def test_softplus_values(grader: Grader) -> None:
    case = grader.case("softplus_basic")
    obs = grader.call("softplus", case, ("x",))
    grader.expect_close(obs, "out", case.expected["out"], what="softplus(x)", hints=case.hint_list("out"))


@pytest.mark.graded("1.2")
def test_softplus_wide(grader: Grader) -> None:
    case = grader.case("softplus_wide")
    obs = grader.call("softplus", case, ("x",), grad_wrt=["x"], cotangent="cot")
    grader.expect_close(obs, "out", case.expected["out"], what="softplus(x) for |x| up to 200")
    grader.expect_close(obs, "grad.x", case.expected["grad.x"], what="gradient of sum(cot * softplus(x))")
