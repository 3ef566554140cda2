"""Graded tests for Question 1 (VAE likelihoods and KL divergences)."""
from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from autograder.grading.judge import Grader
from autograder.grading.stats import check_mean, check_mean_sampled, check_variance, check_variance_factor

BERNOULLI = ("mu", "target")
NORMAL = ("mu", "logvar", "z")
KL = ("mu_q", "logvar_q", "mu_p", "logvar_p")


def _values(grader: Grader, function: str, case_name: str, args: tuple[str, ...], grads: tuple[str, ...] = (), check_dtype: bool = False,
            values: bool = True) -> None:
    """Call ``function`` on a case, compare its output (and gradients of a weighted
    sum of it) with the reference's. ``values=False``: the gradients only, for a test
    whose contract is the gradient (a constant offset in the values is another test's)."""
    case = grader.case(case_name)
    params = {"grad_wrt": list(grads), "cotangent": "cot"} if grads else {}
    obs = grader.call(function, case, args, **params)
    what = f"{function} on inputs {', '.join(f'{a}{tuple(case.inputs[a].shape)}' for a in args)}"
    if values:
        grader.expect_close(obs, "out", case.expected["out"], what=what, hints=case.hint_list("out"), check_dtype=check_dtype)
    for name in grads:
        grader.expect_close(
            obs, f"grad.{name}", case.expected[f"grad.{name}"],
            what=f"gradient of sum(cot * {function}(...)) with respect to {name} (is every step differentiable torch code?)",
        )


def _contract(grader: Grader, function: str, case_name: str, args: tuple[str, ...]) -> None:
    """The part's one dtype test: a float32 tensor of shape (B,) with the right values."""
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
    grader.expect(info["dtype"] == "float32", f"{function}: dtype: expected float32, got {info['dtype']}. Hint: keep the computation in the inputs' dtype.")
    what = f"{function} on inputs {', '.join(f'{a}{tuple(case.inputs[a].shape)}' for a in args)}"
    grader.expect_close(obs, "out", expected, what=what, hints=case.hint_list("out"))


@pytest.mark.graded("1.1.1")
def test_bernoulli_shape(grader: Grader) -> None:
    _contract(grader, "log_likelihood_bernoulli", "bernoulli_basic", BERNOULLI)


@pytest.mark.graded("1.1.2")
def test_bernoulli_values(grader: Grader) -> None:
    _values(grader, "log_likelihood_bernoulli", "bernoulli_basic", BERNOULLI)


@pytest.mark.graded("1.1.3")
def test_bernoulli_hidden(grader: Grader) -> None:
    _values(grader, "log_likelihood_bernoulli", "bernoulli_hidden", BERNOULLI, grads=("mu",))


@pytest.mark.graded("1.2.1")
def test_normal_shape(grader: Grader) -> None:
    _contract(grader, "log_likelihood_normal", "normal_basic", NORMAL)


@pytest.mark.graded("1.2.2")
def test_normal_values(grader: Grader) -> None:
    _values(grader, "log_likelihood_normal", "normal_basic", NORMAL)


@pytest.mark.graded("1.2.3")
def test_normal_hidden(grader: Grader) -> None:
    _values(grader, "log_likelihood_normal", "normal_hidden", NORMAL, grads=NORMAL)


@pytest.mark.graded("1.3.1")
def test_log_mean_exp_values(grader: Grader) -> None:
    _values(grader, "log_mean_exp", "lme_basic", ("y",), check_dtype=True)


@pytest.mark.graded("1.3.2")
def test_log_mean_exp_stable(grader: Grader) -> None:
    _values(grader, "log_mean_exp", "lme_extreme", ("y",))


@pytest.mark.graded("1.3.3")
def test_log_mean_exp_hidden(grader: Grader) -> None:
    _values(grader, "log_mean_exp", "lme_hidden", ("y",), grads=("y",))


@pytest.mark.graded("1.4.1")
def test_kl_analytic_values(grader: Grader) -> None:
    _values(grader, "kl_gaussian_gaussian_analytic", "kl_basic", KL, check_dtype=True)


