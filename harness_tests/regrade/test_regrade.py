"""Bulk regrade of a Gradescope export: metadata, bad and empty submissions, the same
per-part scores as single gradings, fingerprinted reuse, a grown export, and the
tables a TA reads (grades.csv, tests.csv, histogram, summary, ``show``)."""
from __future__ import annotations

import csv
import json
import shutil
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from autograder.regrade.batch import FINGERPRINT_KEY
from autograder.config import load_config
from autograder.regrade.export import ExportError, Record, read_metadata
from autograder.grading.run import grade_folder
from autograder.regrade.command import regrade_export
from autograder.regrade.show import render
from harness_tests.corpus import FULL_MARKS, LAYOUT, WORTH, entries, marks, materialise, part_scores
from harness_tests.regrade_helpers import cli, grades, reference, zip_folder

FULL = marks(FULL_MARKS)  # grading.yaml's total, as grades.csv writes it


def _big_decimal(points: float) -> str:
    """Ruby's BigDecimal dump, as Gradescope's metadata writes a score (36 -> 18:0.36e2)."""
    assert points == int(points), points
    digits = str(int(points))
    return f"18:0.{digits.rstrip('0') or '0'}e{len(digits)}"


METADATA = """\
submission_001:
  :submitters:
  - :name: Ada Lovelace
    :sid: '001'
    :email: ada@example.edu
  :created_at: 2026-11-20 10:00:00.000000000 -05:00
  :score: !ruby/object:BigDecimal __FULL_BIG_DECIMAL__
submission_002:
  :submitters:
  - :name: Alan Turing
  :surprise: [1, 2]
  :score: __FULL__
submission_003: {}
submission_004:
  :submitters: []
submission_005:
  :submitters: []
""".replace("__FULL_BIG_DECIMAL__", _big_decimal(FULL_MARKS)).replace("__FULL__", f"{FULL_MARKS:.1f}")


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("export") / "assignment_42_export"
    root.mkdir()
    reference(root / "submission_001")
    materialise(entries("bugs")[0], root / "submission_002")
    materialise(entries("styles")[0], root / "submission_003")
    (root / "submission_004").mkdir()  # empty upload
    reference(root / "submission_005")
    (root / "submission_005" / "q1_solution.py").write_text("this is not python(\n")  # costs Q1 only
    reference(root / "submission_006")  # a late submission the metadata does not list
    (root / "submission_metadata.yml").write_text(METADATA)
    return zip_folder(root, root.parent / "export.zip")


def test_metadata_tolerates_ruby_tags_and_unknown_keys(export: Path, tmp_path: Path) -> None:
    with zipfile.ZipFile(export) as zf:
        zf.extractall(tmp_path)
    records, present = read_metadata(tmp_path / "assignment_42_export")
    assert present
    assert records["submission_001"].students[0].email == "ada@example.edu" and records["submission_001"].export_score == FULL_MARKS
    assert records["submission_001"].created_at == datetime(2026, 11, 20, 10, 0, tzinfo=timezone(-timedelta(hours=5)))
    assert records["submission_002"].students[0].name == "Alan Turing" and records["submission_002"].export_score == FULL_MARKS
    assert records["submission_002"].created_at is None
    assert records["submission_003"] == Record()


