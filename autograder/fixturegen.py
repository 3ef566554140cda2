"""Instructor-side: build every test case's inputs from fixed seeds, run the reference
on them, and freeze inputs, expected outputs and gradients, and known-mistake outputs
(for hints) into safetensors files with a manifest.

Needs ``reference/``, which is never shipped: the autograder zip and the student kit
carry the frozen files only."""
from __future__ import annotations

import hashlib
import importlib.util
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Callable

import torch
from safetensors.torch import save_file

from autograder.compare import tolerance_ratio
from autograder.config import GradingConfig
from autograder.judge import DEFAULT_TOLERANCE
from autograder.fixture_store import FILES, MANIFEST, sha256
from autograder.worker import models


@dataclass
class CaseData:
    inputs: dict[str, torch.Tensor] = field(default_factory=dict)
    expected: dict[str, torch.Tensor] = field(default_factory=dict)
    hints: dict[str, tuple[torch.Tensor, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Reference:
    q1: ModuleType
    q2: ModuleType
    q3: ModuleType


def load_reference(directory: Path) -> Reference:
    mods = []
    for name in ("q1_solution", "q2_solution", "q3_solution"):
        path = directory / f"{name}.py"
        if not path.exists():
            raise FileNotFoundError(f"{path}: reference solution not found (fixtures are generated from reference/)")
        spec = importlib.util.spec_from_file_location(f"_reference_{name}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        mods.append(module)
    return Reference(*mods)


def case_seed(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big")


def _uniform(g: torch.Generator, shape: tuple[int, ...], low: float, high: float) -> torch.Tensor:
    return low + (high - low) * torch.rand(shape, generator=g)


def _normal(g: torch.Generator, shape: tuple[int, ...], scale: float = 1.0) -> torch.Tensor:
    return scale * torch.randn(shape, generator=g)


def _with_grads(fn: Callable[..., torch.Tensor], inputs: dict[str, torch.Tensor], names: list[str], cot: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    leaves = {n: inputs[n].clone().requires_grad_(True) for n in names}
    out = fn(*leaves.values())
    grads = torch.autograd.grad((out * cot).sum(), list(leaves.values()))
    return out.detach(), {f"grad.{n}": g for n, g in zip(names, grads)}


# ---------------------------------------------------------------- question 1

def bernoulli_case(ref: Reference, g: torch.Generator, batch: int, dim: int, low: float) -> CaseData:
    mu = _uniform(g, (batch, dim), low, 1.0 - low)
    target = (torch.rand((batch, dim), generator=g) < 0.5).float()
    cot = _normal(g, (batch,))
    data = CaseData(inputs={"mu": mu, "target": target, "cot": cot})
    out, grads = _with_grads(lambda m: ref.q1.log_likelihood_bernoulli(m, target), data.inputs, ["mu"], cot)
    data.expected = {"out": out, **grads}
    data.hints = {
        "out:mean": (out / dim, "you averaged over the features; the log-likelihood sums over them."),
        "out:no_neg_term": ((target * mu.log()).sum(1), "the (1 - target) * log(1 - mu) term is missing."),
        "out:sum_all": (out.sum().expand(batch), "you summed over the batch as well; return one value per example."),
    }
    return data


def normal_case(ref: Reference, g: torch.Generator, batch: int, dim: int, low: float, high: float) -> CaseData:
    mu = _normal(g, (batch, dim))
    logvar = _uniform(g, (batch, dim), low, high)
    z = mu + _normal(g, (batch, dim), 1.5)
    cot = _normal(g, (batch,))
    data = CaseData(inputs={"mu": mu, "logvar": logvar, "z": z, "cot": cot})
    out, grads = _with_grads(ref.q1.log_likelihood_normal, data.inputs, ["mu", "logvar", "z"], cot)
    data.expected = {"out": out, **grads}
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
    y = centre * signs + _normal(g, (batch, k), spread)
    cot = _normal(g, (batch,))
    data = CaseData(inputs={"y": y, "cot": cot})
    out, grads = _with_grads(ref.q1.log_mean_exp, data.inputs, ["y"], cot)
    data.expected = {"out": out, **grads}
    data.hints = {
        "out:logsumexp": (out + math.log(k), "this is log-SUM-exp; log-MEAN-exp also divides by K (subtract log K)."),
        "out:mean": (y.mean(1), "you returned the mean of y; exponentiate, average, then take the log."),
    }
    return data


def kl_inputs(g: torch.Generator, batch: int, dim: int, spread: float) -> dict[str, torch.Tensor]:
    return {
        "mu_q": _normal(g, (batch, dim)),
        "logvar_q": _uniform(g, (batch, dim), -spread, spread),
        "mu_p": _normal(g, (batch, dim)),
        "logvar_p": _uniform(g, (batch, dim), -spread, spread),
        "cot": _normal(g, (batch,)),
    }


def kl_case(ref: Reference, g: torch.Generator, batch: int, dim: int, spread: float) -> CaseData:
    data = CaseData(inputs=kl_inputs(g, batch, dim, spread))
    names = ["mu_q", "logvar_q", "mu_p", "logvar_p"]
    out, grads = _with_grads(ref.q1.kl_gaussian_gaussian_analytic, data.inputs, names, data.inputs["cot"])
    data.expected = {"out": out, **grads}
    i = data.inputs
    data.hints = {
        "out:swapped": (ref.q1.kl_gaussian_gaussian_analytic(i["mu_p"], i["logvar_p"], i["mu_q"], i["logvar_q"]), "you computed KL(p || q); the expectation is under q (the first two arguments)."),
        "out:no_half": (2 * out, "the factor 0.5 is missing."),
        "out:no_minus_one": (out + 0.5 * dim, "the -1 inside the sum (per feature) is missing."),
    }
    return data


def kl_mc_case(ref: Reference, g: torch.Generator, pairs: int, repeats: int, dim: int) -> CaseData:
    """Distribution pairs, each replicated ``repeats`` times, with the exact KL and the
    exact variance of the single-sample estimator for each pair (float64)."""
    mu_q = _normal(g, (pairs, dim), 0.7)
    mu_p = _normal(g, (pairs, dim), 0.7)
    logvar_q = _uniform(g, (pairs, dim), 0.6, 1.2) * torch.where(torch.rand((pairs, dim), generator=g) < 0.5, -1.0, 1.0)
    logvar_p = logvar_q + _uniform(g, (pairs, dim), -0.8, 0.8)
    kl = ref.q1.kl_gaussian_gaussian_analytic(mu_q.double(), logvar_q.double(), mu_p.double(), logvar_p.double())
    a = (mu_q.double() - mu_p.double()) / (0.5 * logvar_p.double()).exp()
    b2 = (logvar_q.double() - logvar_p.double()).exp()
    variance = (0.5 * (b2 - 1) ** 2 + a**2 * b2).sum(1)
    # Stored once per pair; the probe replicates each row ``repeats`` times in the worker.
    inputs = {"mu_q": mu_q, "logvar_q": logvar_q, "mu_p": mu_p, "logvar_p": logvar_p}
    return CaseData(inputs=inputs, expected={"kl": kl, "variance": variance, "repeats": torch.tensor(repeats)})


# ---------------------------------------------------------------- question 2

def _critic_state(critic: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {f"critic.{k}": v.detach().clone() for k, v in critic.state_dict().items()}


def vf_case(ref: Reference, g: torch.Generator, shape: tuple[int, ...]) -> CaseData:
    features = int(torch.tensor(shape[1:]).prod())
    critic = models.MLPCritic(features)
    with torch.no_grad():
        for param in critic.parameters():
            param.copy_(_normal(g, tuple(param.shape), 0.5))
    p = _normal(g, shape) + 0.5
    q = _normal(g, shape)
    out = ref.q2.vf_wasserstein_distance(p, q, critic).detach()
    data = CaseData(inputs={"p": p, "q": q, **_critic_state(critic)}, expected={"out": out})
    with torch.no_grad():
        data.hints = {
            "out:sum": (critic(p).sum() - critic(q).sum(), "you summed the critic's scores; the estimate uses means."),
        }
    return data


def linear_critic_case(ref: Reference, g: torch.Generator, batch: int, dim: int, norm: float) -> CaseData:
    critic = models.LinearCritic(dim)
    with torch.no_grad():
        w = _normal(g, (1, dim))
        critic.linear.weight.copy_(w / w.norm() * norm)
        critic.linear.bias.copy_(_normal(g, (1,)))
    x = _normal(g, (batch, dim)) + 1.0
    y = _normal(g, (batch, dim))
    torch.manual_seed(case_seed(f"linear{norm}"))
    out = ref.q2.lp_reg(x, y, critic)
    grads = torch.autograd.grad(out, list(critic.parameters()), allow_unused=True)
    expected = {"out": out.detach()}
    for (name, _), grad in zip(critic.named_parameters(), grads):
        expected[f"grad.{name}"] = torch.zeros_like(_) if grad is None else grad
    data = CaseData(inputs={"x": x, "y": y, **_critic_state(critic)}, expected=expected)
    data.hints = {
        "out:two_sided": (torch.tensor((norm - 1.0) ** 2), "your penalty is two-sided; WGAN-LP penalises only gradient norms above 1: max(0, ||grad|| - 1)^2."),
        "out:squared_norm": (torch.tensor(max(0.0, norm**2 - 1.0) ** 2), "you used the squared gradient norm; take the L2 norm itself."),
    }
    return data


def quadratic_critic_case(ref: Reference, g: torch.Generator, shape: tuple[int, ...]) -> CaseData:
    """``f = 0.5 ||x||^2``, ``y = 0`` and ``||x_i|| = 2``: the gradient norm at ``x_hat`` is
    ``2 t``, so the one-sided penalty has mean 1/6 and variance 1/10 - 1/36 for one ``t``
    per sample; per-element ``t``, a two-sided penalty, a squared norm, no interpolation
    or a norm over the wrong dimensions all move the mean far away. One row is stored;
    the probe replicates it over the batch (every row gets its own ``t``)."""
    critic = models.QuadraticCritic()
    direction = _normal(g, (1, *shape)).abs() + 0.5
    x = direction / direction.norm() * 2.0
    y = torch.zeros_like(x)
    expected = {"mean": torch.tensor(1.0 / 6.0, dtype=torch.float64), "variance": torch.tensor(1.0 / 10.0 - 1.0 / 36.0, dtype=torch.float64)}
    return CaseData(inputs={"x": x, "y": y, **_critic_state(critic)}, expected=expected)


# ---------------------------------------------------------------- question 3

def _simsiam(ref: Reference, g: torch.Generator, dim: int, pred_dim: int, stop_gradient: bool, mlp_mode: str | None) -> torch.nn.Module:
    torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=g)))
    model = ref.q3.SimSiam(models.TinyEncoder, dim=dim, pred_dim=pred_dim, stop_gradient=stop_gradient, MLP_mode=mlp_mode)
    with torch.no_grad():
        for name, buffer in model.named_buffers():
            if name.endswith("running_mean"):
                buffer.copy_(_normal(g, tuple(buffer.shape), 0.2))
            elif name.endswith("running_var"):
                buffer.copy_(_uniform(g, tuple(buffer.shape), 0.5, 1.5))
        for name, param in model.named_parameters():
            if name.endswith("weight") and param.dim() == 1:
                param.copy_(_uniform(g, tuple(param.shape), 0.5, 1.5))
            elif name.endswith("bias"):
                param.copy_(_normal(g, tuple(param.shape), 0.1))
    model.eval()
    return model


SIMSIAM_GRAD_PARAMS = ("encoder.conv.weight", "encoder.proj.weight", "encoder.fc.0.weight", "encoder.fc.6.weight", "predictor.0.weight", "predictor.3.weight")


def simsiam_forward_case(ref: Reference, g: torch.Generator, batch: int, stop_gradient: bool, mlp_mode: str | None) -> CaseData:
    dim, pred_dim = 16, 8
    model = _simsiam(ref, g, dim, pred_dim, stop_gradient, mlp_mode)
    x1 = _normal(g, (batch, 3, 8, 8))
    x2 = _normal(g, (batch, 3, 8, 8))
    cots = {f"cot.{n}": _normal(g, (batch, dim)) for n in ("p1", "p2", "z1", "z2")}
    outs = model(x1, x2)
    terms = [(o * cots[f"cot.{n}"]).sum() for o, n in zip(outs, ("p1", "p2", "z1", "z2")) if o.requires_grad]
    params = {n: p for n, p in model.named_parameters() if n in SIMSIAM_GRAD_PARAMS}
    grads = torch.autograd.grad(sum(terms), list(params.values()), allow_unused=True)
    expected = {f"out.{i}": o.detach() for i, o in enumerate(outs)}
    for name, param, grad in zip(params, params.values(), grads):
        expected[f"grad.{name}"] = torch.zeros_like(param) if grad is None else grad
    state = {f"model.{k}": v.detach().clone() for k, v in model.state_dict().items()}
    return CaseData(inputs={"x1": x1, "x2": x2, **cots, **state}, expected=expected)


def cosine_case(ref: Reference, g: torch.Generator, shape: tuple[int, ...], dim: int, zero_rows: bool) -> CaseData:
    x1 = _normal(g, shape) * 2.0
    x2 = _normal(g, shape) + 0.3 * x1
    if zero_rows:
        x1[0].zero_()
        x2[-1].zero_()
    sim = ref.q3.CosineSimilarity(dim=dim)
    reduced = tuple(s for i, s in enumerate(shape) if i != dim)
    cot = _normal(g, reduced)
    data = CaseData(inputs={"x1": x1, "x2": x2, "cot": cot})
    out, grads = _with_grads(lambda a, b: sim(a, b), data.inputs, ["x1", "x2"], cot)
    data.expected = {"out": out, **grads}
    dot = (x1 * x2).sum(dim)
    data.hints = {
        "out:one_norm_1": (dot / x1.norm(dim=dim).clamp_min(1e-8), "divide by the product of BOTH norms, ||x1|| * ||x2||."),
        "out:one_norm_2": (dot / x2.norm(dim=dim).clamp_min(1e-8), "divide by the product of BOTH norms, ||x1|| * ||x2||."),
        "out:dot": (dot, "you returned the dot product; divide it by the product of the norms."),
    }
    return data


def simsiam_loss_case(ref: Reference, g: torch.Generator, batch: int, dim: int) -> CaseData:
    names = ("p1", "p2", "z1", "z2")
    inputs = {n: _normal(g, (batch, dim)) for n in names}
    model = _simsiam(ref, g, dim, 4, True, None)
    leaves = {n: t.clone().requires_grad_(True) for n, t in inputs.items()}
    out = model.loss(*leaves.values())
    grads = torch.autograd.grad(out, list(leaves.values()))
    data = CaseData(inputs=inputs, expected={"out": out.detach(), **{f"grad.{n}": gr for n, gr in zip(names, grads)}})
    cos = torch.nn.functional.cosine_similarity
    p1, p2, z1, z2 = (inputs[n] for n in names)
    data.hints = {
        "out:one_sided": (-cos(p1, z2).mean(), "the loss is symmetric: average the two terms cos(p1, z2) and cos(p2, z1)."),
        "out:one_sided_half": (-0.5 * cos(p1, z2).mean(), "the loss is symmetric: include both cos(p1, z2) and cos(p2, z1)."),
        "out:same_view": (-0.5 * (cos(p1, z1).mean() + cos(p2, z2).mean()), "pair each prediction with the OTHER view's projection: cos(p1, z2) and cos(p2, z1)."),
        "out:sum": (-0.5 * (cos(p1, z2).sum() + cos(p2, z1).sum()), "average the similarities over the batch instead of summing them."),
    }
    return data


@dataclass(frozen=True)
class CaseSpec:
    name: str
    test: str
    build: Callable[[Reference, torch.Generator], CaseData]


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
    CaseSpec("kl_mc_small", "1.5.1", lambda r, g: CaseData(inputs=kl_inputs(g, 6, 5, 1.5))),
    CaseSpec("kl_mc_single", "1.5.2", lambda r, g: kl_mc_case(r, g, 4, 3000, 3)),
    CaseSpec("kl_mc_variance", "1.5.3", lambda r, g: kl_mc_case(r, g, 4, 3000, 3)),
    CaseSpec("kl_mc_multi", "1.5.4", lambda r, g: kl_mc_case(r, g, 4, 2000, 3)),
    CaseSpec("vf_flat", "2.1.1", lambda r, g: vf_case(r, g, (16, 6))),
    CaseSpec("vf_images", "2.1.1", lambda r, g: vf_case(r, g, (8, 3, 4, 4))),
    CaseSpec("lp_linear_steep", "2.1.2", lambda r, g: linear_critic_case(r, g, 64, 5, 2.0)),
    CaseSpec("lp_linear_flat", "2.1.2", lambda r, g: linear_critic_case(r, g, 64, 5, 0.5)),
    CaseSpec("lp_linear_grad", "2.1.3", lambda r, g: linear_critic_case(r, g, 32, 7, 1.5)),
    CaseSpec("lp_quadratic_images", "2.1.4", lambda r, g: quadratic_critic_case(r, g, (3, 4, 4))),
    CaseSpec("simsiam_stopgrad", "3.1.1", lambda r, g: simsiam_forward_case(r, g, 8, True, None)),
    CaseSpec("simsiam_no_stopgrad", "3.1.3", lambda r, g: simsiam_forward_case(r, g, 8, False, None)),
    CaseSpec("simsiam_no_pred", "3.1.4", lambda r, g: simsiam_forward_case(r, g, 6, True, "no_pred_mlp")),
    CaseSpec("cosine_basic", "3.2.1", lambda r, g: cosine_case(r, g, (8, 5), 1, False)),
    CaseSpec("cosine_zero", "3.2.2", lambda r, g: cosine_case(r, g, (6, 4), 1, True)),
    CaseSpec("cosine_dims", "3.2.3", lambda r, g: cosine_case(r, g, (4, 6, 3), 2, False)),
    CaseSpec("loss_basic", "3.3.1", lambda r, g: simsiam_loss_case(r, g, 8, 6)),
    CaseSpec("loss_hidden", "3.3.3", lambda r, g: simsiam_loss_case(r, g, 32, 16)),
)


def generate(config: GradingConfig, reference_dir: Path, out_dir: Path) -> dict[str, object]:
    """Write the fixture files and manifest; returns the manifest.

    One thread: the order of float reductions, hence the bytes, would otherwise depend
    on the machine's core count."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _generate(config, reference_dir, out_dir)
    finally:
        torch.set_num_threads(threads)


def _generate(config: GradingConfig, reference_dir: Path, out_dir: Path) -> dict[str, object]:
    ref = load_reference(reference_dir)
    tensors: dict[str, dict[str, torch.Tensor]] = {"visible": {}, "hidden": {}}
    cases: dict[str, object] = {}
    for spec in CASES:
        test = config.test(spec.test)
        visibility = "visible" if not test.hidden else "hidden"
        seed = case_seed(spec.name)
        generator = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        data = spec.build(ref, generator)
        bucket = tensors[visibility]
        for role, mapping in (("in", data.inputs), ("exp", data.expected)):
            for key, value in mapping.items():
                bucket[f"{spec.name}/{role}/{key}"] = value.detach().contiguous().clone()
        tolerance = test.tolerance or DEFAULT_TOLERANCE
        # A "mistake" that gives the right answer on this case cannot be hinted at here.
        data.hints = {
            key: (value, text)
            for key, (value, text) in data.hints.items()
            if tolerance_ratio(value.detach().to(data.expected[key.split(":", 1)[0]].dtype), data.expected[key.split(":", 1)[0]], tolerance) > 1.0
        }
        for key, (value, _) in data.hints.items():
            bucket[f"{spec.name}/hint/{key}"] = value.detach().to(torch.float32).contiguous().clone()
        cases[spec.name] = {
            "test": spec.test,
            "visibility": visibility,
            "seed": seed,
            "tolerance": None if test.tolerance is None else {"rtol": test.tolerance.rtol, "atol": test.tolerance.atol},
            "hints": {key: text for key, (_, text) in sorted(data.hints.items())},
        }
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {}
    for visibility, name in FILES.items():
        path = out_dir / name
        save_file(tensors[visibility], str(path), metadata={"torch_version": torch.__version__})
        files[name] = sha256(path)
    manifest = {
        "generated_by": "python -m autograder fixtures generate",
        "torch_version": torch.__version__,
        "files": files,
        "cases": cases,
    }
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return manifest
