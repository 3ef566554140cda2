"""A visible message says nothing of a non-visible result.

From an outside review: a caller part's visible message said "calls your
log_likelihood_normal, which fails part 1.2" when only the non-visible 1.2.3 had failed
(the fallback runs of 1.5 come last, after the non-visible tests). A submission that fails
1.2.3 on purpose when some bit of its non-visible inputs is set read that bit back in a
visible message, before the due date. Graded here through run_autograder, as on
Gradescope: the note follows the callee's visible tests only, in a visible test."""
from __future__ import annotations

from pathlib import Path

import pytest

from autograder.grading.fixture_store import FixtureStore
from harness_tests.corpus import CONFIG, LAYOUT, materialise_files
from harness_tests.gradescope_sim import build_zip, simulate

CALLEE, CALLER = "log_likelihood_normal", "kl_gaussian_gaussian_mc"
NOTE = f"calls your {CALLEE}"


def _submission(tmp_path: Path, fail_when: str) -> Path:
    """The reference, whose callee raises ``fail_when`` and whose caller always raises (so
    that its tests fail with the student's callee and with the course's)."""
    text = (LAYOUT.reference_dir / "q1_solution.py").read_text(encoding="utf-8")
    text += f'''

_{CALLEE} = {CALLEE}


def {CALLEE}(mu, logvar, z):
    if {fail_when}:
        raise ValueError("fails on purpose")
    return _{CALLEE}(mu, logvar, z)


def {CALLER}(mu_q, logvar_q, mu_p, logvar_p, num_samples=1):
    {CALLEE}(mu_q, logvar_q, mu_q)
    raise ValueError("the caller's own bug")
'''
    return materialise_files(tmp_path / "upload", {"q1_solution.py": text})


def _parts(function: str) -> tuple[str, list[str]]:
    (part,) = [p for p in CONFIG.parts if function in p.functions]
    return part.number, [t.number for t in part.tests if t.hidden]


@pytest.fixture(scope="module")
def autograder_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_zip(tmp_path_factory.mktemp("dist"))


def test_a_non_visible_failure_of_the_callee_is_not_told_in_a_visible_message(autograder_zip: Path, tmp_path: Path) -> None:
    callee_part, hidden_numbers = _parts(CALLEE)
    assert hidden_numbers, f"part {callee_part} has no non-visible test: nothing to hide"
    store = FixtureStore(LAYOUT.fixtures_dir)
    hidden_shapes = {tuple(store.case(name).inputs["mu"].shape) for name, meta in store.manifest["cases"].items()
                     if meta.get("test") in hidden_numbers}
    visible_shapes = {tuple(store.case(name).inputs["mu"].shape) for name, meta in store.manifest["cases"].items()
                      if meta.get("test", "").startswith(callee_part + ".") and meta.get("visibility") == "visible"}
    only_hidden = hidden_shapes - visible_shapes
    assert only_hidden, "the non-visible cases of the callee's part share their shapes with the visible ones"
    results = simulate(autograder_zip, _submission(tmp_path, f"tuple(mu.shape) in {sorted(only_hidden)!r}"), tmp_path / "gs").results()
    tests = {t["number"]: t for t in results["tests"]}
    callee_tests = [t for t in tests.values() if t["number"].startswith(callee_part + ".")]
    assert all(t["status"] == "passed" for t in callee_tests if t["number"] not in hidden_numbers), "the callee's visible tests must pass"
    assert any(t["status"] != "passed" for t in callee_tests if t["number"] in hidden_numbers), "the callee must fail a non-visible test"
    (caller_part,) = [p for p in CONFIG.parts if CALLER in p.functions]
    visible = [tests[t.number] for t in caller_part.tests if not t.hidden]
    assert visible and all(t["status"] != "passed" for t in visible)
    told = [t["number"] for t in visible if NOTE in t["output"]]
    assert not told, f"visible tests {told} say the callee fails its part, which only a non-visible test shows"


def test_a_visible_failure_of_the_callee_is_still_told(autograder_zip: Path, tmp_path: Path) -> None:
    results = simulate(autograder_zip, _submission(tmp_path, "True"), tmp_path / "gs").results()
    (caller_part,) = [p for p in CONFIG.parts if CALLER in p.functions]
    tests = {t["number"]: t for t in results["tests"]}
    visible = [tests[t.number] for t in caller_part.tests if not t.hidden]
    assert visible and all(NOTE in t["output"] for t in visible), [t["output"][:300] for t in visible]
