"""HW3's probe kinds: the objects the engine cannot know (a WGAN critic, a SimSiam model
on a tiny backbone, the ``CosineSimilarity`` module), built in the worker from the
inputs a test sends, and driven the way the test needs. Imported into every worker
before the student's code (``autograder.worker.probes.table``)."""
from __future__ import annotations

from types import ModuleType
from typing import Any, Mapping

import torch
import torch.nn.functional as F

from assignment.models import Critic, TinyEncoder
from autograder.worker.probes import (
    ProbeResult, Tensors, Values, describe, export, gradients, install_substitutes, prepare_inputs,
    replicate_rows, resolve, weighted_sum,
)


def _critic(inputs: Tensors) -> torch.nn.Module:
    state = {k[len("critic."):]: v for k, v in inputs.items() if k.startswith("critic.")}
    critic = Critic(int(state["linear.weight"].shape[1]), int(state["hidden.weight"].shape[0]))
    critic.load_state_dict(state)
    return critic


def probe_critic(mods: Mapping[str, ModuleType], params: dict[str, Any], inputs: Tensors) -> ProbeResult:
    module = mods[params["module"]]
    fn = resolve(module, params["function"])
    critic = _critic(inputs)
    inputs = replicate_rows(inputs, params)
    grad_wrt = list(params.get("grad_wrt", []))
    args = [inputs[n].clone().requires_grad_(n in grad_wrt) for n in params["args"]]
    tensors: Tensors = {}
    values: Values = {}
    out = fn(*args, critic)
    export("out", out, tensors, values)
    wrt: dict[str, torch.Tensor] = {}
    if params.get("param_grads"):
        wrt.update(critic.named_parameters())
    wrt.update((n, a) for n, a in zip(params["args"], args) if n in grad_wrt)
    if wrt:
        if not isinstance(out, torch.Tensor):
            raise TypeError(f"expected a tensor, got {type(out).__name__}")
        gradients([out.sum()], wrt, tensors, values)
    return tensors, values


def _simsiam(module: ModuleType, params: dict[str, Any], inputs: Tensors) -> torch.nn.Module:
    model = module.SimSiam(
        TinyEncoder,
        dim=int(params["dim"]),
        pred_dim=int(params["pred_dim"]),
        stop_gradient=bool(params["stop_gradient"]),
        MLP_mode=params.get("mlp_mode"),
    )
    state = {k[len("model."):]: v for k, v in inputs.items() if k.startswith("model.")}
    if state:
        model.load_state_dict(state)
    # Eval mode: batch-norm uses the stored statistics, so encoding the two views
    # separately or concatenated gives the same values.
    model.eval()
    return model


def probe_simsiam_forward(mods: Mapping[str, ModuleType], params: dict[str, Any], inputs: Tensors) -> ProbeResult:
    model = _simsiam(mods[params["module"]], params, inputs)
    tensors: Tensors = {}
    values: Values = {}
    out = model(inputs["x1"].clone(), inputs["x2"].clone())
    export("out", out, tensors, values)
    if not isinstance(out, (tuple, list)) or len(out) != 4:
        raise TypeError(f"forward must return (p1, p2, z1, z2), got {describe(out)}")
    names = ("p1", "p2", "z1", "z2")
    terms = [weighted_sum(o, inputs[f"cot.{n}"]) for o, n in zip(out, names) if isinstance(o, torch.Tensor)]
    wanted = {n: p for n, p in model.named_parameters() if n in set(params.get("grad_params", []))}
    gradients(terms, wanted, tensors, values)
    return tensors, values


def probe_simsiam_loss(mods: Mapping[str, ModuleType], params: dict[str, Any], inputs: Tensors) -> ProbeResult:
    module = mods[params["module"]]
    install_substitutes(module, params.get("substitutes", {}))
    model = _simsiam(module, params, {})
    names = ("p1", "p2", "z1", "z2")
    args = {n: inputs[n].clone().requires_grad_(True) for n in names}
    tensors: Tensors = {}
    values: Values = {}
    out = model.loss(*(args[n] for n in names))
    export("out", out, tensors, values)
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"loss must return a tensor, got {type(out).__name__}")
    gradients([out.sum()], args, tensors, values)
    return tensors, values


def probe_cosine(mods: Mapping[str, ModuleType], params: dict[str, Any], inputs: Tensors) -> ProbeResult:
    cls = mods[params["module"]].CosineSimilarity
    sim = cls(**params.get("init", {}))
    grad_wrt = list(params.get("grad_wrt", []))
    args = prepare_inputs(inputs, ["x1", "x2"], grad_wrt, params.get("dtype"))
    tensors: Tensors = {}
    values: Values = {}
    out = sim(*args)
    export("out", out, tensors, values)
    if grad_wrt:
        if not isinstance(out, torch.Tensor):
            raise TypeError(f"expected a tensor, got {type(out).__name__}")
        named = dict(zip(["x1", "x2"], args))
        gradients([weighted_sum(out, inputs["cot"])], {n: named[n] for n in grad_wrt}, tensors, values)
    return tensors, values


PROBES = {
    "critic": probe_critic,
    "simsiam_forward": probe_simsiam_forward,
    "simsiam_loss": probe_simsiam_loss,
    "cosine": probe_cosine,
}


def warm_up() -> None:
    """Run this assignment's objects once in the zygote, so that every forked worker
    inherits their lazy set-up instead of paying for it in a probe's time."""
    x = torch.randn(4, 3, 8, 8, requires_grad=True)
    encoder = TinyEncoder(num_classes=4, zero_init_residual=True).eval()
    out = encoder(x)
    loss = F.cosine_similarity(out, out.detach() + 1.0, dim=1).mean()
    (grad,) = torch.autograd.grad(loss, x, create_graph=True)
    grad.reshape(4, -1).norm(dim=1).clamp(min=0.0).pow(2).mean().backward()
    critic = Critic(3)
    critic(torch.rand(2, 3)).sum().backward()
