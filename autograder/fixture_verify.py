"""``fixtures verify`` (and the check before ``build``): refuse fixtures that do not match
what made them, that would ship a non-visible test's expected values in the student kit,
on which the reference does not score full marks, or whose tolerances are out of
calibration. Every problem is one line that says what to run."""
from __future__ import annotations

from safetensors import safe_open

from autograder.config import GradingConfig
from autograder.fixture_store import FILES, FixtureError, FixtureStore, sha256
from autograder.paths import KitLayout

REGENERATE = "run `python -m autograder fixtures generate`"


def _stale(config: GradingConfig, layout: KitLayout, recorded: object) -> list[str]:
    from autograder.fixturegen import fingerprint

    if not isinstance(recorded, dict):
        return [f"fixtures/manifest.json records no fingerprint of what made the fixtures: {REGENERATE}"]
    current = fingerprint(config, layout)
    problems = []
    if recorded.get("recipes") != current["recipes"]:
        problems.append(f"fixtures are stale: the case recipes (assignment/*.py, autograder/fixturegen.py) changed since they were generated: {REGENERATE}")
    if recorded.get("reference") != current["reference"]:
        problems.append(f"fixtures are stale: reference/ changed since they were generated: {REGENERATE}")
    old_tests = recorded.get("tests") if isinstance(recorded.get("tests"), dict) else {}
    for number, digest in current["tests"].items():  # type: ignore[union-attr]
        if number not in old_tests:
            problems.append(f"test {number} is new since the fixtures were generated: add its cases to the recipes if it needs any, then {REGENERATE}")
        elif old_tests[number] != digest:
            problems.append(f"test {number} changed its tolerance or visibility since the fixtures were generated: {REGENERATE}")
    for number in sorted(set(old_tests) - set(current["tests"])):  # type: ignore[arg-type]
        problems.append(f"test {number} was removed from grading.yaml since the fixtures were generated: {REGENERATE}")
    return problems


def _kit_leaks(config: GradingConfig, store: FixtureStore, layout: KitLayout) -> list[str]:
    """The student kit ships visible.safetensors whole: nothing of a non-visible test may be in it."""
    numbers = {t.number: t for t in config.tests()}
    problems = []
    with safe_open(str(layout.fixtures_dir / FILES["visible"]), framework="pt") as handle:
        in_kit = {key.split("/", 1)[0] for key in handle.keys()}
    for name, meta in sorted(store.manifest.get("cases", {}).items()):
        test = numbers.get(meta.get("test"))
        if test is None:
            problems.append(f"case {name} belongs to test {meta.get('test')}, which grading.yaml no longer has: {REGENERATE}")
        elif test.hidden and name in in_kit:
            problems.append(f"test {test.number} is not visible, but its expected values are in {FILES['visible']} and would reach the student kit: {REGENERATE}")
    return problems


def _reference_passes(config: GradingConfig, layout: KitLayout) -> list[str]:
    from autograder.grading import grade_folder

    summary = grade_folder(layout, layout.reference_dir, None)
    if not summary.outcomes:
        return [f"grading the reference failed: {summary.table}"]
    problems = []
    for outcome in summary.outcomes:
        if outcome.status != "passed":
            first = outcome.output.splitlines()[0] if outcome.output else ""
            fix = f" (a test without cases: add them to the recipes, then {REGENERATE})" if "FixtureError" in outcome.output else ""
            problems.append(f"reference fails {outcome.number}: {first[:200]}{fix}")
    return problems


def _calibrated(config: GradingConfig, layout: KitLayout) -> list[str]:
    from autograder.calibrate import MISTAKE_LIMIT, STYLE_LIMIT, STYLES, calibrate

    if not (layout.root / STYLES).is_dir():
        return []
    report = calibrate(layout, config)
    problems = []
    for entry in report.tests.values():
        if entry.style_ratio > STYLE_LIMIT:
            problems.append(f"test {entry.number}: a correct style uses {entry.style_ratio:.3g} of the tolerance (over {STYLE_LIMIT}; {entry.worst_style}): "
                            "widen its tolerance in grading.yaml (`python -m autograder calibrate` shows the figures), then regenerate")
        if entry.mistake_ratio < MISTAKE_LIMIT:
            problems.append(f"test {entry.number}: a known mistake is only {entry.mistake_ratio:.3g} tolerances away (under {MISTAKE_LIMIT:g}; {entry.closest_mistake}): "
                            "tighten its tolerance in grading.yaml (`python -m autograder calibrate` shows the figures), then regenerate")
    return problems


def verify(config: GradingConfig, layout: KitLayout, *, grade: bool = True) -> list[str]:
    """Problems, cheapest checks first: if the files themselves are wrong, grading with
    them would only repeat it."""
    try:
        store = FixtureStore(layout.fixtures_dir)
    except FixtureError as exc:
        return [str(exc)]
    problems = []
    for name in FILES.values():
        path = layout.fixtures_dir / name
        if not path.exists():
            problems.append(f"{path}: missing: {REGENERATE}")
        elif sha256(path) != store.manifest.get("files", {}).get(name):
            problems.append(f"{path}: sha256 differs from the manifest: {REGENERATE}")
    if problems:
        return problems
    problems = _stale(config, layout, store.manifest.get("fingerprint")) + _kit_leaks(config, store, layout)
    if problems or not grade:
        return problems
    return _reference_passes(config, layout) + _calibrated(config, layout)
