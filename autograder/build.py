"""``python -m autograder build``: the Gradescope zip and the student kit zip.

Both are built from an explicit list of what goes in, never from "everything but";
the reference solutions and the hidden fixtures can only enter by being listed."""
from __future__ import annotations

import os
import json
import zipfile
from pathlib import Path

from autograder.config import load_config
from autograder.fixture_store import FILES, MANIFEST
from autograder.paths import SOLUTION_FILES, KitLayout

EPOCH = (2026, 1, 1, 0, 0, 0)
# Harness files a student does not need: solutions (correct callees), instructor tools
# (fixtures, calibration, building, bulk regrades) and Gradescope's entry point. The
# kit's cli.py offers only the commands whose modules are present: ``grade``.
NOT_IN_KIT = (
    "autograder/substitutes/",
    "autograder/fixturegen.py",
    "autograder/fixture_verify.py",
    "autograder/calibrate.py",
    "autograder/build.py",
    "autograder/regrade.py",
    "autograder/batch.py",
    "autograder/export.py",
    "autograder/fingerprint.py",
    "autograder/progress.py",
    "autograder/regrade_report.py",
    "autograder/show.py",
    "autograder/triage.py",
    "autograder/gradescope.py",
)

KIT_PYTEST_INI = """[pytest]
testpaths = tests
addopts = -p no:cacheprovider -ra
timeout = 900
filterwarnings =
    ignore::DeprecationWarning
"""

# Ranges, not pins: a student keeps the torch they train with (Colab's, a GPU build).
KIT_REQUIREMENTS = """# What the local tests and the report scripts need (pip install -r requirements.txt).
# torch: the fixtures were generated with torch 2.13.0 (CPU). Their tolerances sit 10x or more
# above what any correct style of code deviates (see grading.yaml), and the graded probes use
# only long-stable torch API, so last-bit differences between releases cannot move a verdict.
# The floor: the comparisons use torch.unravel_index (2.2), and 2.3 is the first release that
# runs with NumPy 2 (what pip installs today). 3.x is excluded until checked. Only 2.13.0 was
# run by the course staff.
# CPU-only torch (no multi-GB CUDA download on Linux):
#   pip install torch --index-url https://download.pytorch.org/whl/cpu
torch>=2.3,<3
numpy>=1.24
safetensors>=0.4,<1
PyYAML>=6
pytest>=7.4
pytest-timeout>=2.1
# The report scripts: figures (q1_vae, q2_wgan, q3_simsiam) and SVHN's .mat files (q2_wgan).
matplotlib>=3.5
scipy>=1.9
"""

KIT_README = """# HW3 student kit

Put your solutions in `q1_solution.py`, `q2_solution.py` and `q3_solution.py` (this folder), then
check them with the visible tests of the Gradescope autograder. Upload only those three files.

## The three commands

    pip install -r requirements.txt     # once, in a virtual environment (or on Colab)
    python -m autograder grade          # grades this folder: a table per part, with each failure's message and hint
    python -m pytest                    # the same tests, pytest style

`python -m autograder grade --explain` also prints every test's full message; `grade other/folder`
grades another folder. Tests and grading need no GPU. To skip the multi-GB CUDA download of torch on
Linux, install the CPU build first: `pip install torch --index-url https://download.pytorch.org/whl/cpu`.
requirements.txt accepts any torch from 2.3 up to (not including) 3, so the one you train with is kept.

The report scripts run in seconds on synthetic data, and draw their figures, with `--smoke`:

    python q1_vae.py --smoke
    python q2_wgan.py --smoke --out wgan_smoke
    python q3_simsiam.py --smoke --out simsiam_smoke

## Where it was tested

Linux (x86_64), Python 3.11, torch 2.13.0 (CPU), in a fresh virtual environment made from
requirements.txt (sharing the system's torch): as root without the sandbox user (as on Colab or
in a container), and with `fork`, `AF_UNIX SOCK_SEQPACKET` sockets and `/proc` made unavailable
(as on macOS and Windows). macOS and Windows use that same portable path but were not run by the
course staff. The code needs Python 3.10 or newer.

## How local and Gradescope verdicts relate

- Locally your code normally runs in a separate process of your own user ("local mode", said in one line);
  on Gradescope it runs in a locked-down sandbox. The tests, fixtures, tolerances, points and
  messages are the same, so each visible test gets the same verdict in both places.
- Gradescope also runs the hidden tests (their points show as "hidden" in the table); they are
  skipped here, and you see their results after the due date.
- Parts 1.5 (`kl_gaussian_gaussian_mc`) and 3.3 (`SimSiam.loss`) call another graded function.
  Here they use your own `log_likelihood_normal` / `CosineSimilarity`. On Gradescope a test of
  these parts is graded with your own function first and, only if it fails, again with a correct
  one: it passes if either passes. A caller part can only gain points on Gradescope, never lose.
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
    archive.add_tree("tests/", layout.tests_dir)
    for name in ("grading.yaml", "conftest.py"):
        archive.add_file(name, layout.root / name)


def build_autograder_zip(layout: KitLayout, out: Path) -> Path:
    config = load_config(layout.config_file)
    archive = _Zip(out / "autograder.zip")
    _harness(archive, layout, ())
    for name in ("setup.sh", "run_autograder", "pytest.ini", "requirements.txt"):
        archive.add_file(name, layout.root / name)
    for name in (MANIFEST, *FILES.values()):
        archive.add_file(f"fixtures/{name}", layout.fixtures_dir / name)
    for module in config.support_modules:
        archive.add_file(f"student_template/{module}.py", layout.template_dir / f"{module}.py")
    return archive.write()


def _visible_manifest(layout: KitLayout) -> bytes:
    manifest = json.loads((layout.fixtures_dir / MANIFEST).read_text(encoding="utf-8"))
    # Hidden cases keep only their name and visibility: their tests then skip in the kit
    # ("runs on Gradescope only") instead of failing.
    manifest["cases"] = {
        k: ({f: x for f, x in v.items() if f != "private_seed"} if v["visibility"] == "visible" else {"test": v["test"], "visibility": "hidden"})
        for k, v in manifest["cases"].items()
    }
    manifest["files"] = {k: v for k, v in manifest["files"].items() if k == FILES["visible"]}
    return (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()


def build_student_kit(layout: KitLayout, out: Path) -> Path:
    archive = _Zip(out / "student_kit.zip")
    _harness(archive, layout, NOT_IN_KIT)
    archive.add_tree("", layout.template_dir)
    archive.add_bytes("pytest.ini", KIT_PYTEST_INI.encode())
    archive.add_bytes("README.md", KIT_README.encode())
    archive.add_bytes("requirements.txt", KIT_REQUIREMENTS.encode())
    archive.add_bytes(f"fixtures/{MANIFEST}", _visible_manifest(layout))
    archive.add_file(f"fixtures/{FILES['visible']}", layout.fixtures_dir / FILES["visible"])
    missing = [name for name in SOLUTION_FILES if name not in archive.entries]
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
    from autograder.fixture_verify import verify

    problems = verify(load_config(layout.config_file), layout)
    if problems:
        raise BuildRefused(problems)
    return write_zips(layout, out)
