"""Instructor-side: build every test case's inputs from fixed seeds, run the reference
on them, and freeze inputs, expected outputs and gradients, and known-mistake outputs
(for hints) into safetensors files with a manifest.

The student kit carries the visible file only; Gradescope's zip carries both, and draws
its visible cases afresh for every submission as well (fresh_cases.py)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from autograder.config import GradingConfig, Tolerance
from autograder.fixture_store import FILES, MANIFEST, sha256
from autograder.paths import KitLayout
from autograder.recipes import CaseData, case_seed, kept_hints, load_cases, load_reference, run_recipe, stored


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


def recipe_files(layout: KitLayout) -> list[Path]:
    """What the cases are made by: the recipe machinery and the assignment's own modules
    (recipes, the models they build), not its correct callees or the kit's texts."""
    engine = Path(__file__).resolve().parent
    return [engine / "fixturegen.py", engine / "recipes.py", *sorted(layout.assignment_dir.glob("*.py"))]


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


def _file_case(bucket: dict[str, torch.Tensor], name: str, data: CaseData, tolerance: Tolerance) -> dict[str, str]:
    """Add one case's tensors to ``bucket``; returns the texts of the hints kept for it."""
    for role, mapping in (("in", data.inputs), ("exp", data.expected)):
        for key, value in mapping.items():
            bucket[f"{name}/{role}/{key}"] = stored(value)
    kept = kept_hints(data, tolerance)
    for key, (value, _) in kept.items():
        bucket[f"{name}/hint/{key}"] = value
    return {key: text for key, (_, text) in kept.items()}


def _generate(config: GradingConfig, layout: KitLayout, out_dir: Path) -> dict[str, object]:
    ref = load_reference(layout.reference_dir, config.modules)
    tensors: dict[str, dict[str, torch.Tensor]] = {"visible": {}, "hidden": {}}
    cases: dict[str, object] = {}
    for spec in load_cases():
        test = config.test(spec.test)
        tolerance = test.judged_tolerance
        seed = case_seed(spec.name)
        visibility = "visible" if not test.hidden else "hidden"
        hints = _file_case(tensors[visibility], spec.name, run_recipe(spec, ref, seed), tolerance)
        cases[spec.name] = {
            "test": spec.test,
            "visibility": visibility,
            "seed": seed,
            "tolerance": None if test.tolerance is None else {"rtol": test.tolerance.rtol, "atol": test.tolerance.atol},
            "hints": dict(sorted(hints.items())),
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
        "fingerprint": fingerprint(config, layout),
    }
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return manifest
