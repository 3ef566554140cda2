"""Graded tests for Question 2 (WGAN-LP objective and Lipschitz penalty).

The penalty is judged on critics whose expected penalty is known in closed form: a
linear critic (gradient ``w`` everywhere) and a quadratic bowl whose gradient norm grows
linearly along each segment and crosses 1. Both are drawn anew for every submission from
a seed it cannot know, and are the same class as every other critic here."""
from __future__ import annotations

import math

import pytest
import torch

from autograder.compare import Hint, shape_str
from autograder.judge import Grader
from autograder.stats import check_expected_value
from assignment.models import Critic


def _state(critic: Critic) -> dict[str, torch.Tensor]:
    return {f"critic.{k}": v.detach().clone() for k, v in critic.state_dict().items()}


def _linear_critic(g: torch.Generator, features: int, norm: float) -> Critic:
    """``f(x) = w . x + const`` (the tanh layer has zero input weights)."""
    critic = Critic(features)
    with torch.no_grad():
        for param in critic.parameters():
            param.copy_(torch.randn(param.shape, generator=g))
        critic.hidden.weight.zero_()
        critic.curvature.zero_()
        w = torch.randn((1, features), generator=g)
        critic.linear.weight.copy_(w / w.norm() * norm)
    return critic


def _probe(grader: Grader, function: str, inputs: dict[str, torch.Tensor], args: tuple[str, str], label: str, **params: object):
    rows = inputs[args[0]].shape[0] * int(params.get("repeat_rows", 1))  # type: ignore[call-overload]
    shapes = ", ".join(f"{a}: {shape_str((rows, *inputs[a].shape[1:]))}" for a in args)
    what = f"{function}({shapes}, critic={label})"
    return grader.probe("critic", {"function": function, "args": list(args), **params}, inputs, call=what), what


@pytest.mark.graded("2.1.1")
def test_vf_wasserstein_distance(grader: Grader) -> None:
    for index, name in enumerate(("vf_flat", "vf_images")):
        case = grader.case(name)
        obs, what = _probe(grader, "vf_wasserstein_distance", case.inputs, ("p", "q"), "a small random network", grad_wrt=["p", "q"])
        grader.expect_close(obs, "out", case.expected["out"], what=what, scalar=True, hints=case.hint_list("out"), check_dtype=index == 0)
        for arg, role in (("p", "real samples x"), ("q", "generated samples y: the generator trains through them")):
            grader.expect_close(obs, f"grad.{arg}", case.expected[f"grad.{arg}"],
                                what=f"{what}: gradient with respect to {arg} ({role}); do not detach the inputs")


def _linear_penalty(grader: Grader, label: str, norm: float, batch: int, features: int, **params: object):
    g = grader.rng(label)
    critic = _linear_critic(g, features, norm)
    inputs = {"x": torch.randn((batch, features), generator=g) + 1.0, "y": torch.randn((batch, features), generator=g), **_state(critic)}
    obs, what = _probe(grader, "lp_reg", inputs, ("x", "y"), f"linear, gradient norm {norm:.3g} everywhere", **params)
    return critic, obs, what


@pytest.mark.graded("2.1.2")
def test_lp_reg_linear_critic(grader: Grader) -> None:
    for label, low, high in (("steep", 1.5, 3.0), ("flat", 0.2, 0.8)):
        norm = low + (high - low) * float(torch.rand((), generator=grader.rng(f"norm-{label}")))
        _, obs, what = _linear_penalty(grader, label, norm, 64, 5)
        expected = torch.tensor(max(0.0, norm - 1.0) ** 2)
        hints = [
            Hint(torch.tensor((norm - 1.0) ** 2), "your penalty is two-sided; WGAN-LP penalises only gradient norms above 1: max(0, ||grad|| - 1)^2."),
            Hint(torch.tensor(max(0.0, norm**2 - 1.0) ** 2), "you used the squared gradient norm; take the L2 norm itself."),
            Hint(torch.tensor(64 * max(0.0, norm - 1.0) ** 2), "you summed over the batch; the penalty is a mean over samples."),
        ]
        grader.expect_close(obs, "out", expected, what=f"{what}: expected (max(0, ||w|| - 1))^2 for every t", scalar=True,
                            hints=[h for h in hints if not torch.allclose(h.output, expected)])


@pytest.mark.graded("2.1.3")
def test_lp_reg_differentiable(grader: Grader) -> None:
    norm = 1.3 + 1.2 * float(torch.rand((), generator=grader.rng("norm")))
    critic, obs, what = _linear_penalty(grader, "grad", norm, 32, 7, param_grads=True)
    grader.expect_close(obs, "out", torch.tensor((norm - 1.0) ** 2), what=what, scalar=True)
    info = grader.info(obs, "out")
    grader.expect(
        bool(info.get("requires_grad")) and obs.values.get("backward") == "ok",
        f"{what}: the penalty does not depend on the critic's parameters in the autograd graph, so it cannot train the critic. "
        "Hint: compute the gradient with torch.autograd.grad(..., create_graph=True) and do not detach it.",
    )
    # d/dtheta (||grad_x f|| - 1)^2 at W = 0, exactly: through w, and through W (each input
    # weight of the tanh layer moves the gradient by v_j * sech^2(b_j)).
    w = critic.linear.weight.detach().double()
    factor = 2.0 * (norm - 1.0) / norm
    slope = critic.out.weight.detach().double()[0] * (1.0 - torch.tanh(critic.hidden.bias.detach().double()) ** 2)
    expected = {
        "linear.weight": factor * w,
        "hidden.weight": factor * slope[:, None] * w,
        "hidden.bias": torch.zeros_like(critic.hidden.bias, dtype=torch.float64),
        "out.weight": torch.zeros_like(critic.out.weight, dtype=torch.float64),
        "centre": torch.zeros_like(critic.centre, dtype=torch.float64),
    }
    for name, value in expected.items():
        grader.expect_close(obs, f"grad.{name}", value.float(), what=f"{what}: gradient of the penalty with respect to the critic's {name}")


