"""Case recipes, the assignment's way of saying how a test's inputs are drawn and what the
reference makes of them: the records a recipe fills, the helpers it draws with, and one
way to run a recipe. Used twice: ``fixtures generate`` freezes every case (fixturegen.py),
and a grading on Gradescope draws each visible case afresh for the submission it grades
(fresh_cases.py). Never imported by the worker."""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Callable

import torch

from autograder.grading.compare import tolerance_ratio
from autograder.config import Tolerance
from autograder.paths import ASSIGNMENT_PACKAGE


@dataclass
class CaseData:
    """What a recipe returns: inputs, expected outputs and gradients (float64), and the
    outputs of known mistakes with what to tell the student (``hints``)."""

    inputs: dict[str, torch.Tensor] = field(default_factory=dict)
    expected: dict[str, torch.Tensor] = field(default_factory=dict)
    hints: dict[str, tuple[torch.Tensor, str]] = field(default_factory=dict)


class Reference(SimpleNamespace):
    """The reference's modules by name (``ref.<module>``), as grading.yaml lists them."""


@dataclass(frozen=True)
class CaseSpec:
    name: str
    test: str
    build: Callable[[Reference, torch.Generator], CaseData]


def load_reference(directory: Path, modules: tuple[str, ...] | list[str]) -> Reference:
    """The reference's modules (grading.yaml's list), imported under private names."""
    loaded: dict[str, ModuleType] = {}
    for name in modules:
        path = directory / f"{name}.py"
        if not path.exists():
            raise FileNotFoundError(f"{path}: reference solution not found (cases are computed from reference/)")
        spec = importlib.util.spec_from_file_location(f"_reference_{name}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        loaded[name] = module
    return Reference(**loaded)


def load_cases() -> tuple[CaseSpec, ...]:
    """The assignment's case recipes: ``CASES`` in ``assignment/cases.py``."""
    module = importlib.import_module(f"{ASSIGNMENT_PACKAGE}.cases")
    cases = tuple(getattr(module, "CASES", ()))
    if not all(isinstance(c, CaseSpec) for c in cases):
        raise TypeError(f"{ASSIGNMENT_PACKAGE}/cases.py: CASES must be a sequence of autograder.grading.recipes.CaseSpec")
    return cases


def case_seed(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big")


def uniform(g: torch.Generator, shape: tuple[int, ...], low: float, high: float) -> torch.Tensor:
    return low + (high - low) * torch.rand(shape, generator=g)


def normal(g: torch.Generator, shape: tuple[int, ...], scale: float = 1.0) -> torch.Tensor:
    return scale * torch.randn(shape, generator=g)


def sent(value: torch.Tensor) -> torch.Tensor:
    """A float input as the student's code receives it: rounded to float32 (how it is
    stored and sent), then widened to float64 for the reference's exact computation."""
    return value.to(torch.float32).double() if value.is_floating_point() else value


def f64(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """float64 copies of the inputs *as sent* (float32-rounded): every expected value is
    computed in float64 and rounded to float32 when stored, so the bytes do not depend on
    the CPU's float32 kernels (AVX2 vs AVX-512, MKL's code path), only on the inputs; and
    an input drawn in float64 is rounded first, so the reference is never judged on
    inputs other than those the student gets."""
    return {k: sent(v) for k, v in tensors.items()}


def with_grads(fn: Callable[..., torch.Tensor], inputs: dict[str, torch.Tensor], names: list[str], cot: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    leaves = {n: sent(inputs[n]).clone().requires_grad_(True) for n in names}
    out = fn(*leaves.values())
    grads = torch.autograd.grad((out * sent(cot)).sum(), list(leaves.values()))
    return out.detach(), {f"grad.{n}": g for n, g in zip(names, grads)}


def run_recipe(spec: CaseSpec, ref: Reference, seed: int) -> CaseData:
    """One case from ``seed``. The global generator is seeded too, for recipes that build
    torch modules (whose initialisation draws from it); it is restored afterwards, so that
    drawing a case in the middle of a grading changes no other random stream."""
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return spec.build(ref, generator)


def stored(value: torch.Tensor) -> torch.Tensor:
    """Floats are kept as float32, rounded from the float64 computation."""
    value = value.detach()
    return (value.to(torch.float32) if value.is_floating_point() else value).contiguous().clone()


def kept_hints(data: CaseData, tolerance: Tolerance) -> dict[str, tuple[torch.Tensor, str]]:
    """The hints worth keeping, rounded: a "mistake" that gives the right answer on this
    case (within the tolerance) cannot be told apart from the right answer here."""
    return split_hints(data, tolerance)[0]


def split_hints(data: CaseData, tolerance: Tolerance) -> tuple[dict[str, tuple[torch.Tensor, str]], dict[str, float]]:
    """(the hints kept, rounded; the tolerance ratio of each known mistake that lands
    within the tolerance on this case, i.e. equals the right answer here)."""
    kept, coinciding = {}, {}
    for key, (value, text) in data.hints.items():
        target = stored(data.expected[key.split(":", 1)[0]])
        ratio = tolerance_ratio(stored(value), target, tolerance)
        if ratio > 1.0:
            kept[key] = (stored(value), text)
        else:
            coinciding[key] = ratio
    return kept, coinciding


@dataclass(frozen=True)
class CoincidingMistake:
    """A known mistake (a recipe's hint) that gives the right answer on one case: that
    case cannot catch it, so another case of the test must, or the inputs should change."""

    case: str
    test: str
    key: str
    text: str
    ratio: float

    def line(self) -> str:
        return (f"warning: case {self.case} (test {self.test}): the known mistake {self.key!r} ({self.text}) lands within the "
                f"tolerance ({self.ratio:.3g} of it): it equals the right answer on this case, which cannot catch it; "
                "draw inputs on which it differs")


def coinciding_mistakes(name: str, test: str, data: CaseData, tolerance: Tolerance) -> list[CoincidingMistake]:
    return [CoincidingMistake(name, test, key, data.hints[key][1], ratio) for key, ratio in sorted(split_hints(data, tolerance)[1].items())]
