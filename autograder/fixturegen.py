"""Instructor-side: build every test case's inputs from fixed seeds, run the reference
on them, and freeze inputs, expected outputs and gradients, and known-mistake outputs
(for hints) into safetensors files with a manifest.

Needs ``reference/``, which is never shipped: the autograder zip and the student kit
carry the frozen files only."""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Callable

import torch
from safetensors.torch import save_file

from autograder.compare import tolerance_ratio
from autograder.config import GradingConfig, Tolerance
from autograder.judge import DEFAULT_TOLERANCE
from autograder.fixture_store import FILES, MANIFEST, sha256
from autograder.paths import ASSIGNMENT_PACKAGE, KitLayout


@dataclass
class CaseData:
    inputs: dict[str, torch.Tensor] = field(default_factory=dict)
    expected: dict[str, torch.Tensor] = field(default_factory=dict)
    hints: dict[str, tuple[torch.Tensor, str]] = field(default_factory=dict)


class Reference(SimpleNamespace):
    """The reference's modules by name (``ref.<module>``), as grading.yaml lists them."""


def load_reference(directory: Path, modules: tuple[str, ...] | list[str]) -> Reference:
    """The reference's modules (grading.yaml's list), imported under private names."""
    loaded: dict[str, ModuleType] = {}
    for name in modules:
        path = directory / f"{name}.py"
        if not path.exists():
            raise FileNotFoundError(f"{path}: reference solution not found (fixtures are generated from reference/)")
        spec = importlib.util.spec_from_file_location(f"_reference_{name}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        loaded[name] = module
    return Reference(**loaded)


def load_cases() -> tuple["CaseSpec", ...]:
    """The assignment's case recipes: ``CASES`` in ``assignment/cases.py``."""
    module = importlib.import_module(f"{ASSIGNMENT_PACKAGE}.cases")
    cases = tuple(getattr(module, "CASES", ()))
    if not all(isinstance(c, CaseSpec) for c in cases):
        raise TypeError(f"{ASSIGNMENT_PACKAGE}/cases.py: CASES must be a sequence of autograder.fixturegen.CaseSpec")
    return cases


def case_seed(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big")


def uniform(g: torch.Generator, shape: tuple[int, ...], low: float, high: float) -> torch.Tensor:
    return low + (high - low) * torch.rand(shape, generator=g)


def normal(g: torch.Generator, shape: tuple[int, ...], scale: float = 1.0) -> torch.Tensor:
    return scale * torch.randn(shape, generator=g)


def f64(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """float64 copies: every expected value is computed in float64 and rounded to float32
    when stored, so the bytes do not depend on the CPU's float32 kernels (AVX2 vs AVX-512,
    MKL's code path), only on the inputs."""
    return {k: (v.double() if v.is_floating_point() else v) for k, v in tensors.items()}


def with_grads(fn: Callable[..., torch.Tensor], inputs: dict[str, torch.Tensor], names: list[str], cot: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    leaves = {n: inputs[n].double().clone().requires_grad_(True) for n in names}
    out = fn(*leaves.values())
    grads = torch.autograd.grad((out * cot.double()).sum(), list(leaves.values()))
    return out.detach(), {f"grad.{n}": g for n, g in zip(names, grads)}


@dataclass(frozen=True)
class CaseSpec:
    name: str
    test: str
    build: Callable[[Reference, torch.Generator], CaseData]


def generate(config: GradingConfig, layout: KitLayout, out_dir: Path | None = None) -> dict[str, object]:
    """Write the fixture files and manifest; returns the manifest.

    One thread: the order of float reductions, hence the bytes, would otherwise depend
    on the machine's core count."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _generate(config, layout, layout.fixtures_dir if out_dir is None else out_dir)
    finally:
        torch.set_num_threads(threads)


PRIVATE_SUFFIX = "@gradescope"


def recipe_files(layout: KitLayout) -> list[Path]:
    """What the cases are made by: this module and the assignment's own modules (recipes,
    the models they build), not its correct callees or the kit's texts."""
    return [Path(__file__).resolve(), *sorted(layout.assignment_dir.glob("*.py"))]


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()


def fingerprint(config: GradingConfig, layout: KitLayout) -> dict[str, object]:
    """Everything the fixtures are made from: the case recipes, the reference's source and,
    per test, what decides where its cases go and which hints are kept (tolerance and
    visibility). ``fixtures verify`` and ``build`` refuse fixtures whose record differs."""
    reference = sorted(layout.reference_dir.glob("*.py"))
    return {
        "recipes": _digest(*(path.read_bytes() for path in recipe_files(layout))),
        "reference": _digest(*(p.name.encode() + b"\0" + p.read_bytes() for p in reference)),
        "tests": {
            t.number: _digest(json.dumps({"hidden": t.hidden, "tolerance": None if t.tolerance is None else [t.tolerance.rtol, t.tolerance.atol]}).encode())
            for t in config.tests()
        },
    }


def _build(spec: CaseSpec, ref: Reference, seed: int) -> CaseData:
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    return spec.build(ref, generator)


def _stored(value: torch.Tensor) -> torch.Tensor:
    """Floats are stored as float32, rounded from the float64 computation."""
    value = value.detach()
    return (value.to(torch.float32) if value.is_floating_point() else value).contiguous().clone()


def _file_case(bucket: dict[str, torch.Tensor], name: str, data: CaseData, tolerance: Tolerance) -> dict[str, str]:
    """Add one variant's tensors to ``bucket``; returns the hints kept for it."""
    for role, mapping in (("in", data.inputs), ("exp", data.expected)):
        for key, value in mapping.items():
            bucket[f"{name}/{role}/{key}"] = _stored(value)
    kept = {}
    for key, (value, text) in data.hints.items():
        target = _stored(data.expected[key.split(":", 1)[0]])
        # A "mistake" that gives the right answer on this case cannot be hinted at here.
        if tolerance_ratio(_stored(value), target, tolerance) > 1.0:
            bucket[f"{name}/hint/{key}"] = _stored(value)
            kept[key] = text
    return kept


def _generate(config: GradingConfig, layout: KitLayout, out_dir: Path) -> dict[str, object]:
    ref = load_reference(layout.reference_dir, config.modules)
    tensors: dict[str, dict[str, torch.Tensor]] = {"visible": {}, "hidden": {}}
    cases: dict[str, object] = {}
    for spec in load_cases():
        test = config.test(spec.test)
        tolerance = test.tolerance or DEFAULT_TOLERANCE
        seed = case_seed(spec.name)
        visibility = "visible" if not test.hidden else "hidden"
        hints = _file_case(tensors[visibility], spec.name, _build(spec, ref, seed), tolerance)
        meta: dict[str, object] = {
            "test": spec.test,
            "visibility": visibility,
            "seed": seed,
            "tolerance": None if test.tolerance is None else {"rtol": test.tolerance.rtol, "atol": test.tolerance.atol},
        }
        if visibility == "visible":
            # Gradescope grades visible tests on inputs the student kit does not hold (same
            # recipe, another seed), so replaying the kit's expected values earns nothing.
            private_seed = case_seed(spec.name + PRIVATE_SUFFIX)
            hints.update(_file_case(tensors["hidden"], spec.name, _build(spec, ref, private_seed), tolerance))
            meta["private_seed"] = private_seed
        meta["hints"] = dict(sorted(hints.items()))
        cases[spec.name] = meta
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
        "fingerprint": fingerprint(config, layout),
    }
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return manifest
