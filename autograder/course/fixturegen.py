"""Instructor-side: build every test case's inputs from fixed seeds, run the reference
on them, and freeze inputs, expected outputs and gradients, and known-mistake outputs
(for hints) into safetensors files with a manifest.

The student kit carries the visible file only; Gradescope's zip carries both, and draws
its visible cases afresh for every submission as well (fresh_cases.py)."""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from autograder.config import GradingConfig, Tolerance
from autograder.grading.fixture_store import FILES, MANIFEST, fingerprint, sha256
from autograder.paths import KitLayout
from autograder.grading.recipes import CaseData, CoincidingMistake, case_seed, coinciding_mistakes, kept_hints, load_cases, load_reference, run_recipe, stored


def generate(
    config: GradingConfig, layout: KitLayout, out_dir: Path | None = None, coinciding: list[CoincidingMistake] | None = None
) -> dict[str, object]:
    """Write the fixture files and manifest; returns the manifest. Every known mistake
    that equals the right answer on some case is appended to ``coinciding`` (the caller
    warns: that case cannot catch it).

    One thread: the order of float reductions, hence the bytes, would otherwise depend
    on the machine's core count."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        found = _generate(config, layout, layout.fixtures_dir if out_dir is None else out_dir)
        if coinciding is not None:
            coinciding.extend(found[1])
        return found[0]
    finally:
        torch.set_num_threads(threads)


def _file_case(bucket: dict[str, torch.Tensor], name: str, data: CaseData, tolerance: Tolerance) -> dict[str, str]:
    """Add one case's tensors to ``bucket``; returns the texts of the hints kept for it."""
    for role, mapping in (("in", data.inputs), ("exp", data.expected)):
        for key, value in mapping.items():
            bucket[f"{name}/{role}/{key}"] = stored(value)
    kept = kept_hints(data, tolerance)
    for key, (value, _) in kept.items():
        bucket[f"{name}/hint/{key}"] = value
    return {key: text for key, (_, text) in kept.items()}


def _generate(config: GradingConfig, layout: KitLayout, out_dir: Path) -> tuple[dict[str, object], list[CoincidingMistake]]:
    ref = load_reference(layout.reference_dir, config.modules)
    tensors: dict[str, dict[str, torch.Tensor]] = {"visible": {}, "hidden": {}}
    cases: dict[str, object] = {}
    coinciding: list[CoincidingMistake] = []
    for spec in load_cases():
        test = config.test(spec.test)
        tolerance = test.judged_tolerance
        seed = case_seed(spec.name)
        visibility = "visible" if not test.hidden else "hidden"
        data = run_recipe(spec, ref, seed)
        coinciding += coinciding_mistakes(spec.name, spec.test, data, tolerance)
        hints = _file_case(tensors[visibility], spec.name, data, tolerance)
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
    return manifest, coinciding
