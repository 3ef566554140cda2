"""HW3's case recipes: for every graded test, how its inputs are drawn (from the generator
each recipe gets, seeded by the case's name) and how the reference, in float64, turns
them into expected values, gradients and the outputs of known mistakes (for hints).

`python -m autograder fixtures generate` runs them into `fixtures/`; a change here makes
the fixtures stale until they are regenerated. Instructor-side only: neither zip ships it."""
from __future__ import annotations

import copy
import math

import torch

from assignment.models import Critic, TinyEncoder
from autograder.grading.recipes import CaseData, CaseSpec, Reference, f64, normal, uniform, with_grads


# ---------------------------------------------------------------- question 1

def bernoulli_case(ref: Reference, g: torch.Generator, batch: int, dim: int, low: float) -> CaseData:
    mu = uniform(g, (batch, dim), low, 1.0 - low)
    target = (torch.rand((batch, dim), generator=g) < 0.5).float()
    cot = normal(g, (batch,))
    data = CaseData(inputs={"mu": mu, "target": target, "cot": cot})
    d = f64(data.inputs)
    out, grads = with_grads(lambda m: ref.q1_solution.log_likelihood_bernoulli(m, d["target"]), data.inputs, ["mu"], cot)
    data.expected = {"out": out, **grads}
    data.hints = {
        "out:mean": (out / dim, "you averaged over the features; the log-likelihood sums over them."),
        "out:no_neg_term": ((d["target"] * d["mu"].log()).sum(1), "the (1 - target) * log(1 - mu) term is missing."),
        "out:sum_all": (out.sum().expand(batch), "you summed over the batch as well; return one value per example."),
    }
    return data


def normal_case(ref: Reference, g: torch.Generator, batch: int, dim: int, low: float, high: float) -> CaseData:
    mu = normal(g, (batch, dim))
    logvar = uniform(g, (batch, dim), low, high)
    z = mu + normal(g, (batch, dim), 1.5)
    cot = normal(g, (batch,))
    data = CaseData(inputs={"mu": mu, "logvar": logvar, "z": z, "cot": cot})
    out, grads = with_grads(ref.q1_solution.log_likelihood_normal, data.inputs, ["mu", "logvar", "z"], cot)
    data.expected = {"out": out, **grads}
    d = f64(data.inputs)
    mu, logvar, z = d["mu"], d["logvar"], d["z"]
    var = logvar.exp()
    data.hints = {
        "out:no_const": (out + 0.5 * dim * math.log(2 * math.pi), "the -0.5 * log(2 * pi) constant (per feature) is missing."),
        "out:logstd": ((-0.5 * math.log(2 * math.pi) - logvar - 0.5 * (z - mu) ** 2 / (2 * logvar).exp()).sum(1), "logvar is log(sigma^2), not log(sigma)."),
        "out:std_for_var": ((-0.5 * (math.log(2 * math.pi) + logvar + (z - mu) ** 2 / var.sqrt())).sum(1), "divide the squared error by the variance exp(logvar), not by the standard deviation."),
        "out:mean": (out / dim, "you averaged over the features; the log-density sums over them."),
    }
    return data


def lme_case(ref: Reference, g: torch.Generator, batch: int, k: int, centre: float, spread: float) -> CaseData:
    signs = torch.tensor([[(-1.0) ** i] for i in range(batch)])  # rows near -c and +c in one batch
    y = centre * signs + normal(g, (batch, k), spread)
    cot = normal(g, (batch,))
    data = CaseData(inputs={"y": y, "cot": cot})
    out, grads = with_grads(ref.q1_solution.log_mean_exp, data.inputs, ["y"], cot)
    data.expected = {"out": out, **grads}
    data.hints = {
        "out:logsumexp": (out + math.log(k), "this is log-SUM-exp; log-MEAN-exp also divides by K (subtract log K)."),
        "out:mean": (y.double().mean(1), "you returned the mean of y; exponentiate, average, then take the log."),
    }
    return data


def kl_inputs(g: torch.Generator, batch: int, dim: int, spread: float) -> dict[str, torch.Tensor]:
    return {
        "mu_q": normal(g, (batch, dim)),
        "logvar_q": uniform(g, (batch, dim), -spread, spread),
        "mu_p": normal(g, (batch, dim)),
        "logvar_p": uniform(g, (batch, dim), -spread, spread),
        "cot": normal(g, (batch,)),
    }


