"""Bulk regrade of a Gradescope export: metadata, bad and empty submissions, resume,
and the same per-part scores as single gradings."""
from __future__ import annotations

import csv
import json
import shutil
import zipfile
from pathlib import Path

import pytest

from autograder.config import load_config
from autograder.grading import grade_folder
from autograder.regrade import read_metadata, regrade_export
from harness_tests.corpus import LAYOUT, entries, materialise, part_scores

METADATA = """\
submission_001:
  :submitters:
  - :name: Ada Lovelace
    :sid: '001'
    :email: ada@example.edu
  :created_at: 2026-11-20 10:00:00.000000000 -05:00
  :score: !ruby/object:BigDecimal 18:0.36e2
submission_002:
  :submitters:
  - :name: Alan Turing
  :surprise: [1, 2]
submission_003: {}
"""


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("export") / "assignment_42_export"
    root.mkdir()
    shutil.copytree(LAYOUT.reference_dir, root / "submission_001")
    materialise(entries("bugs")[0], root / "submission_002")
    materialise(entries("styles")[0], root / "submission_003")
    (root / "submission_004").mkdir()  # empty upload
    shutil.copytree(LAYOUT.reference_dir, root / "submission_005")
    (root / "submission_005" / "q1_solution.py").write_text("this is not python(\n")  # costs Q1 only
    (root / "submission_metadata.yml").write_text(METADATA)
    archive = root.parent / "export.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(root.rglob("*")):
            zf.write(path, path.relative_to(root.parent))
    return archive


def test_metadata_tolerates_ruby_tags_and_unknown_keys(export: Path, tmp_path: Path) -> None:
    with zipfile.ZipFile(export) as zf:
        zf.extractall(tmp_path)
    students = read_metadata(tmp_path / "assignment_42_export")
    assert students["submission_001"][0].email == "ada@example.edu"
    assert students["submission_002"][0].name == "Alan Turing"
    assert students["submission_003"] == ()


def test_regrade_matches_single_gradings_and_resumes(export: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert regrade_export(LAYOUT, export, out, jobs=2) == 0
    printed = capsys.readouterr().out
    assert "5 submission(s)" in printed and "most common failure" in printed
    rows = {r["submission_id"]: r for r in csv.DictReader((out / "grades.csv").open())}
    assert set(rows) == {f"submission_00{i}" for i in range(1, 6)}
    assert rows["submission_001"]["names"] == "Ada Lovelace" and rows["submission_001"]["total"] == "36"
    assert rows["submission_004"]["total"] == "0" and "not found" in rows["submission_004"]["errors"]
    assert rows["submission_005"]["1.1"] == "0" and rows["submission_005"]["2.1"] == "4"
    config = load_config(LAYOUT.config_file)
    extracted = out / "export"
    for key in ("submission_001", "submission_002", "submission_003", "submission_005"):
        single = grade_folder(LAYOUT, next(extracted.rglob(key)), None).results
        batch = json.loads((out / "results" / f"{key}.json").read_text())
        assert part_scores(batch) == part_scores(single), key
        assert [t["output"] for t in batch["tests"]] == [t["output"] for t in single["tests"]], key
    assert len(config.tests()) == len(batch["tests"])
    # Resume: only the missing result is regraded; the others are left untouched.
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "results").iterdir()}
    (out / "results" / "submission_003.json").unlink()
    assert regrade_export(LAYOUT, export, out, jobs=2) == 0
    after = {p.name: p.stat().st_mtime_ns for p in (out / "results").iterdir()}
    assert after.keys() == stamps.keys()
    assert all(after[n] == stamps[n] for n in stamps if n != "submission_003.json")


def test_plain_folder_of_submissions(tmp_path: Path) -> None:
    export = tmp_path / "class"
    shutil.copytree(LAYOUT.reference_dir, export / "alice")
    shutil.copytree(LAYOUT.template_dir, export / "bob")
    assert regrade_export(LAYOUT, export, tmp_path / "out", jobs=1) == 0
    rows = {r["submission_id"]: r for r in csv.DictReader((tmp_path / "out" / "grades.csv").open())}
    assert rows["alice"]["total"] == "36" and rows["bob"]["total"] == "0"


def test_missing_export_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="export not found"):
        regrade_export(LAYOUT, tmp_path / "nope.zip", tmp_path / "out")
