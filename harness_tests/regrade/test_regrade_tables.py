"""What the real ``regrade`` command writes into grades.csv and tests.csv for a TA to open
in a spreadsheet: no cell is a formula whatever students call themselves (OWASP CSV
injection), a group submission is one line per submitter with their own name, email and
sid, when each was submitted and whether that was late; ``--only`` takes the submission
ID Gradescope shows; and without matplotlib the histogram note says what to install."""
from __future__ import annotations

import csv
import shutil
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from autograder.config import load_config
from autograder.regrade.csvcell import safe_cell
from autograder.regrade.export import read_metadata
from autograder.regrade.report import grades_header, part_scores, write_histogram
from harness_tests.corpus import LAYOUT
from harness_tests.regrade_helpers import cli, grade_rows, reference, zip_folder

# OWASP: a cell starting with one of these is run as a formula by spreadsheets.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
NUMBER_CHARS = set("0123456789.eE+-")

GROUP = "submission_236126116"
LATE = "submission_236126117"
ODD_KEY = "@SUM(1+1)"  # a folder name is a cell too
UNLISTED = "submission_236126118"
DUE = "2026-11-20 23:00 -05:00"

ATTACKERS = [
    {"name": '=HYPERLINK("http://x","y")', "email": "@SUM(1+1)@example.edu", "sid": "=1+1"},
    {"name": "+cmd|' /C calc'!A0", "email": "-2+3@example.edu", "sid": "-2+3"},
    {"name": "\tTabbed Name", "email": "\rcr@example.edu", "sid": "@0042"},
]

METADATA = f"""\
{GROUP}:
  :submitters:
  - :name: '{ATTACKERS[0]["name"]}'
    :email: '{ATTACKERS[0]["email"]}'
    :sid: '{ATTACKERS[0]["sid"]}'
  - :name: "{ATTACKERS[1]["name"]}"
    :email: '{ATTACKERS[1]["email"]}'
    :sid: '{ATTACKERS[1]["sid"]}'
  - :name: "\\tTabbed Name"
    :email: "\\rcr@example.edu"
    :sid: '@0042'
  :created_at: 2026-11-20 22:59:59.123456789 -05:00
  :score: !ruby/object:BigDecimal 18:0.3e2
  :status: processed
  :history: []
{LATE}:
  :submitters:
  - :name: Grace Hopper
    :email: grace@example.edu
    :sid: '0007'
  :created_at: !ruby/object:ActiveSupport::TimeWithZone
    utc: 2026-11-21 04:30:00.000000000 Z
    zone: !ruby/object:ActiveSupport::TimeZone
      name: America/New_York
    time: 2026-11-20 23:30:00.000000000 Z
  :score: 4.0
'{ODD_KEY}':
  :submitters:
  - :name: '-Dash First'
    :email: odd@example.edu
    :sid: '-5'
  :created_at: 2026-11-19 08:00:00.000000000 Z
"""


def _is_formula(cell: str) -> bool:
    if not cell.startswith(FORMULA_STARTS):
        return False
    try:
        float(cell)
    except ValueError:
        return True
    return not set(cell) <= NUMBER_CHARS


