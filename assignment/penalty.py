"""What the Lipschitz penalty of a 2.1 critic should be, computed on the trusted side.

Every penalty test draws a critic (``models.Critic``, all parameters nonzero) and
segments from ``y_i`` to ``x_i`` for the submission it grades. With one ``t_i ~ U[0, 1]``
per sample, each sample's penalty ``max(0, ||grad f(x_hat_i)|| - 1)^2`` is a random
variable whose mean and variance over ``t`` are integrated here (Simpson's rule over the
gradient norms that autograd gives at the nodes); the tests judge the submission's mean
over samples against them at many standard errors. The known mistakes (two-sided, squared
norm, no interpolation, one t per element) are integrated the same way, for hints.

The segments are built so that the gradient norm grows from well below 1 at ``y`` to
well above it at ``x`` (the quadratic term dominates, the tanh layer bends it): one t per
sample then spreads the norms over the whole range, while one t per element concentrates
``x_hat`` near the segment's middle, and a two-sided or squared-norm penalty, or one
without interpolation, lands far away."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from assignment.models import Critic

NODES = 17  # Simpson's rule on 16 intervals: its error is below 1/100 of a standard error
POINTS_PER_CHUNK = 1 << 15
# The parameters whose expected gradient is checked (the tanh layer's input weights are left
# out: 768 more numbers to integrate, and the others already need the gradient at x_hat).
CHECKED_PARAMETERS = ("curvature", "centre", "linear.weight", "out.weight", "hidden.bias")


@dataclass(frozen=True)
class PenaltyMoments:
    """Expected values of a batch-mean penalty over the t draws, and what mistakes give."""

    mean: float  # E of mean_i max(0, ||grad f(x_hat_i)|| - 1)^2, one t per sample
    variance: float  # of that batch mean (the per-sample variances summed, over B^2)
    grad_mean: dict[str, torch.Tensor]  # E of its gradient w.r.t. each checked parameter
    grad_variance: dict[str, torch.Tensor]  # and the variance of that gradient
    two_sided: float  # E of mean_i (||grad|| - 1)^2
    squared_norm: float  # E of mean_i max(0, ||grad||^2 - 1)^2
    at_x: float  # mean_i max(0, ||grad f(x_i)|| - 1)^2: no interpolation
    per_element: float  # one t per element (a Monte Carlo estimate)


def draw_critic(g: torch.Generator, features: int, tanh_norm: float, hidden: int = 16) -> Critic:
    """A critic with every parameter drawn from ``g``: a quadratic term of curvature in
    [0.5, 2], a small linear term and a tanh layer whose output weights have norm
    ``tanh_norm`` (how much it bends the gradient field)."""
    critic = Critic(features, hidden)
    with torch.no_grad():
        critic.hidden.weight.copy_(torch.randn((hidden, features), generator=g) / math.sqrt(features))
        critic.hidden.bias.copy_(0.5 * torch.randn((hidden,), generator=g))
        v = torch.randn((1, hidden), generator=g)
        critic.out.weight.copy_(v / v.norm() * tanh_norm)
        critic.out.bias.fill_(float(torch.randn((), generator=g)))
        w = torch.randn((1, features), generator=g)
        critic.linear.weight.copy_(w / w.norm() * 0.1)
        critic.curvature.fill_(0.5 + 1.5 * float(torch.rand((), generator=g)))
        critic.centre.copy_(torch.randn((features,), generator=g))
    return critic


def draw_segments(g: torch.Generator, critic: Critic, batch: int, shape: tuple[int, ...], reach: tuple[float, float] = (1.6, 2.4)) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x, y)`` of shape ``(batch, *shape)``: per row, ``y - m`` and ``x - m`` point the
    same way, where the quadratic term's gradient has norm ``a`` in [0.02, 0.3] at ``y``
    and ``b`` in ``reach`` at ``x``."""
    features = math.prod(shape)
    c = float(critic.curvature.detach())
    a = 0.02 + 0.28 * torch.rand((batch,), generator=g)
    b = reach[0] + (reach[1] - reach[0]) * torch.rand((batch,), generator=g)
    direction = torch.randn((batch, features), generator=g)
    direction /= direction.norm(dim=1, keepdim=True)
    centre = critic.centre.detach()
    x = centre + direction * (b / c)[:, None]
    y = centre + direction * (a / c)[:, None]
    return x.reshape(batch, *shape), y.reshape(batch, *shape)


