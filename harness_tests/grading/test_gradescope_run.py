"""The real run_autograder path, from the built zip: the reference earns full marks
(grading.yaml's total), the template zero with a not-implemented message per part, and
results.json is valid."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness_tests.corpus import FULL_MARKS, LAYOUT, PARTS, TEST_COUNT, WORTH, part_scores
from harness_tests.gradescope_sim import build_zip, install, run_autograder, simulate

TEST_KEYS = {"name", "number", "score", "max_score", "status", "output", "output_format", "tags", "visibility"}
VISIBILITIES = {"visible", "hidden", "after_due_date", "after_published"}


@pytest.fixture(scope="session")
def autograder_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_zip(tmp_path_factory.mktemp("dist"))


def assert_valid_results(results: dict) -> None:
    """Gradescope's results.json contract (its autograder specification)."""
    assert {"score", "execution_time", "output", "output_format", "visibility", "stdout_visibility", "tests"} <= set(results)
    assert isinstance(results["execution_time"], (int, float))
    for test in results["tests"]:
        assert TEST_KEYS <= set(test), test
        assert test["output_format"] in ("md", "text")
        assert test["visibility"] in VISIBILITIES
        assert test["status"] in ("passed", "failed")
        assert str(test["number"]).split(".")[:2] and ".".join(str(test["number"]).split(".")[:2]) in PARTS
    assert abs(results["score"] - sum(t["score"] for t in results["tests"])) < 1e-9


def test_reference_scores_full_marks(autograder_zip: Path, tmp_path: Path) -> None:
    run = simulate(autograder_zip, LAYOUT.reference_dir, tmp_path / "gs")
    assert run.returncode == 0, run.stderr
    results = run.results()
    assert_valid_results(results)
    assert results["score"] == FULL_MARKS, ("the reference should earn grading.yaml's total",
                                            [t["output"] for t in results["tests"] if t["status"] != "passed"])
    assert len(results["tests"]) == TEST_COUNT, f"results.json should list each of grading.yaml's {TEST_COUNT} tests once"


def test_template_scores_zero_with_not_implemented_messages(autograder_zip: Path, tmp_path: Path) -> None:
    upload = tmp_path / "upload"
    shutil.copytree(LAYOUT.template_dir, upload)
    run = simulate(autograder_zip, upload, tmp_path / "gs")
    results = run.results()
    assert_valid_results(results)
    assert results["score"] == 0.0
    for part, score in part_scores(results).items():
        assert score == 0.0
        outputs = [t["output"] for t in results["tests"] if t["number"].startswith(part + ".")]
        assert any("not implemented" in o.lower() for o in outputs), (part, outputs)


def test_subfolder_crlf_and_bom_are_accepted(autograder_zip: Path, tmp_path: Path) -> None:
    upload = tmp_path / "upload" / "my_hw3"
    upload.mkdir(parents=True)
    for name in ("q1_solution.py", "q2_solution.py", "q3_solution.py"):
        text = (LAYOUT.reference_dir / name).read_bytes().replace(b"\n", b"\r\n")
        (upload / name).write_bytes(b"\xef\xbb\xbf" + text)
    (upload / "notes.txt").write_text("ignored")
    run = simulate(autograder_zip, upload.parent, tmp_path / "gs")
    assert run.results()["score"] == FULL_MARKS, "a reference with CRLF, a BOM and a subfolder should earn grading.yaml's total"


def test_missing_file_costs_only_its_modules_parts(autograder_zip: Path, tmp_path: Path) -> None:
    upload = tmp_path / "upload"
    upload.mkdir()
    shutil.copyfile(LAYOUT.reference_dir / "q1_solution.py", upload / "q1_solution.py")
    shutil.copyfile(LAYOUT.reference_dir / "q3_solution.py", upload / "q3_solution.py")
    results = simulate(autograder_zip, upload, tmp_path / "gs").results()
    scores = part_scores(results)
    assert scores["2.1"] == 0.0 and all(s == WORTH[p] for p, s in scores.items() if p != "2.1"), ("only q2's part should lose its points", scores)
    assert all("q2_solution.py not found" in t["output"] for t in results["tests"] if t["number"].startswith("2.1"))


def test_broken_harness_still_writes_results(autograder_zip: Path, tmp_path: Path) -> None:
    root = tmp_path / "gs"
    install(autograder_zip, LAYOUT.reference_dir, root)
    (root / "source" / "grading.yaml").write_text("version: 1\nparts: [not a mapping\n")
    run = run_autograder(root, timeout=300)
    assert run.returncode == 0
    results = run.results()
    assert results["score"] == 0
    assert "autograder itself failed" in results["output"] and "grading.yaml" in results["output"]
