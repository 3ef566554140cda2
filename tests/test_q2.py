"""Graded tests for Question 2 (WGAN-LP objective and Lipschitz penalty).

The penalty is judged on critics drawn anew for every submission (all of one class, every
parameter nonzero, so the gradient changes from point to point): its expected value over
one t per sample is integrated on the trusted side (assignment/penalty.py), and the
submission's batch mean must match it at many standard errors; its gradient with respect
to the critic's parameters is checked exactly where x = y (there x_hat = x for every t)."""
from __future__ import annotations

import copy

import pytest
import torch

from autograder.grading.compare import shape_str
from autograder.grading.judge import Grader
from autograder.grading.stats import check_expected_tensor, check_expected_value
from assignment.models import Critic
from assignment.penalty import CHECKED_PARAMETERS, PenaltyMoments, draw_critic, draw_segments, segment_moments


def _state(critic: Critic) -> dict[str, torch.Tensor]:
    return {f"critic.{k}": v.detach().clone() for k, v in critic.state_dict().items()}


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


PENALTY_BATCH = 2048  # rows per probe of the visible test; the hidden one on images takes twice as many
FEATURES = 48  # flat data (48,) and images (3, 4, 4)
CREATE_GRAPH_HINT = "compute the gradient with torch.autograd.grad(..., create_graph=True) and do not detach it."


def _penalty_hints(moments: PenaltyMoments, batch: int) -> list[tuple[float, str]]:
    return [
        (moments.two_sided, "the penalty looks two-sided; WGAN-LP penalises only gradient norms above 1: max(0, ||grad|| - 1)^2."),
        (moments.per_element, "t seems drawn per element; draw one t per sample, of shape (B, 1) for flat data and (B, 1, 1, 1) for images."),
        (moments.squared_norm, "the gradient norm seems squared; use the L2 norm itself."),
        (moments.at_x, "the penalty seems evaluated at x without interpolating; use x_hat = t x + (1 - t) y."),
        (batch * moments.mean, "you seem to sum over the batch; the penalty is a mean over samples."),
        (0.0, "the norm seems taken over the wrong dimensions (or at y only); flatten all non-batch dimensions: grad.reshape(B, -1).norm(dim=1)."),
    ]


def _judge_penalty(grader: Grader, label: str, shape: tuple[int, ...], batch: int, tanh_norm: float, reach: tuple[float, float]) -> None:
    """One statistical probe: a critic and segments drawn for this submission. The batch
    mean must be the expected penalty, and its gradient with respect to the critic's
    parameters the expected gradient: both need the critic's gradient at the interpolated
    points, so neither a value read off the critic's parameters nor a typical constant
    passes."""
    critic = draw_critic(grader.rng(f"critic-{label}"), FEATURES, tanh_norm)
    x, y = draw_segments(grader.rng(f"segments-{label}"), critic, batch, shape, reach)
    inputs = {"x": x, "y": y, **_state(critic)}
    obs, what = _probe(grader, "lp_reg", inputs, ("x", "y"), "a smooth random network", param_grads=True)
    info = grader.info(obs, "out")
    grader.expect(info.get("type") == "Tensor" and tuple(info.get("shape", ())) in ((), (1,)),
                  f"{what}: expected a scalar tensor (shape () or (1,)), got {info.get('type')} {tuple(info.get('shape', ()))}")
    moments = segment_moments(critic, x, y, grader.rng(f"per-element-{label}"))
    check_expected_value(
        grader, obs.tensors["out"], moments.mean, moments.variance,
        what=f"{what}: the mean over samples of max(0, ||grad f(x_hat)|| - 1)^2, one t ~ U[0, 1] per sample",
        hints=_penalty_hints(moments, batch),
    )
    grader.expect(
        bool(info.get("requires_grad")) and obs.values.get("backward") == "ok",
        f"{what}: the penalty does not depend on the critic's parameters in the autograd graph, so it cannot train the critic. "
        f"Hint: {CREATE_GRAPH_HINT}",
    )
    for name in CHECKED_PARAMETERS:
        got = obs.tensors.get(f"grad.{name}")
        check_expected_tensor(
            grader, torch.zeros_like(moments.grad_mean[name]) if got is None else got, moments.grad_mean[name], moments.grad_variance[name],
            what=f"{what}: the gradient of the penalty with respect to the critic's {name}",
            hint="the penalty's gradient must come through the critic's gradient at the interpolated points x_hat: " + CREATE_GRAPH_HINT,
        )


@pytest.mark.graded("2.1.2")
def test_lp_reg_smooth_critics(grader: Grader) -> None:
    # Flat data: a gently bent quadratic, whose norms run from well below 1 to above it (a
    # two-sided penalty, one t per element, no interpolation all land far away); images: a
    # strongly bent one, whose gradient field no formula of the endpoints predicts.
    reach = 1.4 + 0.6 * float(torch.rand((), generator=grader.rng("reach")))
    _judge_penalty(grader, "flat", (FEATURES,), PENALTY_BATCH, 0.3, (reach, reach + 0.6))
    _judge_penalty(grader, "images", (3, 4, 4), PENALTY_BATCH, 2.0, (1.4, 2.4))


@pytest.mark.graded("2.1.3")
def test_lp_reg_differentiable(grader: Grader) -> None:
    """Where x = y, x_hat = x whatever t is: the penalty and its gradient with respect to
    every parameter of the critic are exact numbers (computed here in float64)."""
    batch, features = 32, 7
    g = grader.rng("critic")
    critic = draw_critic(g, features, 1.0)
    radius = 0.1 + 1.9 * torch.rand((batch,), generator=g)
    direction = torch.randn((batch, features), generator=g)
    x = critic.centre.detach() + direction / direction.norm(dim=1, keepdim=True) * (radius / float(critic.curvature.detach()))[:, None]
    obs, what = _probe(grader, "lp_reg", {"x": x, "y": x.clone(), **_state(critic)}, ("x", "y"), "a smooth random network, x = y", param_grads=True)
    exact = copy.deepcopy(critic).double()
    leaf = x.double().requires_grad_(True)
    (grad,) = torch.autograd.grad(exact(leaf).sum(), leaf, create_graph=True)
    penalty = (grad.norm(dim=1) - 1.0).clamp_min(0.0).pow(2).mean()
    grader.expect_close(obs, "out", penalty.detach().float(), what=f"{what}: with x = y the penalty is mean_i max(0, ||grad f(x_i)|| - 1)^2", scalar=True)
    info = grader.info(obs, "out")
    grader.expect(
        bool(info.get("requires_grad")) and obs.values.get("backward") == "ok",
        f"{what}: the penalty does not depend on the critic's parameters in the autograd graph, so it cannot train the critic. Hint: {CREATE_GRAPH_HINT}",
    )
    names = [name for name, _ in exact.named_parameters()]
    expected = torch.autograd.grad(penalty, list(exact.parameters()), allow_unused=True)
    for name, value in zip(names, expected):
        target = torch.zeros_like(dict(exact.named_parameters())[name]) if value is None else value
        grader.expect_close(obs, f"grad.{name}", target.detach().float(), what=f"{what}: gradient of the penalty with respect to the critic's {name}")


@pytest.mark.graded("2.1.4")
def test_lp_reg_images_statistical(grader: Grader) -> None:
    _judge_penalty(grader, "bowl", (3, 4, 4), 2 * PENALTY_BATCH, 1.0, (1.6, 2.4))
