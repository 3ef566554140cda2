"""check_tensor: None for a match; otherwise one message, in the order shape -> dtype ->
values, with the hint a student can act on, and no expected value in a hidden test."""
from __future__ import annotations

import re

import pytest
import torch

from autograder.grading.compare import Hint, check_tensor, describe_args, shape_str
from autograder.config import Tolerance

TOL = Tolerance(rtol=1e-5, atol=1e-4, why="test")
INFO = {"type": "Tensor"}


def check(actual, expected, *, reveal=True, scalar=False, hints=(), info=INFO, tolerance=TOL, check_dtype=True, gradient=False):
    return check_tensor(actual, info, expected, tolerance=tolerance, reveal=reveal, scalar=scalar, hints=hints,
                        check_dtype=check_dtype, gradient=gradient)


@pytest.fixture
def expected() -> torch.Tensor:
    g = torch.Generator().manual_seed(3)
    return torch.rand(6, generator=g) * 3 + 1  # in [1, 4): no zeros, one sign


# ------------------------------------------------------------------ matches

def test_exact_match_is_none(expected: torch.Tensor) -> None:
    assert check(expected.clone(), expected) is None


def test_within_tolerance_is_none(expected: torch.Tensor) -> None:
    assert check(expected + 5e-5, expected) is None
    assert check(expected * (1 + 1e-6), expected) is None


@pytest.mark.parametrize("shape", [(), (1,)])
def test_scalar_accepts_0d_and_1_element(shape: tuple[int, ...]) -> None:
    exp = torch.tensor(0.25)
    assert check(torch.full(shape, 0.25), exp, scalar=True) is None
    assert check(torch.full(shape, 0.25), exp.reshape(1), scalar=True) is None


def test_scalar_rejects_other_shapes() -> None:
    message = check(torch.full((3,), 0.25), torch.tensor(0.25), scalar=True)
    assert message is not None and message.startswith("shape: expected () or (1,), got (3,).")
    assert "scalar" in message  # hint: average over the batch


def test_without_scalar_flag_shape_1_is_not_shape_0d() -> None:
    message = check(torch.tensor([0.25]), torch.tensor(0.25))
    assert message is not None and message.startswith("shape:")


# ------------------------------------------------------------------ shape, then dtype, then values

def test_keepdim_shape_gives_the_keepdim_hint(expected: torch.Tensor) -> None:
    message = check(expected.unsqueeze(1), expected)
    assert message is not None
    assert message.startswith("shape: expected (6,), got (6, 1).")
    assert "keepdim" in message


def test_shape_comes_before_dtype_and_values(expected: torch.Tensor) -> None:
    actual = torch.full((6, 1), float("nan"), dtype=torch.float64)
    message = check(actual, expected)
    assert message is not None and message.startswith("shape:")
    assert "dtype" not in message and "NaN" not in message and "values" not in message


def test_unreduced_features_hint(expected: torch.Tensor) -> None:
    message = check(torch.zeros(6, 5), expected)
    assert message is not None and message.startswith("shape:") and "one value per example" in message


def test_reduced_over_batch_hint(expected: torch.Tensor) -> None:
    message = check(torch.tensor(1.0), expected)
    assert message is not None and message.startswith("shape: expected (6,), got ().") and "do not reduce over the batch" in message


def test_float64_vs_float32_names_both_dtypes(expected: torch.Tensor) -> None:
    message = check(expected.double(), expected)
    assert message is not None and message.startswith("dtype:")
    assert "float32" in message and "float64" in message
    assert message.index("float32") < message.index("float64")  # expected first, then got


def test_dtype_comes_before_values(expected: torch.Tensor) -> None:
    actual = (expected * 7).double()
    actual[0] = float("nan")
    message = check(actual, expected)
    assert message is not None and message.startswith("dtype:") and "NaN" not in message and "values" not in message


# ------------------------------------------------------------------ values

def test_nan_reports_count_and_first_index() -> None:
    expected = torch.arange(12, dtype=torch.float32).reshape(3, 4) + 1
    actual = expected.clone()
    actual[1, 2] = float("nan")
    actual[2, 0] = float("nan")
    message = check(actual, expected)
    assert message is not None and message.startswith("values:")
    assert "NaN" in message and "Inf" not in message
    assert "in 2 of 12 element(s)" in message
    assert "first at index (1, 2)" in message


def test_inf_is_named() -> None:
    expected = torch.ones(4)
    actual = expected.clone()
    actual[3] = float("-inf")
    message = check(actual, expected)
    assert message is not None and "Inf" in message and "1 of 4" in message and "index (3,)" in message


def test_nan_is_reported_in_hidden_tests_too(expected: torch.Tensor) -> None:
    actual = expected.clone()
    actual[4] = float("nan")
    message = check(actual, expected, reveal=False)
    assert message is not None and "NaN" in message and "1 of 6" in message


def test_value_mismatch_names_worst_index_and_both_values() -> None:
    expected = torch.tensor([[1.5, 2.5, 3.5], [4.5, 5.5, 6.5]])
    actual = expected.clone()
    actual[0, 1] = 2.75
    actual[1, 2] = 9.25  # the worst
    message = check(actual, expected, reveal=True)
    assert message is not None and message.startswith("values: 2 of 6 element(s) differ beyond tolerance")
    assert "worst at index (1, 2)" in message
    assert "expected 6.5" in message and "got 9.25" in message
    assert "rtol=1e-05" in message and "atol=0.0001" in message


