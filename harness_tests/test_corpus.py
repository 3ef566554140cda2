"""Every correct style earns 36/36; every single bug loses points in its own part and
nowhere else. Graded through the batch path (forked, sandboxed), as a regrade does."""
from __future__ import annotations


import pytest

from autograder.batch import GradeJob, grade_many
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
    scores = part_scores(graded[entry.key])
    part = str(entry.meta["part"])
    lost_elsewhere = {p: s for p, s in scores.items() if p != part and s != 4.0}
    assert not lost_elsewhere, f"{entry.name} ({entry.meta['bug']}) also lost points in {lost_elsewhere}"
    assert scores[part] < 4.0, f"{entry.name} ({entry.meta['bug']}) was not caught in part {part}"
    if "points_lost" in entry.meta:  # a proportionate mistake (a dtype) costs just that much
        assert scores[part] == 4.0 - float(entry.meta["points_lost"]), f"{entry.name}: part {part} scored {scores[part]:g}"


@pytest.mark.parametrize("entry", STYLES, ids=lambda e: e.name)
def test_style_gets_full_marks(entry: Entry, graded: dict[str, dict]) -> None:
    results = graded[entry.key]
    failures = {t["number"]: t["output"] for t in results["tests"] if t["status"] != "passed"}
    assert results["score"] == 36.0, f"{entry.name} ({entry.meta['style']}) lost points: {failures}"
