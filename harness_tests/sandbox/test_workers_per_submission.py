"""How many workers a grading starts: a correct submission needs one; a buggy callee
(whose callers are graded again with a correct one) adds one, not two per caller test
nor one per visibility; and a regrade slot's next submission never inherits the previous
one's "passed with the course's callee"."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from autograder.config import load_config
from autograder.grading.run import run_suites
from autograder.regrade.command import regrade_export
from autograder.sandbox.mode import start_workers
from harness_tests.corpus import FULL_MARKS, LAYOUT, entries, materialise, part_scores
from harness_tests.regrade_helpers import reference

FALLBACK_PASS = "Passed with the course's correct"


class CountingPool:
    """The real pool, counting the workers it spawns."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool
        self.spawned = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.pool, name)

    def spawn(self, *args: Any, **kwargs: Any) -> Any:
        self.spawned += 1
        return self.pool.spawn(*args, **kwargs)


def _entry(key: str):
    return next(e for e in entries(key.split("/")[0]) if e.key == key)


@pytest.mark.parametrize(("key", "workers"), [("reference", 1), ("bugs/normal_var_for_std", 2)])
def test_workers_per_submission(key: str, workers: int, tmp_path: Path) -> None:
    submission = tmp_path / "upload"
    if key == "reference":
        reference(submission)
    else:
        materialise(_entry(key), submission)
    config = load_config(LAYOUT.config_file)
    pool, _ = start_workers(config.sandbox)
    counting = CountingPool(pool)
    try:
        handle, output, _ = run_suites(LAYOUT, config, submission, counting)  # type: ignore[arg-type]
    finally:
        pool.close()
    scores = part_scores({"tests": [{"number": n, "score": o.score} for n, o in handle.outcomes.items()]})
    expected_loss = {} if key == "reference" else {"1.2": 4}
    assert {p: 4 - s for p, s in scores.items() if s != 4} == expected_loss, output[-2000:]
    # one for the tests (visible, then promoted), one for the fallback runs (the same):
    # with a fallback at once it was 10 for a log_likelihood_normal bug, 4 with one per visibility
    assert counting.spawned == workers
    if key != "reference":
        assert all(FALLBACK_PASS in handle.outcomes[n].output for n in ("1.5.1", "1.5.2", "1.5.3", "1.5.4"))


def test_a_fallback_pass_does_not_carry_over_to_the_next_submission(tmp_path: Path) -> None:
    export = tmp_path / "export"
    materialise(_entry("bugs/normal_var_for_std"), export / "submission_a")
    reference(export / "submission_b")
    out = tmp_path / "out"
    assert regrade_export(LAYOUT, export, out, jobs=1) == 0
    results = {key: json.loads((out / "results" / f"{key}.json").read_text()) for key in ("submission_a", "submission_b")}
    outputs = {key: {t["number"]: t["output"] for t in r["tests"]} for key, r in results.items()}
    assert FALLBACK_PASS in outputs["submission_a"]["1.5.1"]
    assert all(not outputs["submission_b"][n].startswith(FALLBACK_PASS) for n in outputs["submission_b"]), outputs["submission_b"]
    assert results["submission_b"]["score"] == FULL_MARKS, "the reference after a fallback pass still earns grading.yaml's total"
