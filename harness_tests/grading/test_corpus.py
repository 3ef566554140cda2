"""Every correct style earns full marks (grading.yaml's total); every single bug loses points in its own part and
nowhere else. Graded through the batch path (forked, sandboxed), as a regrade does."""
from __future__ import annotations


import pytest

from autograder.regrade.batch import GradeJob, grade_many
from autograder.config import load_config
from harness_tests.corpus import LAYOUT, PARTS, Entry, entries, materialise, part_scores

BUGS = entries("bugs")
STYLES = entries("styles")


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    root = tmp_path_factory.mktemp("corpus")
    jobs = []
    for entry in BUGS + STYLES:
        folder = materialise(entry, root / "subs" / entry.kind / entry.name)
        jobs.append(GradeJob(entry.key, folder, root / "results" / entry.kind / f"{entry.name}.json"))
    config = load_config(LAYOUT.config_file)
    return {r.job.key: r.results for r in grade_many(LAYOUT, config, jobs, workers=2)}


def test_corpus_covers_every_part() -> None:
    assert len(BUGS) >= 25 and len(STYLES) >= 10
    assert {str(e.meta["part"]) for e in BUGS} == set(PARTS)


@pytest.mark.parametrize("entry", BUGS, ids=lambda e: e.name)
def test_bug_costs_its_own_part_only(entry: Entry, graded: dict[str, dict]) -> None:
    config = load_config(LAYOUT.config_file)
    worth = {p.number: p.points for p in config.parts}
    scores = part_scores(graded[entry.key])
    part = str(entry.meta["part"])
    lost_elsewhere = {p: s for p, s in scores.items() if p != part and s != worth[p]}
    assert not lost_elsewhere, f"{entry.name} ({entry.meta['bug']}) also lost points in {lost_elsewhere}"
    assert scores[part] < worth[part], f"{entry.name} ({entry.meta['bug']}) was not caught in part {part}"
    if "fails_only" in entry.meta:  # a proportionate mistake (a dtype) costs just those tests
        failed = sorted(t["number"] for t in graded[entry.key]["tests"] if t["status"] != "passed")
        assert failed == sorted(entry.meta["fails_only"]), f"{entry.name}: failed {failed}, not only {entry.meta['fails_only']}"


@pytest.mark.parametrize("entry", BUGS, ids=lambda e: e.name)
def test_every_known_mistake_is_shown_by_a_visible_test(entry: Entry, graded: dict[str, dict]) -> None:
    """The list of known mistakes and, for each, the visible test that catches it (meta.yaml
    ``caught_by``): the student learns of it before the deadline, not from hidden tests."""
    number = str(entry.meta.get("caught_by", ""))
    config = load_config(LAYOUT.config_file)
    assert number in {t.number for t in config.tests()}, f"{entry.name}: caught_by names no test of grading.yaml ({number!r})"
    assert not config.test(number).hidden, f"{entry.name}: {number} is not visible"
    assert number.startswith(str(entry.meta["part"]) + "."), f"{entry.name}: {number} is not a test of part {entry.meta['part']}"
    status = {t["number"]: t["status"] for t in graded[entry.key]["tests"]}
    assert status[number] == "failed", f"{entry.name} ({entry.meta['bug']}) passes the visible test {number}: only hidden tests would show it"


@pytest.mark.parametrize("entry", STYLES, ids=lambda e: e.name)
def test_style_gets_full_marks(entry: Entry, graded: dict[str, dict]) -> None:
    results = graded[entry.key]
    failures = {t["number"]: t["output"] for t in results["tests"] if t["status"] != "passed"}
    assert results["score"] == load_config(LAYOUT.config_file).total_points, f"{entry.name} ({entry.meta['style']}) lost points: {failures}"
