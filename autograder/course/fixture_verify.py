"""``fixtures verify`` (and the check before ``build``): refuse fixtures that do not match
what made them, that would ship a non-visible test's expected values in the student kit,
on which the reference does not score full marks, or whose tolerances are out of
calibration. Every problem is one line that says what to run; what verify could not
check (no styles folder: the reference alone is calibrated) is a note, not a problem."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from safetensors import safe_open

from autograder.config import GradingConfig
from autograder.grading.fixture_store import FILES, FixtureError, FixtureStore
from autograder.paths import KitLayout
from autograder.grading.preflight import REGENERATE, KitKind, file_problems, stale_problems, torch_problems


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
    from autograder.grading.run import grade_folder

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


def _calibrated(config: GradingConfig, layout: KitLayout, styles: Path | None, notes: list[str]) -> list[str]:
    """The reference is always a correct style (see calibrate.py), with or without a styles
    folder; a missing or empty one is a note."""
    from autograder.course.calibrate import MISTAKE_LIMIT, REFERENCE, STYLE_LIMIT, calibrate

    report = calibrate(layout, config, styles)
    notes += report.notes + [c.line() for c in report.coinciding]
    problems = []
    for entry in report.tests.values():
        if entry.style_ratio > STYLE_LIMIT:
            why = (" (the reference itself: run in float32 on the inputs it is sent, against its own float64 result on those inputs, "
                   "only float32 rounding separates them, and this tolerance leaves that less than a tenfold margin, so a correct "
                   "submission may fail on another draw; a recipe that computes expected values without recipes.f64/with_grads "
                   "may be using other inputs than it sends)") if entry.worst_style.startswith(REFERENCE + " ") else ""
            problems.append(f"test {entry.number}: a correct style uses {entry.style_ratio:.3g} of the tolerance (over {STYLE_LIMIT}; {entry.worst_style}){why}: "
                            "widen its tolerance in grading.yaml (`python -m autograder calibrate` shows the figures), then regenerate")
        if entry.mistake_ratio < MISTAKE_LIMIT:
            problems.append(f"test {entry.number}: a known mistake is only {entry.mistake_ratio:.3g} tolerances away (under {MISTAKE_LIMIT:g}; {entry.closest_mistake}): "
                            "tighten its tolerance in grading.yaml (`python -m autograder calibrate` shows the figures), then regenerate")
    return problems


@dataclass
class Verification:
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # printed, never refused for


def check(config: GradingConfig, layout: KitLayout, *, grade: bool = True, styles: Path | None = None) -> Verification:
    """Problems, cheapest checks first: if the files themselves are wrong, grading with
    them would only repeat it. The first checks are the grading's own preflight, for the
    course's kit (both files, torch, recipes, reference, rubric)."""
    try:
        store = FixtureStore(layout.fixtures_dir)
    except FixtureError as exc:
        return Verification([str(exc)])
    course = KitKind(course=True)
    problems = file_problems(store, layout, course)
    if problems:
        return Verification(problems)
    problems = torch_problems(store, course) + stale_problems(config, layout, store.manifest.get("fingerprint"), course)
    problems += _kit_leaks(config, store, layout)
    if problems or not grade:
        return Verification(problems)
    result = Verification(_reference_passes(config, layout))
    result.problems += _calibrated(config, layout, styles, result.notes)
    return result


def verify(config: GradingConfig, layout: KitLayout, *, grade: bool = True, styles: Path | None = None) -> list[str]:
    """The problems of ``check`` (build refuses for any)."""
    return check(config, layout, grade=grade, styles=styles).problems
