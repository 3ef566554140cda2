"""Judging one returned tensor against its expected value, with messages that build
up shape, then dtype, then values, and name the likely mistake."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import torch

from autograder.config import Tolerance


@dataclass(frozen=True)
class Hint:
    """An output that a known mistake would produce, and what to tell the student."""

    output: torch.Tensor
    text: str


def shape_str(shape: Sequence[int] | torch.Size) -> str:
    return "(" + ", ".join(str(int(s)) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def describe_args(inputs: dict[str, torch.Tensor], names: Sequence[str]) -> str:
    return ", ".join(f"{n}: {shape_str(inputs[n].shape)} {str(inputs[n].dtype).replace('torch.', '')}" for n in names)


def _index(flat_index: int, shape: torch.Size) -> tuple[int, ...]:
    return tuple(int(i) for i in torch.unravel_index(torch.tensor(flat_index), shape)) if len(shape) else ()


def _close(actual: torch.Tensor, expected: torch.Tensor, tol: Tolerance) -> bool:
    try:
        torch.testing.assert_close(actual, expected, rtol=tol.rtol, atol=tol.atol, check_dtype=False, equal_nan=False)
    except AssertionError:
        return False
    return True


def tolerance_ratio(actual: torch.Tensor, expected: torch.Tensor, tol: Tolerance) -> float:
    """How far ``actual`` is from passing, in units of the allowed deviation: at most 1
    passes. Calibration wants correct styles <= 0.1 and known mistakes >= 10."""
    if actual.numel() == expected.numel() and actual.dim() <= 1 and expected.dim() <= 1:
        actual, expected = actual.reshape(-1), expected.reshape(-1)
    if actual.shape != expected.shape:
        return math.inf
    a, e = actual.double(), expected.double()
    finite = torch.isfinite(a) & torch.isfinite(e)
    if not bool(finite.all()):
        return 0.0 if bool(((a == e) | finite).all()) else math.inf
    if a.numel() == 0:
        return 0.0
    return float(((a - e).abs() / (tol.atol + tol.rtol * e.abs())).max())


def _shape_hint(actual: tuple[int, ...], expected: tuple[int, ...]) -> str:
    if len(actual) == len(expected) + 1 and actual[-1] == 1 and actual[:-1] == expected:
        return " Hint: drop the trailing dimension of size 1 (reduce without keepdim=True, or squeeze it)."
    if len(expected) == 1 and len(actual) == 2 and actual[0] == expected[0]:
        return " Hint: reduce over the feature dimension so that there is one value per example."
    if len(expected) == 0 and len(actual) >= 1:
        return " Hint: the result should be a scalar: average over the batch."
    if len(actual) == 0 and len(expected) >= 1:
        return " Hint: return one value per example; do not reduce over the batch."
    return ""


def check_tensor(
    actual: torch.Tensor | None,
    info: dict[str, Any],
    expected: torch.Tensor,
    *,
    tolerance: Tolerance,
    reveal: bool,
    scalar: bool = False,
    hints: Sequence[Hint] = (),
    check_dtype: bool = False,
    gradient: bool = False,
) -> str | None:
    """None when ``actual`` matches; otherwise the message a student can act on.

    The dtype is judged only when ``check_dtype`` (one test per part does): values are
    compared whatever the float dtype, so a float64 result costs one test, not a part."""
    if actual is None or info.get("type") != "Tensor":
        got = info.get("type", "nothing")
        return f"expected a torch.Tensor, got {got}" + (f" ({info['repr']})" if reveal and "repr" in info else "") + "."
    if scalar:
        if tuple(actual.shape) in ((), (1,)):
            actual = actual.reshape(())
        expected = expected.reshape(())
    if actual.shape != expected.shape:
        allowed = "() or (1,)" if scalar else shape_str(expected.shape)
        return f"shape: expected {allowed}, got {shape_str(actual.shape)}." + _shape_hint(tuple(actual.shape), tuple(expected.shape))
    if check_dtype and actual.dtype != expected.dtype:
        return f"dtype: expected {_dtype(expected)}, got {_dtype(actual)}. Hint: keep the computation in the inputs' dtype."
    if not actual.is_floating_point():
        return f"dtype: expected a floating-point tensor, got {_dtype(actual)}. Hint: do not round or compare; keep float arithmetic."
    bad = ~torch.isfinite(actual) & torch.isfinite(expected)
    if bool(bad.any()):
        first = _index(int(bad.flatten().nonzero()[0]), actual.shape)
        kinds = sorted({"NaN" if bool(torch.isnan(v)) else "Inf" for v in actual[bad].flatten()[:100]})
        return (
            f"values: got {'/'.join(kinds)} in {int(bad.sum())} of {actual.numel()} element(s), first at index {first}."
            " Hint: a log of 0 or of a negative number, a division by zero, or an overflowing exp (use the max trick / clamp)."
            + _hint_text(actual, expected, tolerance, hints, gradient)
        )
    if _close(actual, expected, tolerance):
        return None
    diff = (actual.double() - expected.double()).abs()
    allowed = tolerance.atol + tolerance.rtol * expected.double().abs()
    over = diff > allowed
    worst = int((diff - allowed).flatten().argmax())
    index = _index(worst, actual.shape)
    message = f"values: {int(over.sum())} of {actual.numel()} element(s) differ beyond tolerance (rtol={tolerance.rtol:g}, atol={tolerance.atol:g})"
    if reveal:
        message += (
            f"; worst at index {index}: expected {float(expected.flatten()[worst]):.6g}, "
            f"got {float(actual.flatten()[worst]):.6g} (difference {float(diff.flatten()[worst]):.3g})."
        )
    else:
        message += " (hidden test: expected values are not shown)."
    return message + _hint_text(actual, expected, tolerance, hints, gradient)


def _dtype(tensor: torch.Tensor) -> str:
    return str(tensor.dtype).replace("torch.", "")


ZERO_GRADIENT_HINT = (
    " Hint: no gradient arrives here (it is zero everywhere): something on the way is detached or not"
    " differentiable (.detach(), .item(), .data, torch.no_grad(), numpy, or a sample drawn with .sample() instead of .rsample())."
)


def _hint_text(actual: torch.Tensor, expected: torch.Tensor, tolerance: Tolerance, hints: Sequence[Hint], gradient: bool = False) -> str:
    a, e = actual.double(), expected.double()
    for hint in hints:
        if hint.output.shape == actual.shape and _close(a, hint.output.double(), tolerance):
            return f" Hint: {hint.text}"
    if gradient and bool((a == 0).all()) and bool((e != 0).any()):
        return ZERO_GRADIENT_HINT
    if bool((e.abs() > 0).any()) and _close(a, -e, tolerance):
        return " Hint: your value has the opposite sign."
    if expected.numel() > 1 and bool((e != 0).all()):
        ratio = a / e
        mean = float(ratio.mean())
        # Only a clear, shared factor is worth naming: not 1 (that is an offset or noise) nor 0.
        if bool(torch.isfinite(ratio).all()) and abs(mean) > 1e-2 and abs(mean - 1.0) > 1e-2 and float(ratio.std()) < 1e-3 * abs(mean):
            return f" Hint: your values are {mean:.4g} times the expected ones (a sum where a mean belongs, or the reverse, or a missing factor?)."
    if expected.numel() > 1:
        offset = a - e
        if float(offset.std()) < 1e-4 * (1 + float(offset.abs().mean())) and float(offset.abs().mean()) > tolerance.atol:
            return " Hint: your values differ from the expected ones by the same constant everywhere (a missing or extra constant term?)."
    return ""
