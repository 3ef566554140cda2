"""A new assignment keeps every safety check from its first day: ``python -m autograder new``
writes a project whose fixtures generate, verify, grade (reference full marks, template
zero) and build at once; calibration counts the reference as a correct style with any
styles layout, says what it could not use in one line, judges the reference on the inputs
as they are sent, and warns when a known mistake equals the right answer on a case."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from autograder.course.calibrate import STYLE_LIMIT
from autograder.config import load_config
from autograder.course.scaffold import Scaffold
from harness_tests.corpus import LAYOUT

NAME = "demo-hw"
SPEC = Scaffold(NAME)


def cli(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "GRADER_"))}
    return subprocess.run([sys.executable, "-m", "autograder", *args], cwd=project, env=env, capture_output=True, text=True, timeout=600)


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, text
    assert "Traceback" not in text, text
    return text


def one_line_error(proc: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """A user's error: exit code 2, one line on stderr, no traceback, no raw errno."""
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr and "[Errno" not in proc.stderr, proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def total(text: str) -> tuple[float, float]:
    found = re.findall(r"total: ([\d.]+)/([\d.]+)", text)
    assert found, text
    return float(found[-1][0]), float(found[-1][1])


@pytest.fixture(scope="module")
def scaffolded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project as ``new`` writes it, with its fixtures generated; copied per test that edits it."""
    out = tmp_path_factory.mktemp("new") / "project"
    made = cli(LAYOUT.root, "new", NAME, "--out", str(out))
    assert "wrote" in ok(made) and "fixtures generate" in made.stdout
    generated = cli(out, "fixtures", "generate")
    ok(generated)
    assert "warning" not in generated.stdout, generated.stdout
    return out


@pytest.fixture
def project(scaffolded: Path, tmp_path: Path) -> Path:
    target = tmp_path / "project"
    shutil.copytree(scaffolded, target, symlinks=True)
    return target


def test_new_writes_two_functions_of_four_points_with_everything_the_engine_reads(scaffolded: Path) -> None:
    config = load_config(scaffolded / "grading.yaml")
    assert [p.points for p in config.parts] == [4.0, 4.0] and [len(p.functions) for p in config.parts] == [1, 1]
    assert list(config.modules) == [SPEC.module]
    for relative in ("autograder/cli.py", "conftest.py", "setup.sh", "run_autograder", "requirements.txt", "pytest.ini",
                     "assignment/__init__.py", "assignment/cases.py", "assignment/probes.py", "assignment/kit/README.md",
                     "assignment/kit/requirements.txt", f"reference/{SPEC.module}.py", f"student_template/{SPEC.module}.py",
                     f"tests/{SPEC.tests_module}.py", "GRADING.md", "README.md"):
        assert (scaffolded / relative).is_file(), relative
    cases = (scaffolded / "fixtures" / "manifest.json").read_text(encoding="utf-8")
    assert all(f'"test": "{t.number}"' in cases for t in config.tests()), "a test of the scaffold has no case"


def test_new_refuses_a_bad_name_or_a_used_folder(scaffolded: Path, tmp_path: Path) -> None:
    one_line_error(cli(LAYOUT.root, "new", "9lives", "--out", str(tmp_path / "x")), "'9lives'")
    one_line_error(cli(LAYOUT.root, "new", NAME, "--out", str(scaffolded)), str(scaffolded), "--out")


def test_the_scaffold_verifies_grades_and_builds(project: Path) -> None:
    config = load_config(project / "grading.yaml")
    verified = ok(cli(project, "fixtures", "verify"))
    assert "fixtures verified" in verified
    # The styles folder is there but empty: one line says so; the reference is calibrated alone.
    assert len([line for line in verified.splitlines() if "holds no style yet" in line]) == 1, verified
    assert total(ok(cli(project, "grade", "--results", "reference.json"))) == (config.total_points, config.total_points)
    template = cli(project, "grade", "student_template")
    assert total(template.stdout) == (0.0, config.total_points), template.stdout + template.stderr
    ok(cli(project, "build", "--out", "dist"))
    kit = set(zipfile.ZipFile(project / "dist" / "student_kit.zip").namelist())
    grader = set(zipfile.ZipFile(project / "dist" / "autograder.zip").namelist())
    assert {f"{SPEC.module}.py", f"tests/{SPEC.tests_module}.py", "fixtures/visible.safetensors", "assignment/probes.py", "grade.py"} <= kit
    assert not [n for n in kit if n.startswith("reference/") or "hidden" in n or n == "assignment/cases.py" or "scaffold" in n]
    assert {"fixtures/hidden.safetensors", f"reference/{SPEC.module}.py", "setup.sh", "run_autograder", "pytest.ini"} <= grader


def test_without_a_styles_folder_verify_says_so_in_one_line(project: Path) -> None:
    shutil.rmtree(project / "harness_tests")
    verified = ok(cli(project, "fixtures", "verify"))
    assert "fixtures verified" in verified
    assert len([line for line in verified.splitlines() if "no styles folder" in line]) == 1, verified


def test_calibrate_counts_the_reference_with_any_styles_layout(project: Path, tmp_path: Path) -> None:
    tests = [t.number for t in load_config(project / "grading.yaml").tests() if t.tolerance is not None]
    rows = {line.split()[0]: line for line in ok(cli(project, "calibrate")).splitlines() if line.split() and line.split()[0] in tests}
    assert sorted(rows) == sorted(tests) and all(" reference (" in row for row in rows.values()), rows
    # --styles: another folder, here with one correct style (a softplus by other means).
    style = tmp_path / "styles" / "logaddexp"
    style.mkdir(parents=True)
    text = (project / "reference" / f"{SPEC.module}.py").read_text(encoding="utf-8")
    edit_target = style / f"{SPEC.module}.py"
    edit_target.write_text(text.replace("return torch.clamp(x, min=0) + torch.log1p(torch.exp(-torch.abs(x)))",
                                        "return torch.logaddexp(x, torch.zeros_like(x))"), encoding="utf-8")
    assert "logaddexp" in edit_target.read_text(encoding="utf-8")
    (tmp_path / "styles" / "notes.txt").write_text("not a style", encoding="utf-8")
    (tmp_path / "styles" / "empty").mkdir()
    styled = ok(cli(project, "calibrate", "--styles", str(tmp_path / "styles")))
    assert "empty holds no .py file: skipped" in styled, styled
    verified = ok(cli(project, "fixtures", "verify", "--styles", str(tmp_path / "styles")))
    assert "fixtures verified" in verified
    # Folders that are not there are one line each, never a raw errno.
    one_line_error(cli(project, "calibrate", "--styles", str(tmp_path / "nowhere")), "nowhere", "--styles")
    shutil.rmtree(project / "harness_tests")
    assert "no styles folder" in ok(cli(project, "calibrate"))
    shutil.move(str(project / "fixtures"), str(project / "elsewhere"))
    one_line_error(cli(project, "calibrate"), "manifest.json", "fixtures generate")
    shutil.move(str(project / "elsewhere"), str(project / "fixtures"))
    shutil.rmtree(project / "reference")
    one_line_error(cli(project, "calibrate"), "reference")


def test_a_tolerance_too_tight_for_the_reference_itself_is_refused_and_says_why(project: Path) -> None:
    edit(project / "grading.yaml", "        tolerance: &mse_tol\n          rtol: 1.0e-5\n          atol: 1.0e-6",
         "        tolerance: &mse_tol\n          rtol: 1.0e-8\n          atol: 1.0e-9")
    ok(cli(project, "fixtures", "generate"))
    proc = cli(project, "fixtures", "verify")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert re.search(r"test 2\.1: a correct style uses [\d.e+-]+ of the tolerance \(over 0\.1; reference \(out\)\) \(the reference itself", proc.stdout), proc.stdout


def test_inputs_drawn_in_float64_are_judged_as_sent(project: Path) -> None:
    """A recipe that draws in float64 (here: values near 1000, whose float32 rounding moves a
    squared difference by ~1e-4) still calibrates the reference at float32 rounding: the
    expected values are computed from the inputs rounded as the student gets them."""
    edit(project / "assignment" / "cases.py", '''    pred = normal(g, (batch, dim))
    target = normal(g, (batch, dim))''', '''    pred = 1000.0 + normal(g, (batch, dim)).double() / 3.0
    target = 1000.0 + normal(g, (batch, dim)).double() / 3.0''')
    ok(cli(project, "fixtures", "generate"))
    verified = ok(cli(project, "fixtures", "verify"))
    assert "fixtures verified" in verified
    rows = [line.split() for line in ok(cli(project, "calibrate")).splitlines() if line.startswith("2.")]
    assert len(rows) == 3 and all(float(row[3]) <= STYLE_LIMIT for row in rows), rows


def test_a_known_mistake_equal_to_the_right_answer_is_named_by_generate_and_calibrate(project: Path) -> None:
    """With one feature, summing the squared errors is averaging them: that case cannot
    catch the mistake, and both commands say which case and which mistake."""
    edit(project / "assignment" / "cases.py", '''    CaseSpec("mse_grad", "2.2", lambda r, g: mse_case(r, g, 5, 6)),''',
         '''    CaseSpec("mse_grad", "2.2", lambda r, g: mse_case(r, g, 5, 6)),
    CaseSpec("mse_one_feature", "2.2", lambda r, g: mse_case(r, g, 5, 1)),''')
    pattern = re.compile(r"warning: case mse_one_feature \(test 2\.2\): the known mistake 'out:sum' \(.+\) lands within the tolerance")
    generated = ok(cli(project, "fixtures", "generate"))
    assert len(pattern.findall(generated)) == 1 and generated.count("warning:") == 1, generated
    assert len(pattern.findall(ok(cli(project, "calibrate")))) == 1



def _readme_blocks(language: str) -> list[str]:
    """The README's example blocks of ``language`` in its test API section."""
    text = (LAYOUT.root / "README.md").read_text(encoding="utf-8")
    section = text.split("### The test API", 1)[1].split("\n## ", 1)[0]
    return re.findall(rf"```{language}\n(.*?)```", section, flags=re.S)


