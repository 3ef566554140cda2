"""``grade``, ``regrade`` and ``run_autograder`` check the fixtures they need before
anything is graded: a corrupt, missing or stale fixture file is one line and exit 2 with
nothing written (an existing ``--out`` untouched), in the course's repository missing
hidden fixtures are an error and not the student kit's mode, and on Gradescope the run
ends with a results.json that says to tell the course staff and holds no score."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from autograder.grading.fixture_store import FILES
from harness_tests.corpus import LAYOUT
from harness_tests.gradescope_sim import build_zip, install, run_autograder
from harness_tests.regrade_helpers import cli, copy_kit, reference

EXTRA = ("conftest.py", "requirements.txt", "setup.sh", "run_autograder")


def _corrupt(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-5] ^= 0x01
    path.write_bytes(bytes(data))


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _one_line_refusal(proc, *fragments: str) -> str:
    text = proc.stdout + proc.stderr
    assert proc.returncode == 2, text
    assert "Traceback" not in text, text
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: the kit cannot grade"), proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


BREAKAGES = {
    "corrupt hidden": lambda kit: _corrupt(kit / "fixtures" / FILES["hidden"]),
    "missing hidden": lambda kit: (kit / "fixtures" / FILES["hidden"]).unlink(),
    "corrupt visible": lambda kit: _corrupt(kit / "fixtures" / FILES["visible"]),
    "stale reference": lambda kit: (kit / "reference" / "q1_solution.py").write_text(
        (kit / "reference" / "q1_solution.py").read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8"),
}
SAYS = {"corrupt hidden": FILES["hidden"], "missing hidden": "missing", "corrupt visible": FILES["visible"], "stale reference": "reference/ changed"}


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_grade_and_regrade_refuse_a_broken_kit_before_grading(breakage: str, tmp_path: Path) -> None:
    kit = copy_kit(tmp_path / "kit", EXTRA)
    BREAKAGES[breakage](kit)
    results = tmp_path / "results.json"
    _one_line_refusal(cli("grade", "--results", str(results), cwd=kit), SAYS[breakage])
    assert not results.exists(), "a refused grading wrote results"

    export = tmp_path / "export"
    reference(export / "submission_1")
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("a TA's earlier work\n", encoding="utf-8")
    before = _tree(out)
    _one_line_refusal(cli("regrade", str(export), "--out", str(out), cwd=kit), SAYS[breakage])
    assert _tree(out) == before, "a refused regrade touched --out"


def test_the_student_kit_grades_without_hidden_fixtures(tmp_path: Path) -> None:
    kit = copy_kit(tmp_path / "kit", EXTRA)
    (kit / "fixtures" / FILES["hidden"]).unlink()
    shutil.rmtree(kit / "reference")  # the student kit has no reference: its own mode
    shutil.copytree(LAYOUT.reference_dir, tmp_path / "upload")
    proc = cli("grade", str(tmp_path / "upload"), cwd=kit)
    assert proc.returncode == 0 and "hidden, graded on Gradescope" in proc.stdout, proc.stdout + proc.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="Gradescope's run needs root (the sandbox user)")
def test_gradescope_reports_a_broken_kit_to_the_staff_and_gives_no_score(tmp_path: Path) -> None:
    root = tmp_path / "gs"
    install(build_zip(tmp_path / "dist"), LAYOUT.reference_dir, root)
    _corrupt(root / "source" / "fixtures" / FILES["hidden"])
    run = run_autograder(root)
    assert run.returncode == 0, run.stderr
    results = run.results()
    assert "score" not in results and "tests" not in results, results
    assert results["output"].startswith("Grader error, tell the course staff") and FILES["hidden"] in results["output"], results
