"""Statistical judging of random parts: bounds at many standard errors, so that a
correct submission fails with probability below 1e-9 per test, while the mistakes
the tests target land tens to thousands of standard errors away."""
from __future__ import annotations

import math
from typing import Any

import torch

# |z| beyond this for a normal statistic: 2*Phi(-7) = 2.6e-12 per comparison.
MEAN_BOUND = 7.0
# Sample variances are skewed (their own 4th-moment spread is estimated from the data):
# a wider bound keeps the false-failure rate far below 1e-9 even with heavy tails.
VARIANCE_BOUND = 9.0
# The coarse variance check's bound: a factor either way (see check_variance_factor).
VARIANCE_FACTOR = 3.0


def _where(grader: Any, index: int, count: int) -> str:
    return f" (distribution pair {index + 1} of {count})" if grader.reveal else ""


def check_mean(grader: Any, estimates: torch.Tensor, truth: torch.Tensor, variance: torch.Tensor, *, what: str, hint: str, label: str = "true KL") -> None:
    """Each row of ``estimates`` holds i.i.d. draws whose mean must be ``truth`` and
    whose variance is known (``variance``)."""
    estimates = estimates.double()
    repeats = estimates.shape[1]
    mean = estimates.mean(dim=1)
    z = (mean - truth.double()) / torch.sqrt(variance.double() / repeats)
    worst = int(z.abs().argmax())
    if not bool(torch.isfinite(z).all()) or float(z.abs().max()) > MEAN_BOUND:
        detail = (
            f": mean of {repeats} draws {float(mean[worst]):.5g}, {label} {float(truth[worst]):.5g}, "
            f"{float(z[worst]):+.1f} standard errors off{_where(grader, worst, len(z))}"
            if grader.reveal
            else f": the average is more than {MEAN_BOUND:g} standard errors away from the true value (hidden test)"
        )
        raise grader.fail(f"{what}: wrong mean{detail}. Hint: {hint}")


def check_variance(grader: Any, estimates: torch.Tensor, truth: torch.Tensor, variance: torch.Tensor, *, what: str, hint: str) -> None:
    """The sample variance of each row must match the theoretical one."""
    estimates = estimates.double()
    repeats = estimates.shape[1]
    centred = estimates - estimates.mean(dim=1, keepdim=True)
    sample_var = centred.pow(2).sum(dim=1) / (repeats - 1)
    spread = centred.pow(2).std(dim=1) / math.sqrt(repeats)
    z = (sample_var - variance.double()) / spread.clamp_min(1e-12)
    worst = int(z.abs().argmax())
    if not bool(torch.isfinite(z).all()) or float(z.abs().max()) > VARIANCE_BOUND:
        ratio = float(sample_var[worst] / variance[worst])
        detail = (
            f": variance of {repeats} draws {float(sample_var[worst]):.5g}, expected {float(variance[worst]):.5g} "
            f"(ratio {ratio:.3g}){_where(grader, worst, len(z))}"
            if grader.reveal
            else f": the spread does not match a correct estimator (ratio {ratio:.2g} to the expected variance; hidden test)"
        )
        raise grader.fail(f"{what}: wrong variance{detail}. Hint: {hint}")


def check_variance_factor(grader: Any, estimates: torch.Tensor, variance: torch.Tensor, *, what: str, hint: str, factor: float = VARIANCE_FACTOR) -> None:
    """A coarse check for mistakes that are off by a whole factor (``num_samples`` ignored:
    10 times the variance) on few draws: each row's sample variance within ``factor`` of the
    expected one either way. For near-Gaussian draws (averages) and 100 draws or more, a
    factor of 3 is hundreds of standard errors, far beyond any correct estimator's spread."""
    estimates = estimates.double()
    sample_var = estimates.var(dim=1)
    ratio = sample_var / variance.double().clamp_min(1e-300)
    worst = int((ratio.log().abs()).argmax()) if bool(torch.isfinite(ratio).all()) else 0
    if not bool(torch.isfinite(ratio).all()) or float(ratio.max()) > factor or float(ratio.min()) < 1.0 / factor:
        detail = (f": variance of {estimates.shape[1]} draws {float(sample_var[worst]):.5g}, expected {float(variance[worst]):.5g} "
                  f"(ratio {float(ratio[worst]):.3g}){_where(grader, worst, len(ratio))}" if grader.reveal
                  else f": the spread is {float(ratio[worst]):.2g} times a correct estimator's (hidden test)")
        raise grader.fail(f"{what}: wrong variance{detail}. Hint: {hint}")



def check_expected_value(grader: Any, samples: torch.Tensor, mean: float, variance: float, *, what: str, hints: list[tuple[float, str]]) -> None:
    """``samples`` are i.i.d. with known mean and variance (e.g. one penalty value per
    probe run); name the nearest known mistake when they are off."""
    samples = samples.double().flatten()
    n = samples.numel()
    observed = float(samples.mean())
    z = (observed - mean) / math.sqrt(variance / n)
    if not math.isfinite(z) or abs(z) > MEAN_BOUND:
        nearest = min(hints, key=lambda h: abs(h[0] - observed), default=None)
        hint = f" Hint: {nearest[1]}" if nearest is not None and abs(nearest[0] - observed) < abs(mean - observed) else ""
        detail = f"observed {observed:.4g}, expected {mean:.4g} ({z:+.1f} standard errors)" if grader.reveal else f"more than {MEAN_BOUND:g} standard errors from the expected value (hidden test)"
        raise grader.fail(f"{what}: {detail}.{hint}")


def check_expected_tensor(grader: Any, observed: torch.Tensor, mean: torch.Tensor, variance: torch.Tensor, *, what: str, hint: str) -> None:
    """One draw of a random tensor (e.g. a penalty's gradient over one batch) whose mean
    and variance are known element by element: every element within the bound. A floor on
    the standard error keeps elements that are exactly determined (variance 0) to float32
    rounding instead of to nothing."""
    observed, mean = observed.double().reshape(-1), mean.double().reshape(-1)
    if observed.shape != mean.shape:
        raise grader.fail(f"{what}: expected {mean.numel()} value(s), got {observed.numel()}. Hint: {hint}")
    error = variance.double().reshape(-1).clamp_min(0.0).sqrt().clamp_min(SE_FLOOR_ABSOLUTE + SE_FLOOR_RELATIVE * mean.abs())
    z = (observed - mean) / error
    if not bool(torch.isfinite(z).all()) or float(z.abs().max()) > MEAN_BOUND:
        worst = int(torch.nan_to_num(z.abs(), nan=math.inf).argmax())
        detail = (f": element {worst} is {float(observed[worst]):.5g}, its expected value {float(mean[worst]):.5g} "
                  f"({float(z[worst]):+.1f} standard errors)" if grader.reveal
                  else f": more than {MEAN_BOUND:g} standard errors from its expected value (hidden test)")
        raise grader.fail(f"{what}{detail}. Hint: {hint}")


SE_FLOOR_ABSOLUTE = 1e-6
SE_FLOOR_RELATIVE = 1e-4


def check_mean_sampled(grader: Any, draws: torch.Tensor, truth: torch.Tensor, *, what: str, hint: str, label: str) -> None:
    """Like ``check_mean`` with the variance estimated from the draws themselves (for a
    gradient, whose spread depends on the style); a floor keeps a spread of zero finite."""
    variance = draws.double().var(dim=1).clamp_min(VARIANCE_FLOOR)
    check_mean(grader, draws, truth, variance, what=what, hint=hint, label=label)


VARIANCE_FLOOR = 1e-6
