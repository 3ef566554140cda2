"""The probes: each one calls the student's code the way a test needs and reports
plain tensors and JSON values. Probes never see expected values."""
from __future__ import annotations

from types import ModuleType
from typing import Any, Callable, Mapping

import torch

from autograder.worker.models import Critic, TinyEncoder

Tensors = dict[str, torch.Tensor]
Values = dict[str, Any]
ProbeResult = tuple[Tensors, Values]


def describe(obj: Any) -> dict[str, Any]:
    """What was returned, in words the trusted side can judge and quote."""
    if isinstance(obj, torch.Tensor):
        return {
            "type": "Tensor",
            "dtype": str(obj.dtype).replace("torch.", ""),
            "shape": list(obj.shape),
            "requires_grad": bool(obj.requires_grad),
            "has_grad_fn": obj.grad_fn is not None,
        }
    if isinstance(obj, (tuple, list)):
        return {"type": type(obj).__name__, "length": len(obj)}
    return {"type": type(obj).__name__, "repr": repr(obj)[:200]}


def export(name: str, obj: Any, tensors: Tensors, values: Values) -> None:
    values[name] = describe(obj)
    if isinstance(obj, torch.Tensor):
        tensors[name] = obj
    elif isinstance(obj, (tuple, list)):
        for index, item in enumerate(obj[:8]):
            export(f"{name}.{index}", item, tensors, values)


def resolve(module: ModuleType, dotted: str) -> Any:
    target: Any = module
    for part in dotted.split("."):
        target = getattr(target, part)
    return target


def install_substitutes(module: ModuleType, substitutes: Mapping[str, str]) -> None:
    """Replace a graded callee by a correct one so that a bug is charged once.

    The correct code arrives as source with this request only, so a worker that
    is not grading the caller never holds it."""
    for attr, source in substitutes.items():
        namespace: dict[str, Any] = {"__name__": f"_substitute_{attr}"}
        exec(compile(source, f"<substitute {attr}>", "exec"), namespace)
        setattr(module, attr, namespace[attr])


def replicate_rows(inputs: Tensors, params: dict[str, Any]) -> Tensors:
    """Statistical probes ship one row per distribution and ask for many copies."""
    repeats = int(params.get("repeat_rows", 1))
    if repeats == 1:
        return inputs
    return {k: (v.repeat_interleave(repeats, dim=0) if k in params.get("replicate", []) else v) for k, v in inputs.items()}


def _inputs(inputs: Tensors, names: list[str], grad_wrt: list[str], dtype: str | None) -> list[torch.Tensor]:
    out = []
    for name in names:
        tensor = inputs[name].clone()
        if dtype == "float64":
            tensor = tensor.double()
        if name in grad_wrt:
            tensor.requires_grad_(True)
        out.append(tensor)
    return out


def _weighted_sum(output: torch.Tensor, cotangent: torch.Tensor) -> torch.Tensor:
    """``<output, cotangent>``; a wrong output shape with the right size is tolerated so
    that a shape bug costs the shape test only, not the gradient test too."""
    if output.shape != cotangent.shape and output.numel() == cotangent.numel():
        output = output.reshape(cotangent.shape)
    return (output * cotangent.to(output.dtype)).sum()


def _gradients(loss_terms: list[torch.Tensor], wrt: dict[str, torch.Tensor], tensors: Tensors, values: Values) -> None:
    terms = [t for t in loss_terms if t.requires_grad]
    names = list(wrt)
    if not terms:
        grads: tuple[torch.Tensor | None, ...] = (None,) * len(names)
        values["backward"] = "no output requires grad"
    else:
        grads = torch.autograd.grad(sum(terms), [wrt[n] for n in names], allow_unused=True)
        values["backward"] = "ok"
    for name, grad in zip(names, grads):
        export(f"grad.{name}", grad, tensors, values)


def probe_call(mods: Mapping[str, ModuleType], params: dict[str, Any], inputs: Tensors) -> ProbeResult:
    module = mods[params["module"]]
    install_substitutes(module, params.get("substitutes", {}))
    fn = resolve(module, params["function"])
    inputs = replicate_rows(inputs, params)
    grad_wrt = list(params.get("grad_wrt", []))
    args = _inputs(inputs, params["args"], grad_wrt, params.get("dtype"))
    kwargs = dict(params.get("kwargs", {}))
    tensors: Tensors = {}
    values: Values = {}
    out = fn(*args, **kwargs)
    export("out", out, tensors, values)
    if grad_wrt:
        if not isinstance(out, torch.Tensor):
            raise TypeError(f"expected a tensor, got {type(out).__name__}")
        named = dict(zip(params["args"], args))
        # "ones": the gradient of the sum, i.e. of every row with respect to its own inputs.
        cotangent = torch.ones(out.shape) if params["cotangent"] == "ones" else inputs[params["cotangent"]]
        _gradients([_weighted_sum(out, cotangent)], {n: named[n] for n in grad_wrt}, tensors, values)
    for index in range(1, int(params.get("repeat", 1))):
        export(f"out{index + 1}", fn(*[a.detach() for a in args], **kwargs), tensors, values)
    return tensors, values


def probe_gradcheck(mods: Mapping[str, ModuleType], params: dict[str, Any], inputs: Tensors) -> ProbeResult:
    fn = resolve(mods[params["module"]], params["function"])
    args = tuple(_inputs(inputs, params["args"], params["args"], "float64"))
    try:
        passed = bool(torch.autograd.gradcheck(fn, args, eps=1e-6, atol=1e-5, rtol=1e-3))
        message = ""
    except Exception as exc:  # gradcheck reports a mismatch by raising
        passed, message = False, f"{type(exc).__name__}: {str(exc)[:300]}"
    return {}, {"gradcheck": passed, "gradcheck_message": message}


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
        _gradients([out.sum()], wrt, tensors, values)
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
    terms = [_weighted_sum(o, inputs[f"cot.{n}"]) for o, n in zip(out, names) if isinstance(o, torch.Tensor)]
    wanted = {n: p for n, p in model.named_parameters() if n in set(params.get("grad_params", []))}
    _gradients(terms, wanted, tensors, values)
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
    _gradients([out.sum()], args, tensors, values)
    return tensors, values


def probe_cosine(mods: Mapping[str, ModuleType], params: dict[str, Any], inputs: Tensors) -> ProbeResult:
    cls = mods[params["module"]].CosineSimilarity
    sim = cls(**params.get("init", {}))
    grad_wrt = list(params.get("grad_wrt", []))
    args = _inputs(inputs, ["x1", "x2"], grad_wrt, params.get("dtype"))
    tensors: Tensors = {}
    values: Values = {}
    out = sim(*args)
    export("out", out, tensors, values)
    if grad_wrt:
        if not isinstance(out, torch.Tensor):
            raise TypeError(f"expected a tensor, got {type(out).__name__}")
        named = dict(zip(["x1", "x2"], args))
        _gradients([_weighted_sum(out, inputs["cot"])], {n: named[n] for n in grad_wrt}, tensors, values)
    return tensors, values


PROBES: Mapping[str, Callable[[Mapping[str, ModuleType], dict[str, Any], Tensors], ProbeResult]] = {
    "call": probe_call,
    "gradcheck": probe_gradcheck,
    "critic": probe_critic,
    "simsiam_forward": probe_simsiam_forward,
    "simsiam_loss": probe_simsiam_loss,
    "cosine": probe_cosine,
}
