"""The styles and bugs of the fairness review, graded through the real run_autograder
path from the built zip: each correct style earns full marks, each bug loses points in its own
part only (exactly ``points_lost`` where the meta says so)."""
from __future__ import annotations

from pathlib import Path

import pytest

from harness_tests.corpus import FULL_MARKS, PARTS, WORTH, Entry, entries, materialise, part_scores
from harness_tests.gradescope_sim import build_zip, simulate

REVIEWED = {
    "styles": ("q1_mc_vectorised_own_callee", "q3_loss_stop_grad_eq7", "q3_einsum_cosine", "q3_no_grad_clone_bdot",
               "q1_eps_1e5_added", "q1_eps_1e5_clamped", "outsider_clamp_vectorised"),
    "bugs": ("bernoulli_returns_float64", "kl_mc_sample_not_rsample", "kl_mc_sampling_under_no_grad", "vf_detaches_inputs"),
}
CASES = [e for kind, names in REVIEWED.items() for e in entries(kind) if e.name in names]


@pytest.fixture(scope="module")
def autograder_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_zip(tmp_path_factory.mktemp("dist"))


def test_every_reviewed_entry_exists() -> None:
    assert sorted(e.name for e in CASES) == sorted(n for names in REVIEWED.values() for n in names)


@pytest.mark.parametrize("entry", CASES, ids=lambda e: e.key)
def test_graded_through_run_autograder(entry: Entry, autograder_zip: Path, tmp_path: Path) -> None:
    results = simulate(autograder_zip, materialise(entry, tmp_path / "upload"), tmp_path / "gs").results()
    scores = part_scores(results)
    if entry.kind == "styles":
        failures = {t["number"]: t["output"][:300] for t in results["tests"] if t["status"] != "passed"}
        assert results["score"] == FULL_MARKS, f"{entry.name} lost points (a correct style earns grading.yaml's {FULL_MARKS:g}): {failures}"
        return
    part = str(entry.meta["part"])
    assert {p: s for p, s in scores.items() if p != part} == {p: WORTH[p] for p in PARTS if p != part}, (f"{entry.name} lost points outside part {part}", scores)
    expected = WORTH[part] - float(entry.meta["points_lost"]) if "points_lost" in entry.meta else None
    assert scores[part] < WORTH[part] and (expected is None or scores[part] == expected), (f"{entry.name} should lose points in part {part} only", scores[part])
