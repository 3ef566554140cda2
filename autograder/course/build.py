"""``python -m autograder build``: the Gradescope zip and the student kit zip.

Both are built from an explicit list of what goes in, never from "everything but";
the reference solutions and the hidden fixtures can only enter by being listed. The
autograder zip lists them: on Gradescope the trusted process draws each visible case
afresh for the submission it grades and computes its expected values with the reference
(fresh_cases.py), while the sandbox user can read none of ``/autograder/source``. The
student kit lists neither."""
from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import yaml

from autograder.config import load_config
from autograder.grading.fixture_store import FILES, MANIFEST
from autograder.paths import ASSIGNMENT_PACKAGE, KitLayout

EPOCH = (2026, 1, 1, 0, 0, 0)
# The assignment's files that only the instructors' tools use: the kit's texts (they become
# the kit's own README and requirements).
INSTRUCTOR_ONLY = (f"{ASSIGNMENT_PACKAGE}/kit/",)
# What the student kit must not hold beyond the instructor tools: the case recipes (with the
# reference they would compute the expected values of every case).
RECIPES = f"{ASSIGNMENT_PACKAGE}/cases.py"
# Harness files a student does not need: solutions (correct callees), instructor tools
# (fixtures, calibration, building, bulk regrades) and Gradescope's entry point. The
# kit's cli.py offers only the commands whose modules are present: ``grade``.
NOT_IN_KIT = (
    "autograder/course/",
    "autograder/regrade/",
    "autograder/grading/gradescope.py",
    "autograder/sandbox/users.py",
    f"{ASSIGNMENT_PACKAGE}/audit/",  # the mutation audit's checks (they call the reference's functions)
    f"{ASSIGNMENT_PACKAGE}/substitutes/",
    RECIPES,
    *INSTRUCTOR_ONLY,
)

# What of the template folder the student kit ships: its top-level code and notebooks (the
# solution stubs, the provided report scripts, samplers and notebooks), never what running
# them leaves there (data, figures, checkpoints, .ipynb_checkpoints/).
KIT_TEMPLATE_SUFFIXES = (".py", ".ipynb")

KIT_GRADE_PY = '''"""Grade your solutions from any folder: ``python path/to/this/kit/grade.py [FOLDER]``.

Without FOLDER it grades the solution files next to this script; ``--explain`` prints
every test's message. The same as ``python -m autograder grade`` run inside the kit."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from autograder.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["grade", *sys.argv[1:]]))
'''
KIT_CONFIG_HEADER = """# The rubric of this homework's autograder: points, visibility, tolerances and timeouts of
# every test (the same file grades your upload on Gradescope). Each tolerance says why it
# is what it is. Tests marked `visible: false` run on Gradescope only.
"""

KIT_PYTEST_INI = """[pytest]
testpaths = tests
addopts = -p no:cacheprovider -ra
timeout = 900
filterwarnings =
    ignore::DeprecationWarning
"""

class _Zip:
    """Deterministic zip writer: fixed timestamps, sorted entries, explicit modes."""

    def __init__(self, path: Path) -> None:
        self.entries: dict[str, tuple[bytes, int]] = {}
        self.path = path

    def add_bytes(self, name: str, data: bytes, mode: int = 0o644) -> None:
        self.entries[name] = (data, mode)

    def add_file(self, name: str, path: Path) -> None:
        self.add_bytes(name, path.read_bytes(), 0o755 if path.stat().st_mode & 0o111 else 0o644)

    def add_tree(self, prefix: str, folder: Path, exclude: tuple[str, ...] = ()) -> None:
        for path in sorted(folder.rglob("*")):
            if not path.is_file() or "__pycache__" in path.parts or path.suffix == ".pyc":
                continue
            name = f"{prefix}{path.relative_to(folder).as_posix()}"
            if not name.startswith(exclude):
                self.add_file(name, path)

    def write(self) -> Path:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(self.path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name in sorted(self.entries):
                data, mode = self.entries[name]
                info = zipfile.ZipInfo(name, date_time=EPOCH)
                info.external_attr = (0o100000 | mode) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, data)
        # The autograder zip holds hidden fixtures: readable by its owner only.
        os.chmod(self.path, 0o600)
        return self.path


def _harness(archive: _Zip, layout: KitLayout, exclude: tuple[str, ...]) -> None:
    archive.add_tree("autograder/", layout.root / "autograder", exclude)
    archive.add_tree(f"{ASSIGNMENT_PACKAGE}/", layout.assignment_dir, exclude)
    archive.add_tree("tests/", layout.tests_dir)
    for name in ("grading.yaml", "conftest.py"):
        archive.add_file(name, layout.root / name)