def kl_case(ref: Reference, g: torch.Generator, batch: int, dim: int, spread: float) -> CaseData:
    data = CaseData(inputs=kl_inputs(g, batch, dim, spread))
    names = ["mu_q", "logvar_q", "mu_p", "logvar_p"]
    out, grads = with_grads(ref.q1_solution.kl_gaussian_gaussian_analytic, data.inputs, names, data.inputs["cot"])
    data.expected = {"out": out, **grads}
    i = f64(data.inputs)
    data.hints = {
        "out:swapped": (ref.q1_solution.kl_gaussian_gaussian_analytic(i["mu_p"], i["logvar_p"], i["mu_q"], i["logvar_q"]), "you computed KL(p || q); the expectation is under q (the first two arguments)."),
        "out:no_half": (2 * out, "the factor 0.5 is missing."),
        "out:no_minus_one": (out + 0.5 * dim, "the -1 inside the sum (per feature) is missing."),
    }
    return data


def kl_mc_case(ref: Reference, g: torch.Generator, pairs: int, repeats: int, dim: int) -> CaseData:
    """Distribution pairs, each replicated ``repeats`` times in the worker, with the exact
    KL and the exact variance of the single-sample estimator of each pair."""
    mu_q = normal(g, (pairs, dim), 0.7)
    mu_p = normal(g, (pairs, dim), 0.7)
    logvar_q = uniform(g, (pairs, dim), 0.6, 1.2) * torch.where(torch.rand((pairs, dim), generator=g) < 0.5, -1.0, 1.0)
    logvar_p = logvar_q + uniform(g, (pairs, dim), -0.8, 0.8)
    inputs = {"mu_q": mu_q, "logvar_q": logvar_q, "mu_p": mu_p, "logvar_p": logvar_p}
    d = f64(inputs)
    kl = ref.q1_solution.kl_gaussian_gaussian_analytic(d["mu_q"], d["logvar_q"], d["mu_p"], d["logvar_p"])
    a = (d["mu_q"] - d["mu_p"]) / (0.5 * d["logvar_p"]).exp()
    b2 = (d["logvar_q"] - d["logvar_p"]).exp()
    variance = (0.5 * (b2 - 1) ** 2 + a**2 * b2).sum(1)
    leaves = {k: v.clone().requires_grad_(True) for k, v in d.items()}
    kl_graph = ref.q1_solution.kl_gaussian_gaussian_analytic(leaves["mu_q"], leaves["logvar_q"], leaves["mu_p"], leaves["logvar_p"])
    grad_mu_q, grad_logvar_q, grad_logvar_p = torch.autograd.grad(kl_graph.sum(), [leaves["mu_q"], leaves["logvar_q"], leaves["logvar_p"]])
    expected = {"kl": kl, "variance": variance, "repeats": torch.tensor(repeats), "grad.mu_q": grad_mu_q, "grad.logvar_q": grad_logvar_q,
                "grad.logvar_p": grad_logvar_p}
    return CaseData(inputs=inputs, expected=expected)


# ---------------------------------------------------------------- question 2

def _critic_state(critic: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {f"critic.{k}": v.detach().clone() for k, v in critic.state_dict().items()}


def vf_case(ref: Reference, g: torch.Generator, shape: tuple[int, ...]) -> CaseData:
    """A smooth random critic; the value and the gradients with respect to both sample
    sets (the generator trains through ``q``)."""
    features = int(torch.tensor(shape[1:]).prod())
    critic = Critic(features)
    with torch.no_grad():
        for param in critic.parameters():
            param.copy_(normal(g, tuple(param.shape), 0.5))
    p = normal(g, shape) + 0.5
    q = normal(g, shape)
    cot = torch.ones(())
    data = CaseData(inputs={"p": p, "q": q, **_critic_state(critic)})
    critic64 = copy.deepcopy(critic).double()
    out, grads = with_grads(lambda a, b: ref.q2_solution.vf_wasserstein_distance(a, b, critic64).reshape(()), data.inputs, ["p", "q"], cot)
    data.expected = {"out": out, **grads}
    with torch.no_grad():
        data.hints = {
            "out:sum": (critic64(p.double()).sum() - critic64(q.double()).sum(), "you summed the critic's scores; the estimate uses means."),
        }
    return data


# ---------------------------------------------------------------- question 3

def _simsiam(ref: Reference, g: torch.Generator, dim: int, pred_dim: int, stop_gradient: bool, mlp_mode: str | None) -> torch.nn.Module:
    torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=g)))
    model = ref.q3_solution.SimSiam(TinyEncoder, dim=dim, pred_dim=pred_dim, stop_gradient=stop_gradient, MLP_mode=mlp_mode)
    with torch.no_grad():
        for name, buffer in model.named_buffers():
            if name.endswith("running_mean"):
                buffer.copy_(normal(g, tuple(buffer.shape), 0.2))
            elif name.endswith("running_var"):
                buffer.copy_(uniform(g, tuple(buffer.shape), 0.5, 1.5))
        for name, param in model.named_parameters():
            if name.endswith("weight") and param.dim() == 1:
                param.copy_(uniform(g, tuple(param.shape), 0.5, 1.5))
            elif name.endswith("bias"):
                param.copy_(normal(g, tuple(param.shape), 0.1))
    model.eval()
    return model


