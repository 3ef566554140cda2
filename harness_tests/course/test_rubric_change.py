"""The harness's own tests survive a legitimate rubric change: in a copy of the project, a
visible test is added to 1.3 (log-mean-exp of a single sample, K = 1; 1.3.1 gives up a
point so the part still adds up to its worth), the fixtures are regenerated, and the
count-dependent harness tests run there, in the copy, as a course would run them. They
take HW3's counts from grading.yaml and the fixtures, so they still pass."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from autograder.config import load_config
from harness_tests.corpus import CONFIG
from harness_tests.regrade_helpers import copy_kit

EXTRA = ("conftest.py", "requirements.txt", "setup.sh", "run_autograder", "harness_tests")
NEW_TEST = "1.3.4"
# What depends on the rubric's counts: the kit's visible and hidden tests, the template's
# visible points, the tools a kit offers, the attack corpus's test names, the real file's
# totals, and full marks through run_autograder with one result per test.
COUNT_DEPENDENT = (
    "harness_tests/course/test_student_kit.py::test_plain_pytest_in_the_kit",
    "harness_tests/course/test_student_kit.py::test_template_in_the_kit_scores_zero",
    "harness_tests/course/test_student_kit.py::test_kit_holds_no_instructor_tools_and_offers_only_grade",
    "harness_tests/sandbox/test_attacks.py::test_attack_corpus_is_well_formed",
    "harness_tests/test_config.py",
    "harness_tests/grading/test_gradescope_run.py::test_reference_scores_full_marks",
    "harness_tests/grading/test_gradescope_run.py::test_missing_file_costs_only_its_modules_parts",
)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, (path, old)
    path.write_text(text.replace(old, new), encoding="utf-8")


def run(project: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "GRADER_"))}
    return subprocess.run([sys.executable, *args], cwd=project, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def changed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = copy_kit(tmp_path_factory.mktemp("rubric") / "project", EXTRA)
    points = CONFIG.test("1.3.1").points
    assert points >= 2, "1.3.1 must be able to give a point to the new test"
    edit(project / "grading.yaml", f'''        name: log_mean_exp matches the reference
        points: {points:g}''', f'''        name: log_mean_exp matches the reference
        points: {points - 1:g}''')
    edit(project / "grading.yaml", '''  "1.4":''', f'''      "{NEW_TEST}":
        name: log_mean_exp of a single sample is the sample itself
        points: 1
        tolerance: *lme_tol
  "1.4":''')
    edit(project / "assignment" / "cases.py", '''    CaseSpec("lme_basic",''', f'''    CaseSpec("lme_single", "{NEW_TEST}", lambda r, g: lme_case(r, g, 4, 1, 0.0, 3.0)),
    CaseSpec("lme_basic",''')
    with (project / "tests" / "test_q1.py").open("a", encoding="utf-8") as handle:
        handle.write(f'\n\n@pytest.mark.graded("{NEW_TEST}")\ndef test_log_mean_exp_single(grader: Grader) -> None:\n'
                     '    _values(grader, "log_mean_exp", "lme_single", ("y",))\n')
    generated = run(project, "-m", "autograder", "fixtures", "generate")
    assert generated.returncode == 0, generated.stdout + generated.stderr
    # With one sample, log-SUM-exp is log-MEAN-exp: generate names the case and the mistake.
    assert "warning: case lme_single (test 1.3.4): the known mistake 'out:logsumexp'" in generated.stdout, generated.stdout
    return project


def test_the_change_moves_the_counts(changed: Path) -> None:
    after = load_config(changed / "grading.yaml")
    assert len(after.tests()) == len(CONFIG.tests()) + 1
    assert sum(not t.hidden for t in after.tests()) == sum(not t.hidden for t in CONFIG.tests()) + 1
    assert after.total_points == CONFIG.total_points and after.part("1.3").points == CONFIG.part("1.3").points


def test_the_count_dependent_harness_tests_pass_in_the_changed_copy(changed: Path) -> None:
    proc = run(changed, "-m", "pytest", "-q", *COUNT_DEPENDENT)
    tail = proc.stdout[-4000:] + proc.stderr[-2000:]
    assert proc.returncode == 0, f"a harness test still counts HW3's tests instead of reading grading.yaml:\n{tail}"
    assert " passed" in proc.stdout and "skipped" not in proc.stdout.splitlines()[-1], tail
