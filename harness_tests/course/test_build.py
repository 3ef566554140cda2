"""The two zips, opened and inspected: what each must hold, what neither may hold (the
student kit: the reference, any file carrying its graded code, the case recipes, hidden
fixtures; the autograder zip: reference code anywhere but in reference/, where the
trusted side computes the visible cases it draws per submission), executable entry
points, and byte-identical rebuilds."""
from __future__ import annotations

import ast
import json
import stat
import zipfile
from pathlib import Path

import pytest

from autograder.course.build import write_zips
from autograder.config import load_config
from autograder.paths import KitLayout

LAYOUT = KitLayout.here()
CONFIG = load_config(LAYOUT.config_file)
# The graded functions of each solution module, as grading.yaml lists them.
GRADED = {module: tuple(f for part in CONFIG.part_of_module(module) for f in part.functions) for module in CONFIG.modules}
# Correct callees that the harness substitutes on purpose (GRADING.md, "one bug costs
# one part"): these two files may share lines with the reference's version of that callee.
SUBSTITUTES = {
    "assignment/substitutes/CosineSimilarity.py": "CosineSimilarity.forward",
    "assignment/substitutes/log_likelihood_normal.py": "log_likelihood_normal",
}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("dist")
    paths = write_zips(LAYOUT, out)
    assert [p.name for p in paths] == ["autograder.zip", "student_kit.zip"]
    return {p.name: p for p in paths}


def _entries(path: Path) -> dict[str, zipfile.ZipInfo]:
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None
        return {info.filename: info for info in archive.infolist()}


def _read(path: Path, name: str) -> bytes:
    with zipfile.ZipFile(path) as archive:
        return archive.read(name)


def _mode(info: zipfile.ZipInfo) -> int:
    return info.external_attr >> 16


def _graded_lines() -> dict[str, set[str]]:
    """Distinctive source lines of the reference's graded bodies, by qualified name."""
    lines: dict[str, set[str]] = {}
    for module, qualnames in GRADED.items():
        source = (LAYOUT.reference_dir / f"{module}.py").read_text(encoding="utf-8")
        text = source.splitlines()
        defs: dict[str, ast.FunctionDef] = {}
        for node in ast.parse(source).body:
            if isinstance(node, ast.FunctionDef):
                defs[node.name] = node
            elif isinstance(node, ast.ClassDef):
                defs.update({f"{node.name}.{n.name}": n for n in node.body if isinstance(n, ast.FunctionDef)})
        for qualname in qualnames:
            node = defs[qualname]
            body = node.body[1:] if ast.get_docstring(node) is not None else node.body
            found = set()
            for stmt in body:
                for line in text[stmt.lineno - 1 : stmt.end_lineno]:
                    line = line.strip()
                    if len(line) >= 18 and not line.startswith("#"):
                        found.add(line)
            assert found, f"no distinctive line in reference {qualname}"
            lines[qualname] = found
    return lines


def _assert_no_reference_code(path: Path, allowed: dict[str, str]) -> None:
    lines = _graded_lines()
    leaks = []
    for name in _entries(path):
        text = _read(path, name).decode("utf-8", errors="replace")
        for qualname, candidates in lines.items():
            if allowed.get(name) in (qualname, "*"):
                continue
            leaks += [f"{name}: {line}  (from {qualname})" for line in candidates if line in text]
    assert not leaks, "reference code in " + path.name + ":\n" + "\n".join(leaks)


# ------------------------------------------------------------------ autograder.zip

def test_autograder_zip_entry_points_are_executable_at_the_root(built: dict[str, Path]) -> None:
    entries = _entries(built["autograder.zip"])
    for name in ("setup.sh", "run_autograder"):
        assert name in entries, f"{name} not at the root of autograder.zip"
        mode = _mode(entries[name])
        assert stat.S_ISREG(mode) and mode & 0o111 == 0o111, f"{name}: mode {oct(mode)}"
        assert _read(built["autograder.zip"], name).startswith(b"#!")


def test_autograder_zip_has_harness_tests_config_and_fixtures(built: dict[str, Path]) -> None:
    names = set(_entries(built["autograder.zip"]))
    harness = {p.relative_to(LAYOUT.root).as_posix() for p in (LAYOUT.root / "autograder").rglob("*.py") if "__pycache__" not in p.parts}
    assert harness <= names, sorted(harness - names)
    assignment = {p.relative_to(LAYOUT.root).as_posix() for p in LAYOUT.assignment_dir.rglob("*.py") if "__pycache__" not in p.parts}
    assert assignment <= names, sorted(assignment - names)
    tests = {p.relative_to(LAYOUT.root).as_posix() for p in LAYOUT.tests_dir.glob("test_q*.py")}
    assert tests and tests <= names
    assert {"grading.yaml", "conftest.py", "requirements.txt", "pytest.ini"} <= names
    assert {"fixtures/visible.safetensors", "fixtures/hidden.safetensors", "fixtures/manifest.json"} <= names
    for name in ("grading.yaml", "fixtures/hidden.safetensors", "fixtures/visible.safetensors", "fixtures/manifest.json"):
        assert _read(built["autograder.zip"], name) == (LAYOUT.root / name).read_bytes(), name