@pytest.mark.graded("1.4.2")
def test_kl_analytic_hidden(grader: Grader) -> None:
    _values(grader, "kl_gaussian_gaussian_analytic", "kl_hidden", KL)


@pytest.mark.graded("1.4.3")
def test_kl_analytic_gradients(grader: Grader) -> None:
    """Gradients only (GRADING.md): wrong values cost 1.4.1 and 1.4.2, not this test too."""
    _values(grader, "kl_gaussian_gaussian_analytic", "kl_hidden", KL, grads=KL, values=False)
    case = grader.case("kl_gradcheck")
    obs = grader.probe("gradcheck", {"function": "kl_gaussian_gaussian_analytic", "args": list(KL)}, case.inputs,
                       call="torch.autograd.gradcheck(kl_gaussian_gaussian_analytic, float64 inputs)")
    grader.expect(bool(obs.values.get("gradcheck")), "kl_gaussian_gaussian_analytic failed torch.autograd.gradcheck in float64: "
                  "its gradient does not match finite differences (a non-differentiable step, .detach(), .item() or numpy?). "
                  + str(obs.values.get("gradcheck_message", ""))[:300])


MC = "kl_gaussian_gaussian_mc"
# A bug in the student's log_likelihood_normal is charged to 1.2 only: on Gradescope a
# failing 1.5 test is graded again with a correct one (it may only add points).
MC_FALLBACK = pytest.mark.callee_fallback(log_likelihood_normal="log_likelihood_normal")
SAMPLE_HINT = "Draw z = mu_q + exp(0.5 * logvar_q) * eps with eps = torch.randn(...) (or Normal(...).rsample()), and average log q(z) - log p(z) over the samples."


@dataclass(frozen=True)
class MonteCarlo:
    """One probe of the estimator on replicated distribution pairs, in float64."""

    what: str
    estimates: torch.Tensor  # (pairs, repeats)
    inputs: dict[str, torch.Tensor]  # replicated rows, (pairs * repeats, D)
    grads: dict[str, torch.Tensor]  # (pairs * repeats, D)

    def by_pair(self, rows: torch.Tensor) -> torch.Tensor:
        """(pairs * repeats, D) -> (pairs * D, repeats): one row of draws per pair and feature."""
        pairs, repeats = self.estimates.shape
        return rows.reshape(pairs, repeats, -1).permute(0, 2, 1).reshape(-1, repeats)

    def pair_values(self, name: str) -> torch.Tensor:
        """An input per pair and feature, flattened like ``by_pair``."""
        pairs, repeats = self.estimates.shape
        return self.inputs[name].reshape(pairs, repeats, -1)[:, 0, :].reshape(-1)

    def revealed_z(self) -> torch.Tensor:
        """With one sample, d estimate / d mu_p = -(z - mu_p) / sigma_p^2 whatever else the
        code does: the sample z it used is mu_p - sigma_p^2 * gradient."""
        return self.inputs["mu_p"] - self.inputs["logvar_p"].exp() * self.grads["mu_p"]


def _monte_carlo(grader: Grader, case_name: str, num_samples: int, grads: tuple[str, ...] = ("mu_q", "logvar_q", "mu_p"), repeat: int = 1):
    case = grader.case(case_name)
    repeats = int(case.expected["repeats"])
    pairs = case.inputs["mu_q"].shape[0]
    rows = pairs * repeats
    what = f"{MC}({', '.join(f'{a}: ({rows}, {case.inputs[a].shape[1]})' for a in KL)}, num_samples={num_samples})"
    params = {"function": MC, "args": list(KL), "kwargs": {"num_samples": num_samples}, "repeat_rows": repeats, "replicate": list(KL),
              "grad_wrt": list(grads), "cotangent": "ones", "repeat": repeat}
    obs = grader.probe("call", params, case.inputs, call=what)
    info = grader.info(obs, "out")
    grader.expect(info.get("type") == "Tensor" and tuple(info.get("shape", ())) == (rows,),
                  f"{what}: expected a tensor of shape ({rows},) (one estimate per example), got {info.get('type')} {tuple(info.get('shape', ()))}")
    out = obs.tensors["out"].double()
    grader.expect(bool(torch.isfinite(out).all()), f"{what}: the estimates contain NaN or Inf")
    gradients = {}
    for name in grads:
        grad = obs.tensors.get(f"grad.{name}")
        grader.expect(grad is not None and tuple(grad.shape) == (rows, case.inputs[name].shape[1]) and bool(torch.isfinite(grad).all()) and bool(grad.abs().sum() > 0),
                      f"{what}: no gradient reaches {name}. {SAMPLE_HINT} Keep everything in torch (no .detach(), .item(), numpy or torch.no_grad()).")
        gradients[name] = grad.double()
    inputs = {a: case.inputs[a].double().repeat_interleave(repeats, dim=0) for a in KL}
    return case, MonteCarlo(what, out.reshape(pairs, repeats), inputs, gradients), obs


