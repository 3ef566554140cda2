"""Graded tests for Question 1 (VAE likelihoods and KL divergences)."""
from __future__ import annotations

import pytest
import torch

from autograder.judge import Grader
from autograder.stats import check_mean, check_variance

BERNOULLI = ("mu", "target")
NORMAL = ("mu", "logvar", "z")
KL = ("mu_q", "logvar_q", "mu_p", "logvar_p")


def _values(grader: Grader, function: str, case_name: str, args: tuple[str, ...], grads: tuple[str, ...] = ()) -> None:
    """Call ``function`` on a case, compare its output (and gradients of a weighted
    sum of it) with the reference's."""
    case = grader.case(case_name)
    params = {"grad_wrt": list(grads), "cotangent": "cot"} if grads else {}
    obs = grader.call(function, case, args, **params)
    what = f"{function} on inputs {', '.join(f'{a}{tuple(case.inputs[a].shape)}' for a in args)}"
    grader.expect_close(obs, "out", case.expected["out"], what=what, hints=case.hint_list("out"))
    for name in grads:
        grader.expect_close(
            obs, f"grad.{name}", case.expected[f"grad.{name}"],
            what=f"gradient of sum(cot * {function}(...)) with respect to {name} (is every step differentiable torch code?)",
        )


def _shape_only(grader: Grader, function: str, case_name: str, args: tuple[str, ...]) -> None:
    case = grader.case(case_name)
    obs = grader.call(function, case, args)
    info = grader.info(obs, "out")
    expected = case.expected["out"]
    grader.expect(info.get("type") == "Tensor", f"{function} must return a torch.Tensor, got {info.get('type')}")
    grader.expect(
        tuple(info["shape"]) == tuple(expected.shape),
        f"{function}: shape: expected {tuple(expected.shape)} (one value per example), got {tuple(info['shape'])}"
        + (" Hint: reduce without keepdim=True or squeeze the last dimension." if list(info["shape"]) == [*expected.shape, 1] else ""),
    )
    grader.expect(info["dtype"] == "float32", f"{function}: dtype: expected float32, got {info['dtype']}")


@pytest.mark.graded("1.1.1")
def test_bernoulli_shape(grader: Grader) -> None:
    _shape_only(grader, "log_likelihood_bernoulli", "bernoulli_basic", BERNOULLI)


@pytest.mark.graded("1.1.2")
def test_bernoulli_values(grader: Grader) -> None:
    _values(grader, "log_likelihood_bernoulli", "bernoulli_basic", BERNOULLI)


@pytest.mark.graded("1.1.3")
def test_bernoulli_hidden(grader: Grader) -> None:
    _values(grader, "log_likelihood_bernoulli", "bernoulli_hidden", BERNOULLI, grads=("mu",))


@pytest.mark.graded("1.2.1")
def test_normal_shape(grader: Grader) -> None:
    _shape_only(grader, "log_likelihood_normal", "normal_basic", NORMAL)


@pytest.mark.graded("1.2.2")
def test_normal_values(grader: Grader) -> None:
    _values(grader, "log_likelihood_normal", "normal_basic", NORMAL)


@pytest.mark.graded("1.2.3")
def test_normal_hidden(grader: Grader) -> None:
    _values(grader, "log_likelihood_normal", "normal_hidden", NORMAL, grads=NORMAL)


@pytest.mark.graded("1.3.1")
def test_log_mean_exp_values(grader: Grader) -> None:
    _values(grader, "log_mean_exp", "lme_basic", ("y",))


@pytest.mark.graded("1.3.2")
def test_log_mean_exp_stable(grader: Grader) -> None:
    _values(grader, "log_mean_exp", "lme_extreme", ("y",))


@pytest.mark.graded("1.3.3")
def test_log_mean_exp_hidden(grader: Grader) -> None:
    _values(grader, "log_mean_exp", "lme_hidden", ("y",), grads=("y",))


@pytest.mark.graded("1.4.1")
def test_kl_analytic_values(grader: Grader) -> None:
    _values(grader, "kl_gaussian_gaussian_analytic", "kl_basic", KL)


@pytest.mark.graded("1.4.2")
def test_kl_analytic_hidden(grader: Grader) -> None:
    _values(grader, "kl_gaussian_gaussian_analytic", "kl_hidden", KL)


@pytest.mark.graded("1.4.3")
def test_kl_analytic_gradients(grader: Grader) -> None:
    _values(grader, "kl_gaussian_gaussian_analytic", "kl_hidden", KL, grads=KL)
    case = grader.case("kl_gradcheck")
    obs = grader.probe("gradcheck", {"function": "kl_gaussian_gaussian_analytic", "args": list(KL)}, case.inputs,
                       call="torch.autograd.gradcheck(kl_gaussian_gaussian_analytic, float64 inputs)")
    grader.expect(bool(obs.values.get("gradcheck")), "kl_gaussian_gaussian_analytic failed torch.autograd.gradcheck in float64: "
                  "its gradient does not match finite differences (a non-differentiable step, .detach(), .item() or numpy?). "
                  + str(obs.values.get("gradcheck_message", ""))[:300])


