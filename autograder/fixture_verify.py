"""``fixtures verify`` (and the check before ``build``): refuse fixtures that do not match
what made them, that would ship a non-visible test's expected values in the student kit,
on which the reference does not score full marks, or whose tolerances are out of
calibration. Every problem is one line that says what to run."""
from __future__ import annotations

from safetensors import safe_open

from autograder.config import GradingConfig
from autograder.fixture_store import FILES, FixtureError, FixtureStore
from autograder.paths import KitLayout
from autograder.preflight import REGENERATE, KitKind, file_problems, stale_problems, torch_problems


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
    them would only repeat it. The first checks are the grading's own preflight, for the
    course's kit (both files, torch, recipes, reference, rubric)."""
    try:
        store = FixtureStore(layout.fixtures_dir)
    except FixtureError as exc:
        return [str(exc)]
    course = KitKind(course=True)
    problems = file_problems(store, layout, course)
    if problems:
        return problems
    problems = torch_problems(store, course) + stale_problems(config, layout, store.manifest.get("fingerprint"), course)
    problems += _kit_leaks(config, store, layout)
    if problems or not grade:
        return problems
    return _reference_passes(config, layout) + _calibrated(config, layout)
