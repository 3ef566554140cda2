"""The probes: each one calls the student's code the way a test needs and reports
plain tensors and JSON values. Probes never see expected values.

The engine's kinds call a function (``call``, ``gradcheck``); an assignment adds kinds
that build its own objects (models, critics) in ``assignment/probes.py``, using the
helpers here (``export``, ``gradients``, ``weighted_sum``, ``install_substitutes``)."""
from __future__ import annotations

import contextlib
import functools
import importlib
from types import ModuleType
from typing import Any, Callable, Iterator, Mapping

import torch

from autograder.paths import ASSIGNMENT_PACKAGE

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


@contextlib.contextmanager
def watch_calls(module: ModuleType | None, names: list[str], called: set[str]) -> Iterator[None]:
    """Note which of the module's graded callees (functions, or classes whose instances are
    called) the probe reached, so that a caller's failure can say "your X, which fails
    part P, is called here". Restored afterwards: later probes see the student's own
    objects. The worker's word, like every value it reports: it only shapes a message."""
    patched: list[tuple[Any, str, Any, bool]] = []
    for name in names:
        target = getattr(module, name, None) if module is not None else None
        if isinstance(target, type):
            original = target.__call__
            had_own = "__call__" in target.__dict__

            def counted_call(self: Any, *args: Any, _name: str = name, _original: Any = original, **kwargs: Any) -> Any:
                called.add(_name)
                return _original(self, *args, **kwargs)

            setattr(target, "__call__", counted_call)
            patched.append((target, "__call__", original, had_own))
        elif callable(target):

            @functools.wraps(target)
            def counted(*args: Any, _name: str = name, _original: Any = target, **kwargs: Any) -> Any:
                called.add(_name)
                return _original(*args, **kwargs)

            setattr(module, name, counted)
            patched.append((module, name, target, True))
    try:
        yield
    finally:
        for owner, attribute, original, had_own in reversed(patched):
            if had_own:
                setattr(owner, attribute, original)
            else:
                delattr(owner, attribute)


def replicate_rows(inputs: Tensors, params: dict[str, Any]) -> Tensors:
    """Statistical probes ship one row per distribution and ask for many copies."""
    repeats = int(params.get("repeat_rows", 1))
    if repeats == 1:
        return inputs
    return {k: (v.repeat_interleave(repeats, dim=0) if k in params.get("replicate", []) else v) for k, v in inputs.items()}


def prepare_inputs(inputs: Tensors, names: list[str], grad_wrt: list[str], dtype: str | None) -> list[torch.Tensor]:
    out = []
    for name in names:
        tensor = inputs[name].clone()
        if dtype == "float64":
            tensor = tensor.double()
        if name in grad_wrt:
            tensor.requires_grad_(True)
        out.append(tensor)
    return out


def weighted_sum(output: torch.Tensor, cotangent: torch.Tensor) -> torch.Tensor:
    """``<output, cotangent>``; a wrong output shape with the right size is tolerated so
    that a shape bug costs the shape test only, not the gradient test too."""
    if output.shape != cotangent.shape and output.numel() == cotangent.numel():
        output = output.reshape(cotangent.shape)
    return (output * cotangent.to(output.dtype)).sum()


def gradients(loss_terms: list[torch.Tensor], wrt: dict[str, torch.Tensor], tensors: Tensors, values: Values) -> None:
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
    args = prepare_inputs(inputs, params["args"], grad_wrt, params.get("dtype"))
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
        gradients([weighted_sum(out, cotangent)], {n: named[n] for n in grad_wrt}, tensors, values)
    for index in range(1, int(params.get("repeat", 1))):
        export(f"out{index + 1}", fn(*[a.detach() for a in args], **kwargs), tensors, values)
    return tensors, values


def probe_gradcheck(mods: Mapping[str, ModuleType], params: dict[str, Any], inputs: Tensors) -> ProbeResult:
    fn = resolve(mods[params["module"]], params["function"])
    args = tuple(prepare_inputs(inputs, params["args"], params["args"], "float64"))
    try:
        passed = bool(torch.autograd.gradcheck(fn, args, eps=1e-6, atol=1e-5, rtol=1e-3))
        message = ""
    except Exception as exc:  # gradcheck reports a mismatch by raising
        passed, message = False, f"{type(exc).__name__}: {str(exc)[:300]}"
    return {}, {"gradcheck": passed, "gradcheck_message": message}


Probe = Callable[[Mapping[str, ModuleType], dict[str, Any], Tensors], ProbeResult]

# What every assignment can use; an assignment adds its own kinds in ``assignment/probes.py``
# (a ``PROBES`` mapping), imported before any student code runs (see ``table``).
PROBES: Mapping[str, Probe] = {
    "call": probe_call,
    "gradcheck": probe_gradcheck,
}


@functools.lru_cache(maxsize=1)
def assignment_probes() -> ModuleType | None:
    """``assignment/probes.py``, or None for an assignment with the engine's kinds only."""
    try:
        return importlib.import_module(f"{ASSIGNMENT_PACKAGE}.probes")
    except ModuleNotFoundError as exc:
        if exc.name not in (ASSIGNMENT_PACKAGE, f"{ASSIGNMENT_PACKAGE}.probes"):
            raise
        return None


@functools.lru_cache(maxsize=1)
def table() -> Mapping[str, Probe]:
    """The engine's probe kinds and the assignment's. Called in the zygote (and in a
    portable worker) before the student's imports are narrowed to the submission, so the
    assignment's probe code is resident in every worker and never read from disk there."""
    extra = dict(getattr(assignment_probes(), "PROBES", {}))
    clash = sorted(set(extra) & set(PROBES))
    if clash:
        raise ValueError(f"{ASSIGNMENT_PACKAGE}/probes.py redefines the engine's probe kinds {clash}")
    return {**PROBES, **extra}