@dataclass(frozen=True)
class _Pointwise:
    """At each point: the critic's gradient norm, and the gradient of the one-sided
    penalty max(0, ||grad f|| - 1)^2 with respect to each checked parameter."""

    norms: torch.Tensor  # (P,)
    penalty_grads: dict[str, torch.Tensor]  # name -> (P, size)


def pointwise(critic: Critic, points: torch.Tensor) -> _Pointwise:
    """In closed form (float64), for this critic's formula: ``grad f = W^T (v * sech^2(W x
    + b)) + w + c (x - m)``; ``harness_tests`` checks it against autograd."""
    W = critic.hidden.weight.detach().double()
    v = critic.out.weight.detach().double()[0]
    w = critic.linear.weight.detach().double()[0]
    c = float(critic.curvature.detach())
    m = critic.centre.detach().double()
    x = points.reshape(points.shape[0], -1).double()
    tanh = torch.tanh(x @ W.T + critic.hidden.bias.detach().double())
    first = 1.0 - tanh * tanh  # tanh'
    second = -2.0 * tanh * first  # tanh''
    grad = (v * first) @ W + w + c * (x - m)
    norms = grad.norm(dim=1)
    outer = (2.0 * (norms - 1.0).clamp_min(0.0) / norms.clamp_min(1e-300))[:, None] * grad  # d penalty / d grad f
    projected = outer @ W.T
    return _Pointwise(norms, {
        "curvature": (outer * (x - m)).sum(dim=1, keepdim=True),
        "centre": -c * outer,
        "linear.weight": outer,
        "out.weight": first * projected,
        "hidden.bias": v * second * projected,
    })


def gradient_norms(critic: Critic, points: torch.Tensor) -> torch.Tensor:
    """``||grad f||`` over all non-batch dimensions at each of ``points`` (P, ...)."""
    return torch.cat([pointwise(critic, chunk).norms for chunk in points.split(POINTS_PER_CHUNK)])


def _simpson(nodes: int) -> tuple[torch.Tensor, torch.Tensor]:
    t = torch.linspace(0.0, 1.0, nodes, dtype=torch.float64)
    weights = torch.ones(nodes, dtype=torch.float64)
    weights[1:-1:2], weights[2:-1:2] = 4.0, 2.0
    return t, weights / weights.sum()


def segment_moments(critic: Critic, x: torch.Tensor, y: torch.Tensor, g: torch.Generator) -> PenaltyMoments:
    """The penalty's moments over ``t`` for these segments (``g`` draws the per-element
    estimate's t)."""
    rows = x.shape[0]
    flat_x, flat_y = x.reshape(rows, -1).double(), y.reshape(rows, -1).double()
    t, weights = _simpson(NODES)
    # Per-row integrals over t, node by node: (value, value^2, two-sided, squared norm) and,
    # per parameter, (gradient, gradient^2).
    sums = torch.zeros((4, rows), dtype=torch.float64)
    grad_sums: dict[str, list[torch.Tensor]] = {}
    for node, weight in zip(t.tolist(), weights.tolist()):
        at = pointwise(critic, node * flat_x + (1.0 - node) * flat_y)
        one_sided = (at.norms - 1.0).clamp_min(0.0) ** 2
        sums += weight * torch.stack([one_sided, one_sided**2, (at.norms - 1.0) ** 2, (at.norms**2 - 1.0).clamp_min(0.0) ** 2])
        for name, value in at.penalty_grads.items():
            first, second = grad_sums.setdefault(name, [torch.zeros_like(value), torch.zeros_like(value)])
            first += weight * value
            second += weight * value**2
    first, second = sums[0], sums[1]
    spread = torch.rand(flat_x.shape, generator=g, dtype=torch.float64)
    per_element = flat_y + spread * (flat_x - flat_y)
    return PenaltyMoments(
        mean=float(first.mean()),
        variance=float((second - first**2).clamp_min(0.0).sum()) / rows**2,
        grad_mean={name: m.mean(dim=0) for name, (m, _) in grad_sums.items()},
        grad_variance={name: (s - m**2).clamp_min(0.0).sum(dim=0) / rows**2 for name, (m, s) in grad_sums.items()},
        two_sided=float(sums[2].mean()),
        squared_norm=float(sums[3].mean()),
        at_x=float(((gradient_norms(critic, flat_x) - 1.0).clamp_min(0.0) ** 2).mean()),
        per_element=float(((gradient_norms(critic, per_element) - 1.0).clamp_min(0.0) ** 2).mean()),
    )
