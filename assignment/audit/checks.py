"""HW3's differential checks for the mutation audit (``python -m autograder audit``): how
two implementations of a random graded function are compared, where no case recipe calls
the function (1.5's Monte Carlo KL, 2.1's penalty). Each check draws its inputs from the
seed it gets, runs the function with torch's global generator seeded alike, and returns
estimates with their standard errors; ``autograder/course/equivalence.py`` judges them at many
standard errors. Instructor-side only: neither zip ships it."""
from __future__ import annotations

import math

import torch

from assignment.penalty import CHECKED_PARAMETERS, draw_critic, draw_segments, segment_moments
from autograder.config import Tolerance
from autograder.course.equivalence import Check, Estimate
from autograder.grading.recipes import Reference, normal, uniform

MC_NAMES = ("mu_q", "logvar_q", "mu_p", "logvar_p")
MC_PAIRS, MC_DIM, MC_REPEATS = 3, 3, 4000
PENALTY_BATCH = 4096


def _moments(name: str, x: torch.Tensor) -> dict[str, Estimate]:
    """The mean and variance over the first dimension, each with its standard error."""
    x = x.double()
    rows = x.shape[0]
    mean = x.mean(0)
    centred = x - mean
    variance = (centred**2).mean(0)
    fourth = (centred**4).mean(0)
    return {
        f"{name}.mean": Estimate(mean, (variance / rows).sqrt()),
        f"{name}.variance": Estimate(variance, ((fourth - variance**2).clamp_min(0.0) / rows).sqrt()),
    }


def _log_normal(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    return -0.5 * (math.log(2 * math.pi) + logvar + (z - mu) ** 2 / logvar.exp()).sum(-1)


def kl_mc(ref: Reference, seed: int, num_samples: int) -> dict[str, Estimate]:
    """The estimates' mean and variance per distribution pair, those of the gradients with
    respect to every input and, with one sample, how far each estimate is from
    ``log q(z) - log p(z)`` at the sample its gradient w.r.t. ``mu_p`` reveals."""
    g = torch.Generator().manual_seed(seed)
    mu_q, mu_p = normal(g, (MC_PAIRS, MC_DIM), 0.7), normal(g, (MC_PAIRS, MC_DIM), 0.7)
    logvar_q = uniform(g, (MC_PAIRS, MC_DIM), -1.0, 1.0)
    logvar_p = logvar_q + uniform(g, (MC_PAIRS, MC_DIM), -0.8, 0.8)
    leaves = [t.repeat(MC_REPEATS, 1).requires_grad_(True) for t in (mu_q, logvar_q, mu_p, logvar_p)]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        out = ref.q1_solution.kl_gaussian_gaussian_mc(*leaves, num_samples=num_samples)
    rows = MC_REPEATS * MC_PAIRS
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (rows,):
        return {"shape": Estimate(torch.tensor(list(getattr(out, "shape", [-1])), dtype=torch.float64))}
    grads = torch.autograd.grad(out.sum(), leaves, allow_unused=True) if out.requires_grad else (None,) * len(leaves)
    estimates = _moments("value", out.detach().reshape(MC_REPEATS, MC_PAIRS))
    for name, leaf, grad in zip(MC_NAMES, leaves, grads):
        value = torch.zeros_like(leaf) if grad is None else grad
        estimates.update(_moments(f"grad.{name}", value.reshape(MC_REPEATS, MC_PAIRS, MC_DIM)))
    if num_samples == 1 and grads[2] is not None:
        q_mu, q_logvar, p_mu, p_logvar = (leaf.detach().double() for leaf in leaves)
        z = p_mu - p_logvar.exp() * grads[2].double()
        own = out.detach().double() - (_log_normal(z, q_mu, q_logvar) - _log_normal(z, p_mu, p_logvar))
        estimates["own_sample"] = Estimate(own.abs().max().reshape(1))
    return estimates


def lp_reg(ref: Reference, seed: int) -> dict[str, Estimate]:
    """The penalty and its gradient w.r.t. the critic's parameters on random critics whose
    gradient norm crosses 1 along every segment (flat data and images: one t per sample,
    norm over all non-batch dimensions), and exactly where x = y."""
    estimates: dict[str, Estimate] = {}
    g = torch.Generator().manual_seed(seed)
    for label, shape, bend in (("flat", (48,), 0.3), ("images", (3, 4, 4), 2.0)):
        critic = draw_critic(g, 48, bend)
        x, y = draw_segments(g, critic, PENALTY_BATCH, shape)
        moments = segment_moments(critic, x, y, g)
        params = dict(critic.named_parameters())
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            out = ref.q2_solution.lp_reg(x, y, critic)
        if not isinstance(out, torch.Tensor) or out.numel() != 1:
            estimates[f"{label}.shape"] = Estimate(torch.tensor(list(getattr(out, "shape", [-1])), dtype=torch.float64))
            continue
        estimates[f"{label}.value"] = Estimate(out.detach().reshape(1), math.sqrt(moments.variance))
        checked = [params[n] for n in CHECKED_PARAMETERS]
        grads = torch.autograd.grad(out.sum(), checked, allow_unused=True) if out.requires_grad else (None,) * len(checked)
        for name, param, grad in zip(CHECKED_PARAMETERS, checked, grads):
            value = torch.zeros_like(param) if grad is None else grad
            estimates[f"{label}.grad.{name}"] = Estimate(value.detach().reshape(moments.grad_mean[name].shape), moments.grad_variance[name].sqrt())
    critic = draw_critic(g, 7, 1.0)
    x = critic.centre.detach() + torch.randn((32, 7), generator=g) / float(critic.curvature.detach())
    out = ref.q2_solution.lp_reg(x, x.clone(), critic)
    if isinstance(out, torch.Tensor) and out.numel() == 1:
        estimates["same_points.value"] = Estimate(out.detach().reshape(1))
        params = list(critic.parameters())
        grads = torch.autograd.grad(out.sum(), params, allow_unused=True) if out.requires_grad else (None,) * len(params)
        for (name, param), grad in zip(critic.named_parameters(), grads):
            estimates[f"same_points.grad.{name}"] = Estimate(torch.zeros_like(param) if grad is None else grad.detach())
    return estimates


STATISTICAL = Tolerance(rtol=1e-3, atol=1e-4, why="float32 rounding of a batch mean; the rest is the standard error")

CHECKS = (
    Check("1.5", "kl_mc_one_sample", lambda ref, seed: kl_mc(ref, seed, 1), STATISTICAL),
    Check("1.5", "kl_mc_five_samples", lambda ref, seed: kl_mc(ref, seed, 5), STATISTICAL),
    Check("2.1", "lp_reg_penalty", lp_reg, STATISTICAL),
)