MC = "kl_gaussian_gaussian_mc"
MC_CALLEE = {"log_likelihood_normal": "log_likelihood_normal"}


def _mc(grader: Grader, case_name: str, num_samples: int, **extra: object):
    case = grader.case(case_name)
    rows = int(extra.get("repeat_rows", 1)) * case.inputs["mu_q"].shape[0]
    what = f"{MC}({', '.join(f'{a}: ({rows}, {case.inputs[a].shape[1]})' for a in KL)}, num_samples={num_samples})"
    params = {"function": MC, "args": list(KL), "kwargs": {"num_samples": num_samples}, **extra}
    obs = grader.probe("call", params, case.inputs, call=what, substitutes=MC_CALLEE)
    return case, obs, what


def _mc_estimates(grader: Grader, case_name: str, num_samples: int):
    case = grader.case(case_name)
    repeats = int(case.expected["repeats"])
    case, obs, what = _mc(grader, case_name, num_samples, repeat_rows=repeats, replicate=list(KL))
    info = grader.info(obs, "out")
    batch = case.inputs["mu_q"].shape[0] * repeats
    grader.expect(info.get("type") == "Tensor" and tuple(info.get("shape", ())) == (batch,),
                  f"{what}: expected a tensor of shape ({batch},), got {info.get('type')} {tuple(info.get('shape', ()))}")
    out = obs.tensors["out"].double()
    grader.expect(bool(torch.isfinite(out).all()), f"{what}: the estimates contain NaN or Inf")
    pairs = case.expected["kl"].shape[0]
    return case, out.reshape(pairs, -1), what


@pytest.mark.graded("1.5.1")
def test_kl_mc_contract(grader: Grader) -> None:
    case, obs, what = _mc(grader, "kl_mc_small", 1, grad_wrt=["mu_q", "logvar_q"], cotangent="cot", repeat=2)
    info = grader.info(obs, "out")
    grader.expect(info.get("type") == "Tensor" and tuple(info.get("shape", ())) == (6,),
                  f"{what}: expected a tensor of shape (6,) (one estimate per example), got {info.get('type')} {tuple(info.get('shape', ()))}")
    grader.expect(info.get("dtype") == "float32", f"{what}: dtype: expected float32, got {info.get('dtype')}")
    grader.expect(bool(torch.isfinite(obs.tensors["out"]).all()), f"{what}: the estimate contains NaN or Inf")
    for name in ("mu_q", "logvar_q"):
        grad = obs.tensors.get(f"grad.{name}")
        grader.expect(grad is not None and bool(torch.isfinite(grad).all()) and bool(grad.abs().sum() > 0),
                      f"{what}: no gradient reaches {name}; sample with the reparameterisation z = mu_q + exp(0.5 * logvar_q) * eps "
                      "and keep the computation in torch.")
    second = obs.tensors.get("out2")
    grader.expect(second is None or not torch.equal(obs.tensors["out"], second),
                  f"{what}: two consecutive calls returned identical estimates. A Monte Carlo estimate must draw fresh samples "
                  "from torch's global generator on every call (do not sample deterministically or call torch.manual_seed).")


@pytest.mark.graded("1.5.2")
def test_kl_mc_unbiased(grader: Grader) -> None:
    case, est, what = _mc_estimates(grader, "kl_mc_single", 1)
    check_mean(grader, est, case.expected["kl"], case.expected["variance"], what=what,
               hint="Sample z from q (mu_q, logvar_q) with std exp(0.5 * logvar_q), and average log q(z) - log p(z).")


@pytest.mark.graded("1.5.3")
def test_kl_mc_variance(grader: Grader) -> None:
    case, est, what = _mc_estimates(grader, "kl_mc_variance", 1)
    check_mean(grader, est, case.expected["kl"], case.expected["variance"], what=what,
               hint="Sample z from q (mu_q, logvar_q) with std exp(0.5 * logvar_q).")
    check_variance(grader, est, case.expected["kl"], case.expected["variance"], what=what,
                   hint="Draw independent standard normal noise for every example and feature: one estimate per row must be a single fresh sample.")


@pytest.mark.graded("1.5.4")
def test_kl_mc_num_samples(grader: Grader) -> None:
    k = 10
    case, est, what = _mc_estimates(grader, "kl_mc_multi", k)
    check_mean(grader, est, case.expected["kl"], case.expected["variance"] / k, what=what,
               hint="Average (not sum) log q(z) - log p(z) over the num_samples draws.")
    check_variance(grader, est, case.expected["kl"], case.expected["variance"] / k, what=what,
                   hint=f"With num_samples={k} the variance must shrink {k}-fold: draw num_samples independent samples per example and average them.")