def _check_own_samples(grader: Grader, mc: MonteCarlo) -> None:
    """Each one-sample estimate must be log q(z) - log p(z) at the z its gradient reveals:
    a value not computed from its own samples (an analytic KL plus noise, say) fails."""
    z = mc.revealed_z()
    i = mc.inputs
    log_q = torch.distributions.Normal(i["mu_q"], (0.5 * i["logvar_q"]).exp()).log_prob(z).sum(-1)
    log_p = torch.distributions.Normal(i["mu_p"], (0.5 * i["logvar_p"]).exp()).log_prob(z).sum(-1)
    own = log_q - log_p
    got = mc.estimates.reshape(-1)
    off = (got - own).abs() > 1e-3 * (1.0 + own.abs())
    if bool(off.any()):
        row = int(off.nonzero()[0])
        detail = f" (row {row}: you returned {float(got[row]):.5g}, but log q(z) - log p(z) = {float(own[row]):.5g} at that z)" if grader.reveal else ""
        raise grader.fail(f"{mc.what}: {int(off.sum())} of {got.numel()} estimates are not log q(z) - log p(z) at the sample z that their "
                          f"gradient with respect to mu_p reveals{detail}. Hint: {SAMPLE_HINT} The value must come from the samples themselves.")


def _check_samples_from_q(grader: Grader, mc: MonteCarlo) -> None:
    z = mc.by_pair(mc.revealed_z())
    mu_q, var_q = mc.pair_values("mu_q"), mc.pair_values("logvar_q").exp()
    what = f"{mc.what}: the samples z (revealed by the gradient with respect to mu_p)"
    hint = "Sample z from q = N(mu_q, exp(logvar_q)): std exp(0.5 * logvar_q), fresh standard normal noise for every example and feature."
    check_mean(grader, z, mu_q, var_q, what=what, hint=hint, label="mean of q")
    check_variance(grader, z, mu_q, var_q, what=what, hint=hint)


@pytest.mark.graded("1.5.1")
@MC_FALLBACK
def test_kl_mc_contract(grader: Grader) -> None:
    case, mc, obs = _monte_carlo(grader, "kl_mc_small", 1, repeat=2)
    info = grader.info(obs, "out")
    grader.expect(info.get("dtype") == "float32", f"{mc.what}: dtype: expected float32, got {info.get('dtype')}")
    second = obs.tensors.get("out2")
    grader.expect(second is not None and second.shape == obs.tensors["out"].shape,
                  f"{mc.what}: a second call returned {grader.info(obs, 'out2').get('type')} instead of a tensor of the same shape.")
    grader.expect(not torch.equal(obs.tensors["out"], second),
                  f"{mc.what}: two consecutive calls returned identical estimates. A Monte Carlo estimate must draw fresh samples "
                  "from torch's global generator on every call (do not sample deterministically or call torch.manual_seed).")
    _check_own_samples(grader, mc)