def test_hidden_mismatch_contains_no_expected_value() -> None:
    expected = torch.tensor([3.718281, 6.283185, 1.414213, 2.302585, 9.869604, 0.577215])
    actual = expected.clone()
    actual[2] = 5.123456
    message = check(actual, expected, reveal=False)
    assert message is not None and message.startswith("values:")
    assert "hidden" in message and "expected values are not shown" in message
    for value in expected.tolist():
        for digits in (f"{value:.6g}", f"{value:.4g}", f"{value:.3g}", f"{value:.3f}", f"{value:.2f}"):
            assert digits not in message, f"expected value {value} leaks as {digits!r}: {message}"
    # And neither does the difference (from which the expected value would follow).
    assert f"{abs(5.123456 - 1.414213):.3g}" not in message
    assert "index" not in message


def test_hidden_hints_do_not_reveal_expected_values(expected: torch.Tensor) -> None:
    for actual in (-expected, expected + 0.9189385, expected * 0.5):
        message = check(actual, expected, reveal=False)
        assert message is not None and "Hint:" in message
        for value in expected.tolist():
            assert f"{value:.4g}" not in message and f"{value:.3f}" not in message


def test_non_tensor_result() -> None:
    message = check(None, torch.ones(2), info={"type": "tuple", "repr": "(1, 2)"})
    assert message == "expected a torch.Tensor, got tuple ((1, 2))."
    hidden = check(None, torch.ones(2), info={"type": "tuple", "repr": "(1, 2)"}, reveal=False)
    assert hidden == "expected a torch.Tensor, got tuple."
    assert check(None, torch.ones(2), info={}) == "expected a torch.Tensor, got nothing."


# ------------------------------------------------------------------ hints

def test_opposite_sign_hint(expected: torch.Tensor) -> None:
    message = check(-expected, expected)
    assert message is not None and "opposite sign" in message


def test_constant_ratio_hint(expected: torch.Tensor) -> None:
    message = check(expected * 2.5, expected)
    assert message is not None and "2.5 times the expected" in message
    assert "opposite sign" not in message


def test_constant_offset_hint(expected: torch.Tensor) -> None:
    message = check(expected + 0.9189385, expected)
    assert message is not None and "same constant" in message
    assert "times the expected" not in message


def test_no_hint_for_an_unstructured_error(expected: torch.Tensor) -> None:
    noise = torch.tensor([0.3, -0.7, 1.1, -0.2, 0.9, -1.3])
    message = check(expected + noise, expected)
    assert message is not None and "Hint" not in message


def test_registered_hint_is_preferred(expected: torch.Tensor) -> None:
    hints = [
        Hint(expected + 100.0, "a hint that does not match"),
        Hint(expected * 2.0, "you summed where a mean belongs."),
    ]
    message = check(expected * 2.0, expected, hints=hints)
    assert message is not None
    assert message.endswith("Hint: you summed where a mean belongs.")
    assert "times the expected" not in message and "does not match" not in message


def test_registered_hint_with_another_shape_is_ignored(expected: torch.Tensor) -> None:
    message = check(-expected, expected, hints=[Hint(-expected.unsqueeze(0), "wrong shape")])
    assert message is not None and "wrong shape" not in message and "opposite sign" in message


def test_registered_hint_matches_within_tolerance_and_scalar(expected: torch.Tensor) -> None:
    hints = [Hint(torch.tensor(0.25), "your penalty is two-sided.")]
    message = check(torch.tensor([0.25 + 1e-6]), torch.tensor(0.0), scalar=True, hints=hints)
    assert message is not None and message.endswith("Hint: your penalty is two-sided.")


# ------------------------------------------------------------------ helpers

def test_shape_str_and_describe_args() -> None:
    assert shape_str(()) == "()"
    assert shape_str((4,)) == "(4,)"
    assert shape_str(torch.Size([2, 3])) == "(2, 3)"
    text = describe_args({"mu": torch.zeros(2, 3), "n": torch.zeros(1, dtype=torch.int64)}, ["mu", "n"])
    assert text == "mu: (2, 3) float32, n: (1,) int64"


def test_values_are_judged_whatever_the_float_dtype_unless_asked(expected: torch.Tensor) -> None:
    """The dtype belongs to one test of a part: elsewhere float64 values are compared as values."""
    assert check(expected.double(), expected, check_dtype=False) is None
    message = check((expected * 3).double(), expected, check_dtype=False)
    assert message is not None and message.startswith("values:")
    integer = check(expected.round().long(), expected, check_dtype=False)
    assert integer is not None and integer.startswith("dtype:") and "floating-point" in integer


def test_ratio_hint_only_for_a_meaningful_factor(expected: torch.Tensor) -> None:
    """Neither "1 times" (an offset or noise) nor "0 times" (nothing came through) is a factor."""
    near = expected * (1 + 5e-4)
    for actual in (near, torch.zeros_like(expected)):
        message = check(actual, expected)
        assert message is not None and "times the expected" not in message, message
    assert "3 times the expected" in (check(expected * 3, expected) or "")


def test_zero_gradient_gets_its_own_hint(expected: torch.Tensor) -> None:
    message = check(torch.zeros_like(expected), expected, gradient=True)
    assert message is not None and "no gradient arrives here" in message and "detach" in message
    assert "no gradient" not in (check(torch.zeros_like(expected), expected) or "")


def test_message_is_a_single_line_of_plain_text(expected: torch.Tensor) -> None:
    for actual in (expected.unsqueeze(1), expected.double(), expected * 3, -expected):
        message = check(actual, expected)
        assert message is not None and "\n" not in message and not re.search(r"tensor\(", message)
