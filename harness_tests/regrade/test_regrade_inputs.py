"""What the real command does with input a TA can get wrong (one clear line, exit 2,
nothing graded, nothing lost), and with a rubric changed between two runs into the
same --out (everyone regraded: the grades of a fresh run)."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from harness_tests.corpus import FULL_MARKS, LAYOUT, marks
from harness_tests.regrade_helpers import bug, cli, copy_kit, grades, reference, zip_folder


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _one_clear_line(result: "object", *needles: str) -> None:
    stderr = result.stderr  # type: ignore[attr-defined]
    assert result.returncode == 2, (result.returncode, stderr)  # type: ignore[attr-defined]
    assert "Traceback" not in stderr and stderr.count("\n") == 1, stderr
    for needle in needles:
        assert needle in stderr, stderr


@pytest.fixture(scope="module")
def small_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("small") / "export"
    reference(root / "alice")
    return root


def test_the_kit_itself_is_not_an_export(tmp_path: Path) -> None:
    before = _snapshot(LAYOUT.root / "tests")
    done = cli("regrade", str(LAYOUT.root), "--out", str(tmp_path / "out"))
    _one_clear_line(done, "not an export")
    assert not (tmp_path / "out" / "results").exists() and _snapshot(LAYOUT.root / "tests") == before


def test_a_folder_without_python_is_not_an_export(tmp_path: Path) -> None:
    (tmp_path / "photos" / "2026").mkdir(parents=True)
    (tmp_path / "photos" / "2026" / "cat.jpg").write_bytes(b"\xff\xd8")
    _one_clear_line(cli("regrade", str(tmp_path / "photos"), "--out", str(tmp_path / "out")), "not an export", ".py")


def test_out_inside_the_export(small_export: Path) -> None:
    before = _snapshot(small_export)
    _one_clear_line(cli("regrade", str(small_export), "--out", str(small_export / "graded")), "--out must not be inside the export")
    assert _snapshot(small_export) == before and not (small_export / "graded").exists()


def test_unreadable_metadata_names_the_line(tmp_path: Path) -> None:
    root = tmp_path / "export"
    reference(root / "submission_1")
    (root / "submission_metadata.yml").write_text("submission_1:\n  :submitters: [\n  - :name: x\n")
    _one_clear_line(cli("regrade", str(root), "--out", str(tmp_path / "out")), "submission_metadata.yml", "line 3")
    assert not (tmp_path / "out" / "results").exists()


def test_corrupt_zip_leaves_nothing(tmp_path: Path, small_export: Path) -> None:
    archive = zip_folder(small_export, tmp_path / "export.zip")
    data = bytearray(archive.read_bytes())
    data[120:200] = b"\x00" * 80  # inside alice's first file: a CRC or inflate error
    archive.write_bytes(bytes(data))
    out = tmp_path / "out"
    _one_clear_line(cli("regrade", str(archive), "--out", str(out)), "export.zip", "not a readable zip")
    assert not out.exists()
    archive.write_bytes(b"PK\x03\x04 truncated")
    _one_clear_line(cli("regrade", str(archive), "--out", str(out)), "not a readable zip")
    assert not out.exists()


def test_missing_export_and_unknown_only(tmp_path: Path, small_export: Path) -> None:
    _one_clear_line(cli("regrade", str(tmp_path / "nope.zip"), "--out", str(tmp_path / "out")), "export not found")
    _one_clear_line(cli("regrade", str(small_export), "--out", str(tmp_path / "out"), "--only", "bob"), "no submission folder named bob")
    assert not (tmp_path / "out" / "results").exists()


def test_grade_of_a_missing_folder(tmp_path: Path) -> None:
    _one_clear_line(cli("grade", str(tmp_path / "nope")), "submission folder not found")


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_kit(tmp_path_factory.mktemp("kit") / "kit")


def test_grade_with_a_broken_grading_yaml(kit: Path, tmp_path: Path) -> None:
    broken = copy_kit(tmp_path / "kit")
    (broken / "grading.yaml").write_text((kit / "grading.yaml").read_text().replace("points_per_part: 4", "points_per_part: [4"))
    _one_clear_line(cli("grade", str(LAYOUT.reference_dir), cwd=broken), "configuration error", "grading.yaml")
    _one_clear_line(cli("regrade", str(LAYOUT.root / "harness_tests" / "submissions" / "styles"), "--out", str(tmp_path / "o"), cwd=broken), "grading.yaml")


@pytest.mark.skipif(os.geteuid() != 0, reason="grades with the sandbox users (root only)")
def test_rubric_change_regrades_everyone(kit: Path, tmp_path: Path) -> None:
    export = tmp_path / "export"
    reference(export / "ref")
    bug("bernoulli_returns_float64", export / "bug_values")  # fails 1.1.1 (its dtype) only
    bug("bernoulli_keepdim_shape", export / "bug_shape")
    shutil.copytree(LAYOUT.template_dir, export / "template")
    out, fresh = tmp_path / "out", tmp_path / "fresh"
    assert cli("regrade", str(export), "--out", str(out), "--jobs", "2", cwd=kit).returncode == 0
    before = grades(out)
    rubric = kit / "grading.yaml"
    text = rubric.read_text()
    swapped = text.replace(
        "log_likelihood_bernoulli returns one float32 value per example, the right one\n        points: 1",
        "log_likelihood_bernoulli returns one float32 value per example, the right one\n        points: 2",
    ).replace("log_likelihood_bernoulli matches the reference\n        points: 2", "log_likelihood_bernoulli matches the reference\n        points: 1")
    assert swapped != text
    rubric.write_text(swapped)
    try:
        again = cli("regrade", str(export), "--out", str(out), "--jobs", "2", cwd=kit)
        assert again.returncode == 0 and "0 reused (fingerprint unchanged), 4 to grade" in again.stderr, again.stderr
        assert cli("regrade", str(export), "--out", str(fresh), "--jobs", "2", cwd=kit).returncode == 0
    finally:
        rubric.write_text(text)
    assert grades(out) == grades(fresh)
    assert grades(out)["bug_values"]["1.1"] != before["bug_values"]["1.1"], "the rubric change made no difference"
    assert grades(out)["ref"]["total"] == marks(FULL_MARKS), "the reference keeps full marks under the changed rubric"


@pytest.mark.skipif(os.geteuid() != 0, reason="only root switches to sandbox users")
def test_submissions_that_cannot_be_graded_are_listed_and_retried(small_export: Path, tmp_path: Path) -> None:
    kit = copy_kit(tmp_path / "kit")
    rubric = kit / "grading.yaml"
    rubric.write_text(rubric.read_text().replace("user: hw3sandbox", "user: hw3nosuchuser", 1))
    out = tmp_path / "out"
    failed = cli("regrade", str(small_export), "--out", str(out), "--jobs", "1", cwd=kit)
    assert failed.returncode == 1 and "Traceback" not in failed.stderr
    assert "1 submission(s) could not be graded (run again to retry them): alice" in failed.stderr
    row = grades(out)["alice"]
    assert row["total"] == "" and "could not be graded" in row["errors"] and "hw3nosuchuser" in row["errors"]
    again = cli("regrade", str(small_export), "--out", str(out), "--jobs", "1", cwd=kit)
    assert again.returncode == 1 and "0 reused (fingerprint unchanged), 1 to grade" in again.stderr