def config_points(project: Path, number: str) -> float:
    return load_config(project / "grading.yaml").test(number).points


def test_the_readme_example_test_grades_the_scaffold(tmp_path: Path) -> None:
    """The README's example recipe builds its cases with the scaffold's reference, and its
    example tests, put in place of the scaffold's 2.2 and 2.3, give the reference full
    marks and the template none."""
    from autograder.grading.recipes import CaseSpec, load_reference, run_recipe

    project = tmp_path / "demo"
    ok(cli(LAYOUT.root, "new", "demo", "--out", str(project)))
    recipe, test_code = _readme_blocks("python")
    namespace: dict[str, object] = {}
    exec(compile(recipe, "README.md (recipe)", "exec"), namespace)
    reference = load_reference(project / "reference", ["demo_solution"])
    specs = namespace["CASES"]
    assert isinstance(specs, tuple) and all(isinstance(s, CaseSpec) for s in specs)
    for spec in specs:
        data = run_recipe(spec, reference, 1)
        assert {"out", "grad.pred", "grad.target"} <= set(data.expected) and "out:sum" in data.hints, spec.name
    (rubric,) = _readme_blocks("yaml")
    entries = yaml.safe_load(rubric)
    assert sorted(entries) == sorted(s.test for s in specs) and all(e["points"] == config_points(project, n) for n, e in entries.items())
    tests = project / "tests" / "test_demo.py"
    text = tests.read_text(encoding="utf-8")
    kept = text[: text.index('@pytest.mark.graded("2.2")')]
    tests.write_text(kept + "\n\n" + test_code, encoding="utf-8")
    ok(cli(project, "fixtures", "generate"))
    config = load_config(project / "grading.yaml")
    assert total(ok(cli(project, "grade"))) == (config.total_points, config.total_points)
    assert total(cli(project, "grade", "student_template").stdout) == (0.0, config.total_points)


def test_the_reference_is_a_style_whatever_the_styles_folder_holds(tmp_path: Path) -> None:
    from autograder.course.calibrate import REFERENCE, STYLES, _styles

    notes: list[str] = []
    folders = _styles(LAYOUT, tmp_path / "with", LAYOUT.root / STYLES, notes)
    styles = [p for p in (LAYOUT.root / STYLES).iterdir() if p.is_dir() and list(p.glob("*.py"))]
    assert folders[REFERENCE] == LAYOUT.reference_dir and len(folders) == 1 + len(styles) and not notes, notes
    assert _styles(LAYOUT, tmp_path / "without", tmp_path / "nowhere", notes) == {REFERENCE: LAYOUT.reference_dir}
    assert len(notes) == 1 and "no styles folder" in notes[0]