def _segment_moments(start: torch.Tensor, end: torch.Tensor, power: int) -> torch.Tensor:
    """E_t[max(0, g(t) - 1)^power] for g linear from ``start`` (t=0) to ``end`` (t=1)."""
    s0, s1 = start - 1.0, end - 1.0
    slope = s1 - s0
    antiderivative = lambda s: s.clamp_min(0.0) ** (power + 1) / (power + 1)  # noqa: E731
    return torch.where(slope.abs() > 1e-12, (antiderivative(s1) - antiderivative(s0)) / slope.where(slope.abs() > 1e-12, torch.ones_like(slope)), s0.clamp_min(0.0) ** power)


def _two_sided_mean(start: torch.Tensor, end: torch.Tensor) -> float:
    """E over rows and t of (g(t) - 1)^2, g linear from ``start`` to ``end`` (start < end)."""
    return float((((end - 1.0) ** 3 - (start - 1.0) ** 3) / (3.0 * (end - start))).mean())


def _squared_norm_mean(start: torch.Tensor, end: torch.Tensor) -> float:
    """E over rows and t of max(0, g(t)^2 - 1)^2, g linear from ``start`` to ``end``
    (0 <= start < end): the integral of (n^2 - 1)^2 over n > 1, divided by the slope."""
    antiderivative = lambda n: n**5 / 5.0 - 2.0 * n**3 / 3.0 + n  # noqa: E731
    lo, hi = start.clamp_min(1.0), end.clamp_min(1.0)
    return float(((antiderivative(hi) - antiderivative(lo)) / (end - start)).mean())


@pytest.mark.graded("2.1.4")
def test_lp_reg_images_statistical(grader: Grader) -> None:
    """A bowl ``0.5 c ||x - m||^2``; per row, ``y - m`` and ``x - m`` point the same way with
    ``c ||y - m|| = a`` below 1 and ``c ||x - m|| = b`` above it, so the gradient norm at
    ``x_hat = t x + (1 - t) y`` is ``a + t (b - a)``: one t per sample gives a known mean."""
    batch, shape = 8192, (3, 4, 4)
    features = math.prod(shape)
    g = grader.rng("bowl")
    critic = Critic(features)
    with torch.no_grad():
        for param in critic.parameters():
            param.zero_()
        critic.curvature.fill_(0.5 + 1.5 * float(torch.rand((), generator=g)))
        critic.centre.copy_(torch.randn((features,), generator=g))
        critic.out.bias.fill_(float(torch.randn((), generator=g)))
    c = float(critic.curvature.detach())
    a = 0.02 + 0.28 * torch.rand((batch,), generator=g)
    b = 1.6 + 0.8 * torch.rand((batch,), generator=g)
    direction = torch.randn((batch, features), generator=g)
    direction /= direction.norm(dim=1, keepdim=True)
    centre = critic.centre.detach()
    y = centre + direction * (a / c)[:, None]
    x = centre + direction * (b / c)[:, None]
    inputs = {"x": x.reshape(batch, *shape), "y": y.reshape(batch, *shape), **_state(critic)}
    # The gradient norms these float32 inputs really give (a and b rounded with them); in
    # float32, which is within 1e-6 of float64 here, far inside the statistical bound,
    # and a fraction of the cost of 8192 x 48 doubles per submission.
    a = c * (y - centre).norm(dim=1).double()
    b = c * (x - centre).norm(dim=1).double()
    mean = float(_segment_moments(a, b, 1 + 1).mean())
    variance = float((_segment_moments(a, b, 4) - _segment_moments(a, b, 2) ** 2).sum()) / batch**2
    obs, what = _probe(grader, "lp_reg", inputs, ("x", "y"), "a quadratic bowl")
    info = grader.info(obs, "out")
    grader.expect(info.get("type") == "Tensor" and tuple(info.get("shape", ())) in ((), (1,)),
                  f"{what}: expected a scalar tensor (shape () or (1,)), got {info.get('type')} {tuple(info.get('shape', ()))}")
    per_element = (a * b + (b - a) ** 2 / 3.0).sqrt()
    check_expected_value(
        grader,
        obs.tensors["out"],
        mean,
        variance,
        what=f"{what}, where the gradient norm along each segment grows linearly from below 1 to above 1",
        hints=[
            (_two_sided_mean(a, b), "the penalty looks two-sided; use max(0, ||grad|| - 1)^2."),
            (float(((per_element - 1.0).clamp_min(0.0) ** 2).mean()), "t seems drawn per element; draw one t per sample, of shape (B, 1, 1, 1) for images."),
            (_squared_norm_mean(a, b), "the gradient norm seems squared; use the L2 norm itself."),
            (float(((b - 1.0).clamp_min(0.0) ** 2).mean()), "the penalty seems evaluated at x without interpolating; use x_hat = t x + (1 - t) y."),
            (0.0, "the norm seems taken over the wrong dimensions (or at y only); flatten all non-batch dimensions: grad.reshape(B, -1).norm(dim=1)."),
        ],
    )