def _cells(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tables") / "assignment_7_export"
    reference(root / GROUP)
    (root / LATE).mkdir(parents=True)  # an empty upload: graded 0, Gradescope held 4
    shutil.copytree(LAYOUT.template_dir, root / ODD_KEY)
    (root / UNLISTED).mkdir()
    (root / "submission_metadata.yml").write_text(METADATA, encoding="utf-8")
    return zip_folder(root, root.parent / "export.zip")


@pytest.fixture(scope="module")
def regraded(export: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("out") / "out"
    done = cli("regrade", str(export), "--out", str(out), "--jobs", "2", "--due", DUE)
    assert done.returncode == 0, done.stderr
    return out


def test_no_cell_is_a_formula(regraded: Path) -> None:
    for table in ("grades.csv", "tests.csv"):
        cells = [cell for row in _cells(regraded / table) for cell in row]
        assert cells, table
        formulas = [cell for cell in cells if _is_formula(cell)]
        assert formulas == [], (table, formulas)
    rows = grade_rows(regraded)
    names = {r["name"] for r in rows}
    for person in ATTACKERS:  # kept, readable, behind one quote
        assert "'" + person["name"] in names
        assert any(r["email"] == "'" + person["email"] and r["sid"] == "'" + person["sid"] for r in rows), person
    assert any(r["submission_id"] == "'" + ODD_KEY for r in _rows_of(rows, "'" + ODD_KEY))
    with (regraded / "tests.csv").open(newline="", encoding="utf-8") as handle:
        assert "'" + ODD_KEY in {r["submission_id"] for r in csv.DictReader(handle)}


def _rows_of(rows: list[dict[str, str]], key: str) -> list[dict[str, str]]:
    return [r for r in rows if r["submission_id"] == key]


def test_numbers_stay_numbers(regraded: Path) -> None:
    config = load_config(LAYOUT.config_file)
    rows = grade_rows(regraded)
    group, late = _rows_of(rows, GROUP), _rows_of(rows, LATE)
    total = f"{config.total_points:g}"
    assert {r["total"] for r in group} == {total}
    assert {r["changed"] for r in group} == {f"{config.total_points - 30:+g}"}  # Gradescope holds 30
    assert late[0]["total"] == "0" and late[0]["changed"] == "-4" and late[0]["export_score"] == "4"
    odd = _rows_of(rows, "'" + ODD_KEY)
    assert odd[0]["sid"] == "-5" and odd[0]["name"] == "'-Dash First"  # -5 is a number, "-Dash First" is not
    for row in rows:
        for part in config.parts:
            assert row[part.number] == "" or float(row[part.number]) >= 0


def test_a_group_submission_is_one_line_per_submitter(regraded: Path) -> None:
    config = load_config(LAYOUT.config_file)
    with (regraded / "grades.csv").open(newline="", encoding="utf-8") as handle:
        assert next(csv.reader(handle)) == grades_header(config)
    rows = grade_rows(regraded)
    group = _rows_of(rows, GROUP)
    assert [(r["name"], r["email"], r["sid"]) for r in group] == [
        ("'" + p["name"], "'" + p["email"], "'" + p["sid"]) for p in ATTACKERS
    ]
    graded = [{k: v for k, v in r.items() if k not in ("name", "email", "sid")} for r in group]
    assert all(g == graded[0] for g in graded)
    assert not any(";" in r["name"] for r in rows)
    assert len(rows) == len(ATTACKERS) + 3  # one line each for the other three submissions
    with (regraded / "tests.csv").open(newline="", encoding="utf-8") as handle:
        assert sum(1 for r in csv.DictReader(handle) if r["submission_id"] == GROUP) == 1  # tests.csv: per submission


def test_created_at_and_late(regraded: Path) -> None:
    rows = {r["submission_id"]: r for r in grade_rows(regraded)}
    # 22:59:59 -05:00 is a second before the due date; 04:30 UTC is 23:30 -05:00, half an hour after.
    assert rows[GROUP]["created_at"] == "2026-11-20T22:59:59-05:00" and rows[GROUP]["late"] == "no"
    assert rows[LATE]["created_at"] == "2026-11-21T04:30:00+00:00" and rows[LATE]["late"] == "yes"
    assert rows["'" + ODD_KEY]["late"] == "no"
    assert rows[UNLISTED]["created_at"] == "" and rows[UNLISTED]["late"] == ""


def test_only_takes_the_id_gradescope_shows(export: Path, regraded: Path) -> None:
    results = regraded / "results"
    before = {p.name: p.stat().st_mtime_ns for p in results.iterdir()}
    again = cli("regrade", str(export), "--out", str(regraded), "--jobs", "1", "--due", DUE, "--only", GROUP.split("_", 1)[1])
    assert again.returncode == 0, again.stderr
    assert "0 reused (fingerprint unchanged), 1 to grade" in again.stderr
    after = {p.name: p.stat().st_mtime_ns for p in results.iterdir()}
    assert after.keys() == before.keys()
    assert [n for n in before if after[n] != before[n]] == [f"{GROUP}.json"]
    unknown = cli("regrade", str(export), "--out", str(regraded), "--only", "999")
    assert unknown.returncode == 2 and unknown.stderr.count("\n") == 1 and "no submission folder named 999" in unknown.stderr


def test_a_due_date_without_its_zone_is_refused(export: Path, tmp_path: Path) -> None:
    done = cli("regrade", str(export), "--out", str(tmp_path / "out"), "--due", "2026-11-20 23:00")
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "--due" in done.stderr and "zone" in done.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("=1+1", "'=1+1"), ("+2", "+2"), ("-4", "-4"), ("-0.5", "-0.5"), ("+1.5e-3", "+1.5e-3"), ("36", "36"), ("", ""),
        ("-inf", "'-inf"), ("+nan", "'+nan"), ("-1_000", "'-1_000"), ("- 4", "'- 4"), ("@x", "'@x"), ("\t1", "'\t1"),
        ("\r=1", "'\r=1"), ("=", "'="), ("a=1", "a=1"), (None, ""), (2.5, "2.5"),
    ],
)
def test_safe_cell(value: object, cell: str) -> None:
    assert safe_cell(value) == cell