def test_autograder_zip_holds_the_reference_only_where_the_trusted_side_reads_it(built: dict[str, Path]) -> None:
    """The visible cases are drawn per submission and computed with the reference on the
    trusted side (the sandbox user can read nothing of the unzipped autograder): the zip
    holds reference/ and the case recipes, and reference code nowhere else."""
    names = _entries(built["autograder.zip"])
    assert {n for n in names if n.startswith("reference/")} == {f"reference/{m}.py" for m in CONFIG.modules}
    for module in CONFIG.modules:
        assert _read(built["autograder.zip"], f"reference/{module}.py") == (LAYOUT.reference_dir / f"{module}.py").read_bytes()
    assert "assignment/cases.py" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert not [n for n in names if n.startswith(("harness_tests/", "student_template/q"))]
    _assert_no_reference_code(built["autograder.zip"], {**SUBSTITUTES, **{f"reference/{m}.py": "*" for m in CONFIG.modules}})


def test_substitutes_define_only_their_callee(built: dict[str, Path]) -> None:
    """The one place a correct implementation ships: each substitute file defines only its callee."""
    for name, qualname in SUBSTITUTES.items():
        tree = ast.parse(_read(built["autograder.zip"], name))
        top = [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
        assert top == [qualname.split(".")[0]], (name, top)


def test_every_entry_has_a_fixed_timestamp_and_a_regular_mode(built: dict[str, Path]) -> None:
    for zip_path in built.values():
        for name, info in _entries(zip_path).items():
            assert info.date_time == (2026, 1, 1, 0, 0, 0), name
            assert stat.S_ISREG(_mode(info)) and stat.S_IMODE(_mode(info)) in (0o644, 0o755), name


# ------------------------------------------------------------------ student_kit.zip

def test_student_kit_has_template_tests_visible_fixtures_and_readme(built: dict[str, Path]) -> None:
    kit = built["student_kit.zip"]
    names = set(_entries(kit))
    for module in GRADED:
        assert f"{module}.py" in names, f"{module}.py not at the kit's root"
        assert _read(kit, f"{module}.py") == (LAYOUT.template_dir / f"{module}.py").read_bytes()
    assert {p.relative_to(LAYOUT.root).as_posix() for p in LAYOUT.tests_dir.glob("test_q*.py")} <= names
    assert "fixtures/visible.safetensors" in names
    assert _read(kit, "fixtures/visible.safetensors") == (LAYOUT.fixtures_dir / "visible.safetensors").read_bytes()
    assert "README.md" in names and _read(kit, "README.md").strip()
    assert {"grading.yaml", "conftest.py", "pytest.ini", "requirements.txt"} <= names
    assert {"autograder/grading/plugin.py", "autograder/cli.py", "autograder/worker/child.py"} <= names
    # The assignment's worker-side code (probe kinds and the models they build), not its recipes.
    assert {"assignment/__init__.py", "assignment/probes.py", "assignment/models.py"} <= names
    assert _read(kit, "README.md") == (LAYOUT.kit_texts_dir / "README.md").read_bytes()
    assert _read(kit, "requirements.txt") == (LAYOUT.kit_texts_dir / "requirements.txt").read_bytes()


def test_kit_texts_are_in_neither_zip_and_recipes_only_in_the_autograder(built: dict[str, Path]) -> None:
    for archive in built.values():
        names = set(_entries(archive))
        assert not [n for n in names if n.startswith("assignment/kit/")], archive.name
    assert "assignment/cases.py" not in _entries(built["student_kit.zip"])


def test_student_kit_manifest_details_only_visible_cases(built: dict[str, Path]) -> None:
    """Hidden cases keep their name and visibility only (so their tests skip in the
    kit); their hints, seeds and tolerances stay out, and so does the hash of the hidden
    file (the secret the per-submission draws start from)."""
    kit = built["student_kit.zip"]
    manifest = json.loads(_read(kit, "fixtures/manifest.json"))
    full = json.loads((LAYOUT.fixtures_dir / "manifest.json").read_text(encoding="utf-8"))
    visible = {k for k, v in full["cases"].items() if v["visibility"] == "visible"}
    assert visible and set(manifest["cases"]) == set(full["cases"])
    for name, meta in manifest["cases"].items():
        if name in visible:
            assert meta == full["cases"][name]
        else:
            assert meta == {"test": full["cases"][name]["test"], "visibility": "hidden"}
    assert manifest["files"] == {"visible.safetensors": full["files"]["visible.safetensors"]}
    assert manifest["torch_version"] == full["torch_version"]


def test_student_kit_has_no_hidden_fixtures_substitutes_or_reference(built: dict[str, Path]) -> None:
    kit = built["student_kit.zip"]
    names = set(_entries(kit))
    assert "fixtures/hidden.safetensors" not in names
    assert not [n for n in names if "hidden" in n.lower() and n.endswith(".safetensors")]
    assert not [n for n in names if n.startswith("assignment/substitutes")]
    assert not [n for n in names if n.startswith("reference/") or "/reference/" in n]
    assert not [n for n in names if n in ("setup.sh", "run_autograder")]
    assert "autograder/course/fixturegen.py" not in names
    _assert_no_reference_code(kit, {})


def test_student_kit_contains_no_hidden_tensor(built: dict[str, Path]) -> None:
    """No bytes of hidden.safetensors (beyond its header) appear in any kit entry."""
    hidden = (LAYOUT.fixtures_dir / "hidden.safetensors").read_bytes()
    header = 8 + int.from_bytes(hidden[:8], "little")
    probe = hidden[header + 4096 : header + 4096 + 64]
    assert len(probe) == 64
    kit = built["student_kit.zip"]
    for name in _entries(kit):
        assert probe not in _read(kit, name), name


# ------------------------------------------------------------------ determinism

def test_building_twice_gives_byte_identical_zips(built: dict[str, Path], tmp_path: Path) -> None:
    again = {p.name: p for p in write_zips(LAYOUT, tmp_path)}
    for name, path in built.items():
        assert again[name].read_bytes() == path.read_bytes(), f"{name} differs between two builds"
