"""Graded tests for Question 2 (WGAN-LP objective and Lipschitz penalty)."""
from __future__ import annotations

import pytest
import torch

from autograder.compare import shape_str
from autograder.judge import Grader
from autograder.stats import check_expected_value


def _critic_call(grader: Grader, function: str, case_name: str, args: tuple[str, str], critic: str, label: str = "", **params: object):
    case = grader.case(case_name)
    features = int(torch.tensor(case.inputs[args[0]].shape[1:]).prod())
    rows = int(params.get("repeat_rows", 1)) * case.inputs[args[0]].shape[0]  # type: ignore[call-overload]
    shapes = {a: (rows, *case.inputs[a].shape[1:]) for a in args}
    what = f"{function}({', '.join(f'{a}: {shape_str(shapes[a])}' for a in args)}, critic={label or critic} critic)"
    obs = grader.probe(
        "critic",
        {"function": function, "args": list(args), "critic": {"kind": critic, "in_features": features}, **params},
        case.inputs,
        call=what,
    )
    return case, obs, what


@pytest.mark.graded("2.1.1")
def test_vf_wasserstein_distance(grader: Grader) -> None:
    for name in ("vf_flat", "vf_images"):
        case, obs, what = _critic_call(grader, "vf_wasserstein_distance", name, ("p", "q"), "mlp")
        grader.expect_close(obs, "out", case.expected["out"], what=what, scalar=True, hints=case.hint_list("out"))


@pytest.mark.graded("2.1.2")
def test_lp_reg_linear_critic(grader: Grader) -> None:
    for name, norm in (("lp_linear_steep", 2.0), ("lp_linear_flat", 0.5)):
        case, obs, what = _critic_call(grader, "lp_reg", name, ("x", "y"), "linear", f"linear (gradient norm {norm:g} everywhere)")
        grader.expect_close(obs, "out", case.expected["out"], what=what, scalar=True, hints=case.hint_list("out"))


@pytest.mark.graded("2.1.3")
def test_lp_reg_differentiable(grader: Grader) -> None:
    case, obs, what = _critic_call(grader, "lp_reg", "lp_linear_grad", ("x", "y"), "linear", param_grads=True)
    grader.expect_close(obs, "out", case.expected["out"], what=what, scalar=True, hints=case.hint_list("out"))
    info = grader.info(obs, "out")
    grader.expect(
        bool(info.get("requires_grad")) and obs.values.get("backward") == "ok",
        f"{what}: the penalty does not depend on the critic's parameters in the autograd graph, so it cannot train the critic. "
        "Hint: compute the gradient with torch.autograd.grad(..., create_graph=True) and do not detach it.",
    )
    for name in ("linear.weight", "linear.bias"):
        grader.expect_close(
            obs, f"grad.{name}", case.expected[f"grad.{name}"], missing_is_zero=True,
            what=f"{what}: gradient of the penalty with respect to the critic's {name}",
        )


@pytest.mark.graded("2.1.4")
def test_lp_reg_images_statistical(grader: Grader) -> None:
    batch = 2048
    case, obs, what = _critic_call(
        grader, "lp_reg", "lp_quadratic_images", ("x", "y"), "quadratic", "quadratic f(x) = 0.5 ||x||^2", repeat_rows=batch, replicate=["x", "y"]
    )
    info = grader.info(obs, "out")
    grader.expect(info.get("type") == "Tensor" and tuple(info.get("shape", ())) in ((), (1,)),
                  f"{what}: expected a scalar tensor (shape () or (1,)), got {info.get('type')} {tuple(info.get('shape', ()))}")
    check_expected_value(
        grader,
        obs.tensors["out"],
        float(case.expected["mean"]),
        float(case.expected["variance"]) / batch,
        what=f"{what}, with y = 0 and ||x_i|| = 2 so that ||grad f(x_hat_i)|| = 2 t_i",
        hints=[
            (1.0 / 3.0, "the penalty looks two-sided; use max(0, ||grad|| - 1)^2."),
            (0.03, "t seems drawn per element; draw one t per sample, of shape (B, 1, 1, 1) for images."),
            (1.2667, "the gradient norm seems squared; use the L2 norm itself."),
            (1.0, "the penalty seems evaluated at x without interpolating; use x_hat = t x + (1 - t) y."),
            (0.0, "the norm seems taken over the wrong dimensions (or at y only); flatten all non-batch dimensions: grad.reshape(B, -1).norm(dim=1)."),
        ],
    )