def test_regrade_matches_single_gradings_and_resumes(export: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert regrade_export(LAYOUT, export, out, jobs=2) == 0
    captured = capsys.readouterr()
    assert "6 submission(s), 6 graded" in captured.out and "most common failure" in captured.out
    assert "1 submission folder(s) not in submission_metadata.yml, graded with blank names: submission_006" in captured.err
    assert "0 reused" in captured.err
    rows = grades(out)
    assert set(rows) == {f"submission_00{i}" for i in range(1, 7)}
    assert rows["submission_001"]["name"] == "Ada Lovelace" and rows["submission_001"]["total"] == FULL
    assert rows["submission_001"]["export_score"] == FULL and rows["submission_001"]["changed"] == ""
    assert float(rows["submission_002"]["changed"]) < 0  # Gradescope holds full marks, the bug scores less
    assert rows["submission_006"]["name"] == "" and rows["submission_006"]["total"] == FULL
    assert rows["submission_004"]["total"] == "0" and "missing q1_solution.py" in rows["submission_004"]["errors"]
    assert rows["submission_005"]["1.1"] == "0" and rows["submission_005"]["2.1"] == marks(WORTH["2.1"])
    assert rows["submission_005"]["errors"] == "q1_solution.py: syntax error at line 1"
    assert rows["submission_001"]["errors"] == "" and rows["submission_002"]["errors"] == ""
    # The summary ends with the submissions that need a look.
    tail = captured.out.split("problem submissions (2):", 1)[1]
    assert "submission_004: missing q1_solution.py" in tail and "submission_005: q1_solution.py: syntax error at line 1" in tail
    with (out / "tests.csv").open(newline="") as handle:
        per_test = {r["submission_id"]: r for r in csv.DictReader(handle)}
    config = load_config(LAYOUT.config_file)
    assert list(per_test["submission_001"])[1:] == [t.number for t in config.tests()]
    assert sum(float(v) for k, v in per_test["submission_001"].items() if k != "submission_id") == FULL_MARKS
    assert (out / "histogram.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    extracted = out / "export"
    for key in ("submission_001", "submission_002", "submission_003", "submission_005"):
        single = grade_folder(LAYOUT, next(extracted.rglob(key)), None).results
        batch = json.loads((out / "results" / f"{key}.json").read_text())
        assert part_scores(batch) == part_scores(single), key
        assert [t["output"] for t in batch["tests"]] == [t["output"] for t in single["tests"]], key
        assert len(config.tests()) == len(batch["tests"])
    # Resume: only the missing result is regraded; the others are reused untouched.
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "results").iterdir()}
    (out / "results" / "submission_003.json").unlink()
    assert regrade_export(LAYOUT, export, out, jobs=2) == 0
    assert "5 reused (fingerprint unchanged), 1 to grade" in capsys.readouterr().err
    after = {p.name: p.stat().st_mtime_ns for p in (out / "results").iterdir()}
    assert after.keys() == stamps.keys()
    assert all(after[n] == stamps[n] for n in stamps if n != "submission_003.json")
    # A result that is not of this fingerprint (here: forged to look older) is not trusted.
    stale = json.loads((out / "results" / "submission_001.json").read_text())
    stale[FINGERPRINT_KEY] = "0" * 64
    stale["tests"][0]["score"] = 0.0
    (out / "results" / "submission_001.json").write_text(json.dumps(stale))
    assert regrade_export(LAYOUT, export, out, jobs=1, only=["submission_001"]) == 0
    assert grades(out)["submission_001"]["total"] == FULL
    assert grades(out) == rows


def test_grown_and_changed_export_into_the_same_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "class"
    reference(root / "alice")
    shutil.copytree(LAYOUT.template_dir, root / "bob")
    out = tmp_path / "out"
    assert regrade_export(LAYOUT, zip_folder(root, tmp_path / "first.zip"), out, jobs=1) == 0
    assert {k: r["total"] for k, r in grades(out).items()} == {"alice": FULL, "bob": "0"}
    capsys.readouterr()
    # The new export: bob re-uploaded a finished solution, carol submitted late.
    shutil.rmtree(root / "bob")
    reference(root / "bob")
    materialise(entries("bugs")[0], root / "carol")
    assert regrade_export(LAYOUT, zip_folder(root, tmp_path / "second.zip"), out, jobs=1) == 0
    assert "3 submission(s): 1 reused (fingerprint unchanged), 2 to grade" in capsys.readouterr().err
    rows = grades(out)
    assert set(rows) == {"alice", "bob", "carol"} and rows["bob"]["total"] == FULL and float(rows["carol"]["total"]) < FULL_MARKS


def test_plain_folder_of_submissions(tmp_path: Path) -> None:
    export = tmp_path / "class"
    reference(export / "alice")
    shutil.copytree(LAYOUT.template_dir, export / "bob")
    assert regrade_export(LAYOUT, export, tmp_path / "out", jobs=1) == 0
    rows = grades(tmp_path / "out")
    assert rows["alice"]["total"] == FULL and rows["bob"]["total"] == "0"
    assert "not implemented" in rows["bob"]["errors"]


def test_missing_export_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="export not found"):
        regrade_export(LAYOUT, tmp_path / "nope.zip", tmp_path / "out")


def test_show_renders_the_student_view(tmp_path: Path) -> None:
    results = {
        "score": 3.0,
        "output": "",
        "tests": [
            {"name": "1.1.1 shape", "number": "1.1.1", "score": 1.0, "max_score": 1.0, "status": "passed", "output": "Passed.", "visibility": "visible"},
            {"name": "1.1.2 values", "number": "1.1.2", "score": 0.0, "max_score": 2.0, "status": "failed", "output": "off by 2", "visibility": "visible"},
            {"name": "1.1.3 later", "number": "1.1.3", "score": 2.0, "max_score": 2.0, "status": "passed", "output": "Passed.", "visibility": "after_due_date"},
            {"name": "1.1.4 secret", "number": "1.1.4", "score": 0.0, "max_score": 1.0, "status": "failed", "output": "SECRET EXPECTED 42", "visibility": "hidden"},
        ],
    }
    text = render(results)
    assert "1.1.2 values  0/2  (failed)" in text and "off by 2" in text
    assert "1.1.3 later  2/2  (passed)  [shown to the student after the due date]" in text
    assert "secret" not in text.lower() and "1 hidden test(s) are never shown" in text
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results))
    shown = cli("show", str(path))
    assert shown.returncode == 0 and shown.stdout.strip() == text
    missing = cli("show", str(tmp_path / "nope.json"))
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "results file not found" in missing.stderr
