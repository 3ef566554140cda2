"""``python -m autograder calibrate``: how each tolerance of grading.yaml sits between
correct styles and known mistakes.

For every comparison a test makes, the *tolerance ratio* is the worst element's
deviation in units of the allowed one (``atol + rtol * |expected|``): 1 is the pass
line. Correct styles should stay below 0.1; the outputs of known mistakes stored with
the fixtures (the hints) should be above 10.

The reference is always one of the correct styles, whatever the styles folder holds
(``harness_tests/submissions/styles`` by default, or none at all): it runs in float32 on
the inputs as they are sent, and the expected values were computed from those same
inputs in float64 (``recipes.f64``/``with_grads`` round an input drawn in float64 to
float32 first), so its ratio is float32 rounding alone. It is held to the same 0.1: a
tolerance that leaves float32 rounding less than a tenfold margin fails a correct
submission on some other draw (Gradescope draws visible inputs per submission), and a
style that rounds differently lands near the reference, not at zero."""
from __future__ import annotations

import math
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from autograder.grading.compare import tolerance_ratio
from autograder.config import GradingConfig, load_config
from autograder.grading.fixture_store import FixtureStore
from autograder.grading.run import run_pytest
from autograder.paths import STYLES_FOLDER, KitLayout
from autograder.grading.plugin import GradingHandle
from autograder.grading.recipes import CoincidingMistake, coinciding_mistakes, load_cases, load_reference, run_recipe
from autograder.sandbox.mode import start_workers

STYLES = STYLES_FOLDER  # below the project root (KitLayout.styles_dir)
REFERENCE = "reference"
STYLE_LIMIT = 0.1
MISTAKE_LIMIT = 10.0


@dataclass
class TestCalibration:
    number: str
    rtol: float
    atol: float
    style_ratio: float = 0.0
    worst_style: str = REFERENCE
    mistake_ratio: float = math.inf
    closest_mistake: str = ""
    comparisons: int = 0

    @property
    def ok(self) -> bool:
        return self.style_ratio <= STYLE_LIMIT and self.mistake_ratio >= MISTAKE_LIMIT


@dataclass
class CalibrationReport:
    tests: dict[str, TestCalibration] = field(default_factory=dict)
    # What the calibration could not use, one line each (no styles folder, an empty one).
    notes: list[str] = field(default_factory=list)
    # Known mistakes that equal the right answer on some frozen case.
    coinciding: list[CoincidingMistake] = field(default_factory=list)

    def table(self) -> str:
        lines = [f"{'test':7} {'rtol':>8} {'atol':>8} {'styles max':>11} {'mistakes min':>13}  worst style / closest mistake"]
        for t in self.tests.values():
            mistakes = "-" if math.isinf(t.mistake_ratio) else f"{t.mistake_ratio:.3g}"
            flag = "" if t.ok else "   <-- outside [0.1, 10]"
            lines.append(f"{t.number:7} {t.rtol:8.1e} {t.atol:8.1e} {t.style_ratio:11.3g} {mistakes:>13}  {t.worst_style} / {t.closest_mistake}{flag}")
        return "\n".join([*self.notes, *(c.line() for c in self.coinciding), *lines])


def styles_folder(layout: KitLayout, styles: Path | None = None) -> Path:
    return layout.styles_dir if styles is None else styles


def _styles(layout: KitLayout, root: Path, styles: Path, notes: list[str]) -> dict[str, Path]:
    """The reference and every style over a copy of it, as complete submission folders in
    ``root``; what cannot be used is a line in ``notes``, never an error."""
    if not layout.reference_dir.is_dir():
        raise FileNotFoundError(f"{layout.reference_dir}: reference folder not found (calibration grades it)")
    folders = {REFERENCE: layout.reference_dir}
    if not styles.is_dir():
        notes.append(f"note: no styles folder {styles}: calibrated against the reference alone "
                     "(add a folder per correct way of writing a function, or pass --styles DIR)")
        return folders
    found = sorted(p for p in styles.iterdir() if p.is_dir() and not p.name.startswith((".", "__")))
    for style in found:
        modules = sorted(style.glob("*.py"))
        if not modules:
            notes.append(f"note: {style} holds no .py file: skipped")
            continue
        target = root / style.name
        shutil.copytree(layout.reference_dir, target)
        for item in modules:
            shutil.copyfile(item, target / item.name)
        folders[style.name] = target
    if len(folders) == 1:
        notes.append(f"note: the styles folder {styles} holds no style yet: calibrated against the reference alone")
    return folders


def frozen_coinciding(config: GradingConfig, layout: KitLayout, store: FixtureStore) -> list[CoincidingMistake]:
    """The known mistakes that equal the right answer on a frozen case, from the recipes
    run again on each case's frozen seed (the fixtures keep only the hints that differ)."""
    recipes = {spec.name: spec for spec in load_cases()}
    reference = load_reference(layout.reference_dir, config.modules)
    found: list[CoincidingMistake] = []
    for name, meta in sorted(store.manifest.get("cases", {}).items()):
        spec = recipes.get(name)
        if spec is None or meta.get("test") not in {t.number for t in config.tests()}:
            continue  # stale fixtures: verify says so
        data = run_recipe(spec, reference, int(meta["seed"]))
        found += coinciding_mistakes(name, spec.test, data, config.test(spec.test).judged_tolerance)
    return found


def calibrate(layout: KitLayout, config: GradingConfig | None = None, styles: Path | None = None) -> CalibrationReport:
    """Grade the reference and the styles through the real worker path, recording every
    comparison's tolerance ratio; then measure the stored known mistakes."""
    config = config or load_config(layout.config_file)
    store = FixtureStore(layout.fixtures_dir)
    report = CalibrationReport()
    for spec in config.tests():
        if spec.tolerance is not None:
            report.tests[spec.number] = TestCalibration(spec.number, spec.tolerance.rtol, spec.tolerance.atol)
    def record(style: str, number: str, key: str, ratio: float) -> None:
        entry = report.tests.get(number)
        if entry is None:
            return
        entry.comparisons += 1
        if ratio > entry.style_ratio:
            entry.style_ratio, entry.worst_style = ratio, f"{style} ({key})"

    workdir = Path(tempfile.mkdtemp(prefix="autograder-calibrate-"))
    try:
        submissions = _styles(layout, workdir, styles_folder(layout, styles), report.notes)
        zygote, mode = start_workers(config.sandbox)  # local mode where the sandbox cannot run: the same verdicts
        if mode.line:
            report.notes.append(f"note: calibrated in {mode.line}")
        try:
            handle = GradingHandle(zygote, submissions=submissions, on_done=lambda done: None, recorder=record)
            run_pytest(layout, config, handle)
        finally:
            zygote.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    for case_name, meta in store.manifest["cases"].items():
        entry = report.tests.get(meta["test"])
        if entry is None or not meta.get("hints"):
            continue
        case = store.case(case_name)
        spec = config.test(meta["test"])
        assert spec.tolerance is not None
        for key, hint in case.hints.items():
            target = case.expected[key.split(":", 1)[0]]
            ratio = tolerance_ratio(hint.output.to(target.dtype), target, spec.tolerance)
            if ratio < entry.mistake_ratio:
                entry.mistake_ratio, entry.closest_mistake = ratio, f"{case_name}:{key}"
    report.coinciding = frozen_coinciding(config, layout, store)
    return report
