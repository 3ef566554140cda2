"""The student kit as students meet it: unzip, drop in solutions, run the visible tests
with plain pytest or the local grader, and see what Gradescope will say."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from autograder.build import build_student_kit
from harness_tests.corpus import CONFIG, LAYOUT, entries, materialise
from harness_tests.gradescope_sim import build_zip, simulate


@pytest.fixture(scope="module")
def kit_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_student_kit(LAYOUT, tmp_path_factory.mktemp("dist"))


def unpack(kit_zip: Path, where: Path, solutions: Path | None) -> Path:
    with zipfile.ZipFile(kit_zip) as archive:
        archive.extractall(where)
    if solutions is not None:
        for name in ("q1_solution.py", "q2_solution.py", "q3_solution.py"):
            shutil.copyfile(solutions / name, where / name)
    return where


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "HW3_"))}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_plain_pytest_in_the_kit(kit_zip: Path, tmp_path: Path) -> None:
    kit = unpack(kit_zip, tmp_path / "kit", LAYOUT.reference_dir)
    proc = run(kit, "-m", "pytest", "-q")
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert "17 passed, 13 skipped" in proc.stdout


def test_template_in_the_kit_scores_zero(kit_zip: Path, tmp_path: Path) -> None:
    kit = unpack(kit_zip, tmp_path / "kit", None)
    proc = run(kit, "-m", "autograder", "grade", ".", "--results", "r.json")
    results = json.loads((kit / "r.json").read_text())
    assert results["score"] == 0 and len(results["tests"]) == 17
    assert all("not implemented" in t["output"] for t in results["tests"])
    assert "total: 0/23 (+13 in hidden tests" in proc.stdout


@pytest.mark.parametrize("bug", ["lme_naive_exp_log", "loss_unnegated", "forward_wrong_order"])
def test_kit_says_what_gradescope_says(bug: str, kit_zip: Path, tmp_path: Path) -> None:
    entry = next(e for e in entries("bugs") if e.name == bug)
    upload = materialise(entry, tmp_path / "upload")
    kit = unpack(kit_zip, tmp_path / "kit", upload)
    run(kit, "-m", "autograder", "grade", ".", "--results", "local.json")
    local = {t["number"]: t["status"] for t in json.loads((kit / "local.json").read_text())["tests"]}
    remote = simulate(build_zip(tmp_path / "dist"), upload, tmp_path / "gs").results()
    visible = {t["number"]: t["status"] for t in remote["tests"] if t["visibility"] == "visible"}
    # Same verdicts; the values in the messages differ, because Gradescope grades the
    # visible tests on inputs that the kit does not hold.
    assert local == visible
    assert "failed" in local.values()


KIT_GRADER = """
import json, sys
from pathlib import Path
from autograder.grading import grade_folder
from autograder.paths import KitLayout
layout = KitLayout.here()
scores = {}
for folder in sys.argv[1:]:
    summary = grade_folder(layout, Path(folder), None)
    scores[Path(folder).name] = [(o.number, o.status, o.output[:300]) for o in summary.outcomes]
print(json.dumps(scores))
"""


def test_every_correct_style_gets_every_visible_point_in_the_kit(kit_zip: Path, tmp_path: Path) -> None:
    """Locally (no hidden fixtures, no correct callees) each style passes every visible test."""
    kit = unpack(kit_zip, tmp_path / "kit", None)
    folders = [str(materialise(entry, tmp_path / "styles" / entry.name)) for entry in entries("styles")]
    proc = run(kit, "-c", KIT_GRADER, *folders)
    assert proc.returncode == 0, proc.stderr[-2000:]
    scores = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(scores) == len(folders)
    for name, outcomes in scores.items():
        assert len(outcomes) == sum(not t.hidden for t in CONFIG.tests()), (name, len(outcomes))
        failed = [o for o in outcomes if o[1] != "passed"]
        assert not failed, f"{name} loses visible points in the student kit: {failed}"
