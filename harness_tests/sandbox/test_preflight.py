"""``fixtures verify`` and ``build`` refuse what would ship broken, each with one line per
problem that says what to run: a test added without regenerating the fixtures, a visible
test turned non-visible (its expected values would reach the student kit), and a
tolerance too tight for a correct style. Each runs on a copy of the project."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness_tests.corpus import LAYOUT
from harness_tests.regrade_helpers import copy_kit

EXTRA = ("conftest.py", "requirements.txt", "setup.sh", "run_autograder")
STYLES = ("q1_eps_1e5_added", "q3_einsum_cosine")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = copy_kit(tmp_path / "project", EXTRA)
    for style in STYLES:  # calibration needs correct styles; two keep it quick
        shutil.copytree(LAYOUT.root / "harness_tests" / "submissions" / "styles" / style, root / "harness_tests" / "submissions" / "styles" / style)
    return root


def cli(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "GRADER_"))}
    return subprocess.run([sys.executable, "-m", "autograder", *args], cwd=project, env=env, capture_output=True, text=True, timeout=600)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def refused(proc: subprocess.CompletedProcess[str], *fragments: str) -> str:
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0, text
    assert "Traceback" not in text, text
    for fragment in fragments:
        assert fragment in text, (fragment, text)
    return text


def test_the_project_as_committed_is_accepted(project: Path) -> None:
    proc = cli(project, "fixtures", "verify")
    assert proc.returncode == 0 and "fixtures verified" in proc.stdout, proc.stdout + proc.stderr


def test_a_test_added_without_regenerating_is_refused(project: Path, tmp_path: Path) -> None:
    edit(project / "grading.yaml", '''        name: log_likelihood_bernoulli matches the reference
        points: 2''', '''        name: log_likelihood_bernoulli matches the reference
        points: 1''')
    edit(project / "grading.yaml", '''  "1.2":''', '''      "1.1.4":
        name: log_likelihood_bernoulli on one more case
        points: 1
  "1.2":''')
    with (project / "tests" / "test_q1.py").open("a", encoding="utf-8") as handle:
        handle.write('\n\n@pytest.mark.graded("1.1.4")\ndef test_bernoulli_extra(grader: Grader) -> None:\n'
                     '    _values(grader, "log_likelihood_bernoulli", "bernoulli_extra", BERNOULLI)\n')
    refused(cli(project, "fixtures", "verify"), "test 1.1.4 is new", "fixtures generate")
    refused(cli(project, "build", "--out", str(tmp_path / "dist")), "test 1.1.4 is new", "fixtures generate")
    assert not (tmp_path / "dist" / "autograder.zip").exists()
    # Regenerated, the new test still has no cases: the reference fails it, and both refuse.
    assert cli(project, "fixtures", "generate").returncode == 0
    refused(cli(project, "fixtures", "verify"), "reference fails 1.1.4", "fixtures generate")


def test_a_visible_test_turned_hidden_without_regenerating_is_refused(project: Path, tmp_path: Path) -> None:
    edit(project / "grading.yaml", '''        name: log_likelihood_bernoulli matches the reference
        points: 2''', '''        name: log_likelihood_bernoulli matches the reference
        points: 2
        visible: false''')
    text = refused(cli(project, "build", "--out", str(tmp_path / "dist")), "test 1.1.2", "would reach the student kit", "fixtures generate")
    assert not (tmp_path / "dist" / "student_kit.zip").exists(), text


def test_a_tolerance_too_tight_for_a_correct_style_is_refused(project: Path) -> None:
    edit(project / "grading.yaml", '''        tolerance: &lme_tol
          rtol: 1.0e-5
          atol: 1.0e-4''', '''        tolerance: &lme_tol
          rtol: 1.0e-9
          atol: 1.0e-9''')
    refused(cli(project, "fixtures", "verify"), "test 1.3.1 changed its tolerance", "fixtures generate")
    assert cli(project, "fixtures", "generate").returncode == 0
    refused(cli(project, "fixtures", "verify"), "test 1.3.1: a correct style uses", "widen its tolerance")
