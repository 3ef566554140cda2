"""Graded tests for Question 3 (SimSiam forward, cosine similarity, loss)."""
from __future__ import annotations

import pytest
import torch

from autograder.grading.compare import Hint, describe_args
from autograder.grading.judge import Grader

OUTPUTS = ("p1", "p2", "z1", "z2")
GRAD_PARAMS = ("encoder.conv.weight", "encoder.proj.weight", "encoder.fc.0.weight", "encoder.fc.6.weight", "predictor.0.weight", "predictor.3.weight")


def _forward(grader: Grader, case_name: str, stop_gradient: bool, mlp_mode: str | None):
    case = grader.case(case_name)
    what = (f"SimSiam(TinyEncoder, dim=16, pred_dim=8, stop_gradient={stop_gradient}, MLP_mode={mlp_mode!r}).forward"
            f"({describe_args(case.inputs, ('x1', 'x2'))})")
    params = {"dim": 16, "pred_dim": 8, "stop_gradient": stop_gradient, "mlp_mode": mlp_mode, "grad_params": list(GRAD_PARAMS)}
    obs = grader.probe("simsiam_forward", params, case.inputs, call=what)
    return case, obs, what


def _check_outputs(grader: Grader, case, obs, what: str, check_dtype: bool = False) -> None:
    expected = [case.expected[f"out.{i}"] for i in range(4)]
    for i, name in enumerate(OUTPUTS):
        got = obs.tensors.get(f"out.{i}")
        hints = []
        if got is not None:
            matches = [OUTPUTS[j] for j in range(4) if j != i and got.shape == expected[j].shape and torch.allclose(got, expected[j], atol=1e-5)]
            if matches and not torch.allclose(got, expected[i], atol=1e-5):
                hints = [Hint(got, f"output #{i + 1} holds what {matches[0]} should be; return (p1, p2, z1, z2) in this order.")]
        grader.expect_close(obs, f"out.{i}", expected[i], what=f"{what}: output #{i + 1} ({name})", hints=hints, check_dtype=check_dtype)


def _check_gradients(grader: Grader, case, obs, what: str, stop_gradient: bool) -> None:
    for i, name in enumerate(OUTPUTS):
        info = grader.info(obs, f"out.{i}")
        should = not (stop_gradient and name.startswith("z"))
        if bool(info.get("requires_grad")) != should:
            if name.startswith("z") and stop_gradient:
                hint = f"with stop_gradient=True, {name} must be detached (z.detach()) before it is returned."
            elif name.startswith("z"):
                hint = f"with stop_gradient=False nothing may be detached, but {name} has no graph: detach only when self.stop_gradient is true."
            else:
                hint = f"{name} must keep its graph to the encoder: detach z only for the returned z1, z2, after computing p = predictor(z)."
            raise grader.fail(f"{what}: {name}.requires_grad is {bool(info.get('requires_grad'))}, expected {should}. Hint: {hint}")
    for param in GRAD_PARAMS:
        key = f"grad.{param}"
        if key not in case.expected:
            continue
        grader.expect_close(
            obs, key, case.expected[key],
            what=f"{what}: gradient of sum(c1*p1 + c2*p2 + c3*z1 + c4*z2) with respect to {param} "
            f"({'only p1 and p2 may carry gradient' if stop_gradient else 'all four outputs carry gradient'})",
        )


@pytest.mark.graded("3.1.1")
def test_forward_outputs(grader: Grader) -> None:
    case, obs, what = _forward(grader, "simsiam_stopgrad", True, None)
    _check_outputs(grader, case, obs, what, check_dtype=True)


@pytest.mark.graded("3.1.2")
def test_forward_stop_gradient(grader: Grader) -> None:
    case, obs, what = _forward(grader, "simsiam_stopgrad", True, None)
    _check_gradients(grader, case, obs, what, stop_gradient=True)
    # ... and only when asked: without stop_gradient nothing is detached (3.1.3 checks it
    # on a larger case; this visible one shows the mistake before the deadline).
    case, obs, what = _forward(grader, "simsiam_no_stopgrad_visible", False, None)
    _check_gradients(grader, case, obs, what, stop_gradient=False)