SIMSIAM_GRAD_PARAMS = ("encoder.conv.weight", "encoder.proj.weight", "encoder.fc.0.weight", "encoder.fc.6.weight", "predictor.0.weight", "predictor.3.weight")


def simsiam_forward_case(ref: Reference, g: torch.Generator, batch: int, stop_gradient: bool, mlp_mode: str | None) -> CaseData:
    dim, pred_dim = 16, 8
    model = _simsiam(ref, g, dim, pred_dim, stop_gradient, mlp_mode)
    x1 = normal(g, (batch, 3, 8, 8))
    x2 = normal(g, (batch, 3, 8, 8))
    cots = {f"cot.{n}": normal(g, (batch, dim)) for n in ("p1", "p2", "z1", "z2")}
    state = {f"model.{k}": v.detach().clone() for k, v in model.state_dict().items()}
    model64 = copy.deepcopy(model).double()
    outs = model64(x1.double(), x2.double())
    terms = [(o * cots[f"cot.{n}"].double()).sum() for o, n in zip(outs, ("p1", "p2", "z1", "z2")) if o.requires_grad]
    params = {n: p for n, p in model64.named_parameters() if n in SIMSIAM_GRAD_PARAMS}
    grads = torch.autograd.grad(sum(terms), list(params.values()), allow_unused=True)
    expected = {f"out.{i}": o.detach() for i, o in enumerate(outs)}
    for name, param, grad in zip(params, params.values(), grads):
        expected[f"grad.{name}"] = torch.zeros_like(param) if grad is None else grad
    return CaseData(inputs={"x1": x1, "x2": x2, **cots, **state}, expected=expected)


def cosine_case(ref: Reference, g: torch.Generator, shape: tuple[int, ...], dim: int, zero_rows: bool) -> CaseData:
    x1 = normal(g, shape) * 2.0
    x2 = normal(g, shape) + 0.3 * x1
    if zero_rows:
        x1[0].zero_()
        x2[-1].zero_()
    sim = ref.q3_solution.CosineSimilarity(dim=dim)
    reduced = tuple(s for i, s in enumerate(shape) if i != dim)
    cot = normal(g, reduced)
    data = CaseData(inputs={"x1": x1, "x2": x2, "cot": cot})
    out, grads = with_grads(lambda a, b: sim(a, b), data.inputs, ["x1", "x2"], cot)
    data.expected = {"out": out, **grads}
    d = f64(data.inputs)
    dot = (d["x1"] * d["x2"]).sum(dim)
    data.hints = {
        "out:one_norm_1": (dot / d["x1"].norm(dim=dim).clamp_min(1e-8), "divide by the product of BOTH norms, ||x1|| * ||x2||."),
        "out:one_norm_2": (dot / d["x2"].norm(dim=dim).clamp_min(1e-8), "divide by the product of BOTH norms, ||x1|| * ||x2||."),
        "out:dot": (dot, "you returned the dot product; divide it by the product of the norms."),
    }
    return data


def simsiam_loss_case(ref: Reference, g: torch.Generator, batch: int, dim: int) -> CaseData:
    names = ("p1", "p2", "z1", "z2")
    inputs = {n: normal(g, (batch, dim)) for n in names}
    model = _simsiam(ref, g, dim, 4, True, None)
    leaves = {n: t.double().clone().requires_grad_(True) for n, t in inputs.items()}
    out = model.loss(*leaves.values())
    grads = torch.autograd.grad(out, list(leaves.values()))
    data = CaseData(inputs=inputs, expected={"out": out.detach(), **{f"grad.{n}": gr for n, gr in zip(names, grads)}})
    cos = torch.nn.functional.cosine_similarity
    p1, p2, z1, z2 = (leaves[n].detach() for n in names)
    data.hints = {
        "out:one_sided": (-cos(p1, z2).mean(), "the loss is symmetric: average the two terms cos(p1, z2) and cos(p2, z1)."),
        "out:one_sided_half": (-0.5 * cos(p1, z2).mean(), "the loss is symmetric: include both cos(p1, z2) and cos(p2, z1)."),
        "out:same_view": (-0.5 * (cos(p1, z1).mean() + cos(p2, z2).mean()), "pair each prediction with the OTHER view's projection: cos(p1, z2) and cos(p2, z1)."),
        "out:sum": (-0.5 * (cos(p1, z2).sum() + cos(p2, z1).sum()), "average the similarities over the batch instead of summing them."),
        "out:unnegated": (-out.detach(), "the loss is the NEGATIVE cosine similarity: minimising it makes the views agree."),
    }
    return data