def kit_config(layout: KitLayout) -> bytes:
    """grading.yaml for the student kit: the same rubric, without the course staff's
    comments (which name their tools and files, absent from the kit)."""
    data = yaml.load(layout.config_file.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    text = yaml.dump(data, Dumper=_PlainDumper, sort_keys=False, width=100, allow_unicode=True)
    return (KIT_CONFIG_HEADER + text).encode("utf-8")


class _PlainDumper(yaml.SafeDumper):
    """Writes a shared tolerance out in full wherever it is used: no ``&id001`` anchors."""

    def ignore_aliases(self, data: object) -> bool:
        return True


def build_autograder_zip(layout: KitLayout, out: Path) -> Path:
    config = load_config(layout.config_file)
    archive = _Zip(out / "autograder.zip")
    _harness(archive, layout, INSTRUCTOR_ONLY)
    for name in ("setup.sh", "run_autograder", "pytest.ini", "requirements.txt"):
        archive.add_file(name, layout.root / name)
    for name in (MANIFEST, *FILES.values()):
        archive.add_file(f"fixtures/{name}", layout.fixtures_dir / name)
    for module in config.support_modules:
        archive.add_file(f"student_template/{module}.py", layout.template_dir / f"{module}.py")
    for module in config.modules:  # the visible cases drawn per submission need it (trusted side only)
        archive.add_file(f"reference/{module}.py", layout.reference_dir / f"{module}.py")
    return archive.write()


def _visible_manifest(layout: KitLayout) -> bytes:
    manifest = json.loads((layout.fixtures_dir / MANIFEST).read_text(encoding="utf-8"))
    # Hidden cases keep only their name and visibility: their tests then skip in the kit
    # ("runs on Gradescope only") instead of failing.
    manifest["cases"] = {
        k: (v if v["visibility"] == "visible" else {"test": v["test"], "visibility": "hidden"})
        for k, v in manifest["cases"].items()
    }
    manifest["files"] = {k: v for k, v in manifest["files"].items() if k == FILES["visible"]}
    return (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()


def _template_files(layout: KitLayout) -> list[Path]:
    """The template's files that go to the kit's root (``KIT_TEMPLATE_SUFFIXES``, not hidden)."""
    return [p for p in sorted(layout.template_dir.iterdir())
            if p.is_file() and not p.name.startswith(".") and p.suffix in KIT_TEMPLATE_SUFFIXES]


def build_student_kit(layout: KitLayout, out: Path) -> Path:
    config = load_config(layout.config_file)
    archive = _Zip(out / "student_kit.zip")
    _harness(archive, layout, NOT_IN_KIT)
    for path in _template_files(layout):
        archive.add_file(path.name, path)
    archive.add_bytes("pytest.ini", KIT_PYTEST_INI.encode())
    archive.add_bytes("grading.yaml", kit_config(layout))
    archive.add_bytes("grade.py", KIT_GRADE_PY.encode())
    for name in ("README.md", "requirements.txt"):
        text = layout.kit_texts_dir / name
        if not text.is_file():
            raise FileNotFoundError(f"{text}: the student kit's {name} is missing")
        archive.add_file(name, text)
    archive.add_bytes(f"fixtures/{MANIFEST}", _visible_manifest(layout))
    archive.add_file(f"fixtures/{FILES['visible']}", layout.fixtures_dir / FILES["visible"])
    missing = [f"{name}.py" for name in config.modules if f"{name}.py" not in archive.entries]
    if missing:
        raise FileNotFoundError(f"{layout.template_dir}: template files missing: {missing}")
    return archive.write()


class BuildRefused(RuntimeError):
    """The fixtures are not fit to ship; ``problems`` says, one line each, what to run."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def write_zips(layout: KitLayout, out: Path) -> list[Path]:
    """Both zips, unchecked (``build_all`` checks first)."""
    return [build_autograder_zip(layout, out), build_student_kit(layout, out)]


def build_all(layout: KitLayout, out: Path) -> list[Path]:
    """Both zips, only from fixtures that ``fixtures verify`` accepts."""
    from autograder.course.fixture_verify import verify

    problems = verify(load_config(layout.config_file), layout)
    if problems:
        raise BuildRefused(problems)
    return write_zips(layout, out)