def _check_num_samples(grader: Grader, case_name: str, k: int, *, coarse: bool = False) -> None:
    """``num_samples=k``: the mean unchanged, the variance of the values and of the
    gradient with respect to mu_p divided by k (``coarse``: within a factor of 3, enough
    for a mistake that ignores num_samples on the few draws of a visible case)."""
    case, mc, _ = _monte_carlo(grader, case_name, k, grads=("mu_p",))
    check_mean(grader, mc.estimates, case.expected["kl"], case.expected["variance"] / k, what=mc.what,
               hint="Average (not sum) log q(z) - log p(z) over the num_samples draws.")
    hint = f"With num_samples={k} the variance must shrink {k}-fold: draw num_samples independent samples per example and average them."
    spread = mc.pair_values("logvar_q").exp() / mc.pair_values("logvar_p").exp() ** 2 / k
    gradient = f"{mc.what}: the gradient with respect to mu_p"
    gradient_hint = f"The estimate and its gradient must average {k} independent samples per example."
    if coarse:
        check_variance_factor(grader, mc.estimates, case.expected["variance"] / k, what=mc.what, hint=hint)
        check_variance_factor(grader, mc.by_pair(mc.grads["mu_p"]), spread, what=gradient, hint=gradient_hint)
        return
    check_variance(grader, mc.estimates, case.expected["kl"], case.expected["variance"] / k, what=mc.what, hint=hint)
    check_variance(grader, mc.by_pair(mc.grads["mu_p"]), spread, spread, what=gradient, hint=gradient_hint)


@pytest.mark.graded("1.5.2")
@MC_FALLBACK
def test_kl_mc_unbiased(grader: Grader) -> None:
    case, mc, _ = _monte_carlo(grader, "kl_mc_single", 1, grads=("mu_q", "logvar_q", "mu_p", "logvar_p"))
    check_mean(grader, mc.estimates, case.expected["kl"], case.expected["variance"], what=mc.what, hint=SAMPLE_HINT)
    _check_samples_from_q(grader, mc)
    for name in ("mu_q", "logvar_q"):
        check_mean_sampled(grader, mc.by_pair(mc.grads[name]), case.expected[f"grad.{name}"].double().reshape(-1),
                           what=f"{mc.what}: the gradient with respect to {name}", label="gradient of the true KL",
                           hint="The gradient must flow through the samples: reparameterise z = mu_q + exp(0.5 * logvar_q) * eps "
                           "(rsample, not sample; no torch.no_grad() around the sampling), or the VAE cannot train.")
    # The docstring asks for a gradient with respect to every input: p's log-variance too
    # (log p(z) depends on it directly, whatever the sampling).
    check_mean_sampled(grader, mc.by_pair(mc.grads["logvar_p"]), case.expected["grad.logvar_p"].double().reshape(-1),
                       what=f"{mc.what}: the gradient with respect to logvar_p", label="gradient of the true KL",
                       hint="log p(z) must stay differentiable with respect to logvar_p: do not detach p's parameters.")
    _check_num_samples(grader, "kl_mc_multi_visible", 10, coarse=True)


@pytest.mark.graded("1.5.3")
@MC_FALLBACK
def test_kl_mc_variance(grader: Grader) -> None:
    case, mc, _ = _monte_carlo(grader, "kl_mc_variance", 1)
    _check_own_samples(grader, mc)
    check_mean(grader, mc.estimates, case.expected["kl"], case.expected["variance"], what=mc.what, hint=SAMPLE_HINT)
    check_variance(grader, mc.estimates, case.expected["kl"], case.expected["variance"], what=mc.what,
                   hint="Draw independent standard normal noise for every example and feature: one estimate per row must be a single fresh sample.")
    _check_samples_from_q(grader, mc)
    spread = mc.pair_values("logvar_q").exp() / mc.pair_values("logvar_p").exp() ** 2
    check_variance(grader, mc.by_pair(mc.grads["mu_p"]), spread, spread, what=f"{mc.what}: the gradient with respect to mu_p",
                   hint="The gradient must come from the sampled z themselves: " + SAMPLE_HINT)


@pytest.mark.graded("1.5.4")
@MC_FALLBACK
def test_kl_mc_num_samples(grader: Grader) -> None:
    _check_num_samples(grader, "kl_mc_multi", 10)