CASES: tuple[CaseSpec, ...] = (
    CaseSpec("bernoulli_basic", "1.1.2", lambda r, g: bernoulli_case(r, g, 6, 10, 0.05)),
    CaseSpec("bernoulli_hidden", "1.1.3", lambda r, g: bernoulli_case(r, g, 32, 50, 0.02)),
    CaseSpec("normal_basic", "1.2.2", lambda r, g: normal_case(r, g, 6, 8, -1.5, 1.5)),
    CaseSpec("normal_hidden", "1.2.3", lambda r, g: normal_case(r, g, 32, 20, -3.0, 2.0)),
    CaseSpec("lme_basic", "1.3.1", lambda r, g: lme_case(r, g, 5, 7, 0.0, 3.0)),
    CaseSpec("lme_extreme", "1.3.2", lambda r, g: lme_case(r, g, 6, 9, 1000.0, 5.0)),
    CaseSpec("lme_hidden", "1.3.3", lambda r, g: lme_case(r, g, 16, 200, 500.0, 20.0)),
    CaseSpec("kl_basic", "1.4.1", lambda r, g: kl_case(r, g, 6, 5, 1.5)),
    CaseSpec("kl_gradcheck", "1.4.3", lambda r, g: CaseData(inputs=kl_inputs(g, 2, 3, 1.5))),
    CaseSpec("kl_hidden", "1.4.2", lambda r, g: kl_case(r, g, 32, 16, 2.5)),
    CaseSpec("kl_mc_small", "1.5.1", lambda r, g: kl_mc_case(r, g, 6, 1, 5)),
    # Sized for a python loop over rows and samples (about 1 ms per row and sample with
    # its backward pass) to finish well inside a probe's timeout.
    CaseSpec("kl_mc_single", "1.5.2", lambda r, g: kl_mc_case(r, g, 4, 1000, 3)),
    CaseSpec("kl_mc_variance", "1.5.3", lambda r, g: kl_mc_case(r, g, 4, 1000, 3)),
    CaseSpec("kl_mc_multi", "1.5.4", lambda r, g: kl_mc_case(r, g, 2, 250, 3)),
    # The same property on a visible case (1.5.2 checks more than its own point: a mistake
    # with num_samples is shown before the deadline), small enough for loops over samples.
    CaseSpec("kl_mc_multi_visible", "1.5.2", lambda r, g: kl_mc_case(r, g, 2, 120, 3)),
    CaseSpec("vf_flat", "2.1.1", lambda r, g: vf_case(r, g, (16, 6))),
    CaseSpec("vf_images", "2.1.1", lambda r, g: vf_case(r, g, (8, 3, 4, 4))),
    CaseSpec("simsiam_stopgrad", "3.1.1", lambda r, g: simsiam_forward_case(r, g, 8, True, None)),
    CaseSpec("simsiam_no_stopgrad", "3.1.3", lambda r, g: simsiam_forward_case(r, g, 8, False, None)),
    # 3.1.2 also checks that stop_gradient=False detaches nothing, on a visible case.
    CaseSpec("simsiam_no_stopgrad_visible", "3.1.2", lambda r, g: simsiam_forward_case(r, g, 4, False, None)),
    CaseSpec("simsiam_no_pred", "3.1.4", lambda r, g: simsiam_forward_case(r, g, 6, True, "no_pred_mlp")),
    CaseSpec("cosine_basic", "3.2.1", lambda r, g: cosine_case(r, g, (8, 5), 1, False)),
    CaseSpec("cosine_zero", "3.2.2", lambda r, g: cosine_case(r, g, (6, 4), 1, True)),
    CaseSpec("cosine_hidden", "3.2.3", lambda r, g: cosine_case(r, g, (32, 24), 1, False)),
    CaseSpec("loss_basic", "3.3.1", lambda r, g: simsiam_loss_case(r, g, 8, 6)),
    CaseSpec("loss_hidden", "3.3.3", lambda r, g: simsiam_loss_case(r, g, 32, 16)),
)