@pytest.mark.graded("3.1.3")
def test_forward_without_stop_gradient(grader: Grader) -> None:
    case, obs, what = _forward(grader, "simsiam_no_stopgrad", False, None)
    _check_outputs(grader, case, obs, what)
    _check_gradients(grader, case, obs, what, stop_gradient=False)


@pytest.mark.graded("3.1.4")
def test_forward_no_predictor(grader: Grader) -> None:
    case, obs, what = _forward(grader, "simsiam_no_pred", True, "no_pred_mlp")
    _check_outputs(grader, case, obs, what)
    _check_gradients(grader, case, obs, what, stop_gradient=True)


def _cosine(grader: Grader, case_name: str, grads: bool, check_dtype: bool = False) -> None:
    """Points are for the (B, D), dim=1 contract: every use in the homework (the provided
    ``bdot`` helper is a correct way to write it)."""
    case = grader.case(case_name)
    what = f"CosineSimilarity(dim=1)({describe_args(case.inputs, ('x1', 'x2'))})"
    params = {"init": {"dim": 1}, "grad_wrt": ["x1", "x2"] if grads else []}
    if grads:
        params["cotangent"] = "cot"
    obs = grader.probe("cosine", params, case.inputs, call=what)
    grader.expect_close(obs, "out", case.expected["out"], what=what, hints=case.hint_list("out"), check_dtype=check_dtype)
    if grads:
        for name in ("x1", "x2"):
            grader.expect_close(obs, f"grad.{name}", case.expected[f"grad.{name}"], what=f"{what}: gradient with respect to {name}")


@pytest.mark.graded("3.2.1")
def test_cosine_values(grader: Grader) -> None:
    _cosine(grader, "cosine_basic", grads=False, check_dtype=True)


@pytest.mark.graded("3.2.2")
def test_cosine_zero_vector(grader: Grader) -> None:
    _cosine(grader, "cosine_zero", grads=False)


@pytest.mark.graded("3.2.3")
def test_cosine_gradients(grader: Grader) -> None:
    _cosine(grader, "cosine_hidden", grads=True)


# A bug in the student's CosineSimilarity is charged to 3.2 only: on Gradescope a failing
# 3.3 test is graded again with a correct one (it may only add points).
LOSS_FALLBACK = pytest.mark.callee_fallback(CosineSimilarity="CosineSimilarity")


def _loss(grader: Grader, case_name: str, grads: bool, check_dtype: bool = False) -> None:
    case = grader.case(case_name)
    dim = case.inputs["p1"].shape[1]
    what = f"SimSiam.loss({describe_args(case.inputs, OUTPUTS)})"
    obs = grader.probe("simsiam_loss", {"dim": dim, "pred_dim": 4, "stop_gradient": True}, case.inputs, call=what)
    grader.expect_close(obs, "out", case.expected["out"], what=what, scalar=True, hints=case.hint_list("out"), check_dtype=check_dtype)
    if not grads:
        return
    for name in ("p1", "p2"):
        grader.expect_close(obs, f"grad.{name}", case.expected[f"grad.{name}"], what=f"{what}: gradient with respect to {name}")
    for name in ("z1", "z2"):
        # Equation (7) writes stop-grad(z) inside the loss: a loss that detaches z is as
        # correct as one that leaves it to forward (zero or the full gradient, nothing else).
        got = obs.tensors.get(f"grad.{name}")
        if got is None or bool((got == 0).all()):
            continue
        grader.expect_close(obs, f"grad.{name}", case.expected[f"grad.{name}"],
                            what=f"{what}: gradient with respect to {name} (either zero, with stop-grad(z) as in equation (7), or the full gradient)")


@pytest.mark.graded("3.3.1")
@LOSS_FALLBACK
def test_loss_values(grader: Grader) -> None:
    _loss(grader, "loss_basic", grads=False, check_dtype=True)


@pytest.mark.graded("3.3.2")
@LOSS_FALLBACK
def test_loss_gradients(grader: Grader) -> None:
    _loss(grader, "loss_basic", grads=True)


@pytest.mark.graded("3.3.3")
@LOSS_FALLBACK
def test_loss_hidden(grader: Grader) -> None:
    _loss(grader, "loss_hidden", grads=True)