UTC = timezone.utc
EST = timezone(-timedelta(hours=5))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (":created_at: 2023-12-02 02:52:07.938335000 Z", datetime(2023, 12, 2, 2, 52, 7, 938335, tzinfo=UTC)),
        (":created_at: 2026-11-20 10:00:00.000000000 -05:00", datetime(2026, 11, 20, 10, tzinfo=EST)),
        (":created_at: '2026-11-20 10:00:00.123456789 -05:00'", datetime(2026, 11, 20, 10, 0, 0, 123456, tzinfo=EST)),
        (":created_at: '2026-11-20T15:30:00+0530'", datetime(2026, 11, 20, 15, 30, tzinfo=timezone(timedelta(hours=5, minutes=30)))),
        (":created_at: 2026-11-20 10:00:00", datetime(2026, 11, 20, 10, tzinfo=UTC)),  # no zone: UTC
        (
            ":created_at: !ruby/object:ActiveSupport::TimeWithZone\n  utc: 2026-11-21 04:30:00.000000000 Z\n"
            "  zone: !ruby/object:ActiveSupport::TimeZone\n    name: America/New_York\n  time: 2026-11-20 23:30:00.000000000 Z",
            datetime(2026, 11, 21, 4, 30, tzinfo=UTC),
        ),
        (":created_at: yesterday", None),
        (":created_at: '2026-02-30 10:00:00 Z'", None),
        (":created_at: 12", None),
    ],
)
def test_created_at_as_exports_write_it(tmp_path: Path, text: str, expected: datetime | None) -> None:
    (tmp_path / "submission_1").mkdir()
    (tmp_path / "submission_metadata.yml").write_text(f"submission_1:\n  {text.replace(chr(10), chr(10) + '  ')}\n", encoding="utf-8")
    records, _ = read_metadata(tmp_path)
    assert records["submission_1"].created_at == expected
    if expected is not None:
        assert records["submission_1"].created_at.utcoffset() == expected.utcoffset()


def test_histogram_without_matplotlib_names_the_file_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    target = tmp_path / "histogram.png"
    note = write_histogram(target, load_config(LAYOUT.config_file), [])
    assert not target.exists()
    assert "matplotlib is not installed" in note and "pip install -r requirements-staff.txt" in note
    assert (LAYOUT.root / "requirements-staff.txt").is_file()


def test_staff_requirements_hold_matplotlib_and_dev_includes_them() -> None:
    staff = _requirements(LAYOUT.root / "requirements-staff.txt")
    dev = _requirements(LAYOUT.root / "requirements-dev.txt")
    assert "-r requirements.txt" in staff
    pins = [line for line in staff if line.lower().startswith("matplotlib")]
    assert len(pins) == 1 and "==" in pins[0] and pins[0].split("==", 1)[1].strip()
    assert "-r requirements-staff.txt" in dev and "-r requirements.txt" not in dev
    assert not any(line.lower().startswith("matplotlib") for line in dev), "matplotlib is pinned in requirements-staff.txt only"
    readme = (LAYOUT.root / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Regrading a class", 1)[1].split("\n## ", 1)[0]
    assert "pip install -r requirements-staff.txt" in section


def _requirements(path: Path) -> list[str]:
    return [line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines() if line.split("#", 1)[0].strip()]


def test_part_scores_follow_grading_yaml_whatever_the_part_numbers_look_like() -> None:
    """A part numbered "1" (the tiny assignment's) gets its tests' points: parts are read
    from grading.yaml, not guessed from the first two levels of a test number."""
    config = load_config(Path(__file__).resolve().parent.parent / "tiny_assignment" / "grading.yaml")
    (part,) = config.parts
    results = {"tests": [{"number": t.number, "score": t.points, "max_score": t.points} for t in part.tests]}
    assert part_scores(config, results) == {part.number: float(part.points)}
    results["tests"][0]["score"] = 0.0
    assert part_scores(config, results) == {part.number: float(part.points - part.tests[0].points)}
