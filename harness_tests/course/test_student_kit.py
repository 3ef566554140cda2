"""The student kit as students meet it: unzip, drop in solutions, run the visible tests
with plain pytest or the local grader, and see what Gradescope will say."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from autograder.course.build import build_student_kit
from autograder.grading.fixture_store import FixtureStore
from harness_tests.corpus import CONFIG, LAYOUT, entries, materialise
from harness_tests.gradescope_sim import build_zip, simulate

# What the kit runs and shows, from grading.yaml: its visible tests run, its others skip.
VISIBLE_TESTS = [t for t in CONFIG.tests() if not t.hidden]
HIDDEN_TESTS = [t for t in CONFIG.tests() if t.hidden]
VISIBLE_POINTS = sum(t.points for t in VISIBLE_TESTS)
HIDDEN_POINTS = sum(t.points for t in HIDDEN_TESTS)


def visible_points_of(part: str) -> float:
    return sum(t.points for t in VISIBLE_TESTS if t.part == part)


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
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "GRADER_"))}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_plain_pytest_in_the_kit(kit_zip: Path, tmp_path: Path) -> None:
    kit = unpack(kit_zip, tmp_path / "kit", LAYOUT.reference_dir)
    proc = run(kit, "-m", "pytest", "-q")
    assert proc.returncode == 0, proc.stdout[-2000:]
    counts = f"{len(VISIBLE_TESTS)} passed, {len(HIDDEN_TESTS)} skipped"
    assert counts in proc.stdout, f"plain pytest in the kit should run grading.yaml's visible tests and skip the others ({counts}): {proc.stdout[-1500:]}"


def test_template_in_the_kit_scores_zero(kit_zip: Path, tmp_path: Path) -> None:
    kit = unpack(kit_zip, tmp_path / "kit", None)
    proc = run(kit, "-m", "autograder", "grade", ".", "--results", "r.json")
    results = json.loads((kit / "r.json").read_text())
    assert results["score"] == 0 and len(results["tests"]) == len(VISIBLE_TESTS), "the kit's results.json holds its visible tests, all failed"
    assert all("not implemented" in t["output"] for t in results["tests"])
    total = f"total: 0/{VISIBLE_POINTS:g} (+{HIDDEN_POINTS:g} in hidden tests"
    assert total in proc.stdout, f"the table should count grading.yaml's visible and hidden points ({total}): {proc.stdout[-1500:]}"


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
from autograder.grading.run import grade_folder
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


# ------------------------------------------------------------------ what the kit holds

INSTRUCTOR_TOOLS = ("calibrate", "fixturegen", "fixture_verify", "build", "regrade", "batch", "gradescope",
                    "export", "fingerprint", "progress", "regrade_report", "show", "triage", "scaffold", "scaffold_files",
                    "sandbox_users")


def test_kit_holds_no_instructor_tools_and_offers_only_grade(kit_zip: Path, tmp_path: Path) -> None:
    kit = unpack(kit_zip, tmp_path / "kit", None)
    names = {p.relative_to(kit).as_posix() for p in kit.rglob("*") if p.is_file()}
    assert not [n for n in names if n.startswith("assignment/substitutes")]
    assert not {f"autograder/{tool}.py" for tool in INSTRUCTOR_TOOLS} & names
    assert {"autograder/sandbox/portable.py", "autograder/worker/portable_main.py", "autograder/sandbox/mode.py"} <= names
    helped = run(kit, "-m", "autograder", "--help")
    assert helped.returncode == 0 and "{grade}" in helped.stdout, helped.stdout
    for tool in ("calibrate", "build", "regrade", "fixtures"):
        assert tool not in helped.stdout
    refused = run(kit, "-m", "autograder", "build", "--out", "x")
    assert refused.returncode == 2 and "invalid choice: 'build'" in refused.stderr and "Traceback" not in refused.stderr


def test_kit_requirements_are_ranges_with_what_the_report_scripts_need(kit_zip: Path, tmp_path: Path) -> None:
    kit = unpack(kit_zip, tmp_path / "kit", None)
    lines = [line.strip() for line in (kit / "requirements.txt").read_text().splitlines() if line.strip() and not line.startswith("#")]
    names = {re.split(r"[<>=!;\[ ]", line, maxsplit=1)[0].lower(): line for line in lines}
    assert {"torch", "numpy", "safetensors", "pyyaml", "pytest", "pytest-timeout", "matplotlib", "scipy"} <= set(names)
    assert not [line for line in lines if "==" in line], "the kit pins nothing exactly"
    assert ">=" in names["torch"] and "<" in names["torch"].split(">=")[1]
    readme = (kit / "README.md").read_text()
    assert "pip install torch --index-url https://download.pytorch.org/whl/cpu" in readme
    for fact in ("Python 3.11", "torch 2.13.0", "macOS", "Windows", "python -m autograder grade", "python -m pytest", "1.5", "3.3"):
        assert fact in readme, fact


# ------------------------------------------------------------------ where students work

NO_FORK_SITE = '''"""Loaded first by every interpreter of the test (PYTHONPATH): a system without
fork and AF_UNIX SOCK_SEQPACKET, as macOS and Windows look to the grader."""
import os
import socket

for name in ("fork", "forkpty"):
    if hasattr(os, name):
        delattr(os, name)
if hasattr(socket, "SOCK_SEQPACKET"):
    del socket.SOCK_SEQPACKET
'''
MODES = ("no-sandbox-user", "no-fork-no-proc")
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="a private mount namespace and the sandbox user need root")


def run_in_mode(mode: str, python: Path, cwd: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """``python args`` as root without the sandbox user, or (in a private mount namespace
    with an empty tmpfs over /proc) with no fork, no SOCK_SEQPACKET and no /proc."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "GRADER_"))}
    command = [str(python), *args]
    if mode == "no-sandbox-user":
        env["GRADER_SANDBOX_USER"] = "hw3-no-such-user"
    else:
        site = cwd.parent / "no-fork-site"
        site.mkdir(exist_ok=True)
        (site / "sitecustomize.py").write_text(NO_FORK_SITE)
        env["PYTHONPATH"] = str(site)
        command = ["unshare", "-m", "--propagation", "private", "sh", "-c", 'mount -t tmpfs none /proc && exec "$@"', "sh", *command]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def kit_venv(tmp_path_factory: pytest.TempPathFactory, kit_zip: Path) -> Path:
    """A fresh virtual environment made from the kit's own requirements.txt. It sees the
    system's packages (torch is not downloaded again) and pip may not reach an index:
    every requirement must be met by what is installed here."""
    where = tmp_path_factory.mktemp("venv")
    kit = unpack(kit_zip, where / "kit", None)
    # --without-pip: the system's pip installs into the venv; a venv's own bundled setuptools
    # would shadow the newer one torch requires and send pip to an index.
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(where / "venv")], check=True, timeout=300)
    python = where / "venv" / "bin" / "python"
    installed = subprocess.run(
        [str(python), "-m", "pip", "install", "--no-index", "--disable-pip-version-check", "-r", str(kit / "requirements.txt")],
        capture_output=True, text=True, timeout=300,
    )
    assert installed.returncode == 0, installed.stdout[-2000:] + installed.stderr[-2000:]
    return python


def graded_kit(kit_zip: Path, where: Path, solutions: Path | None, mode: str | None, python: Path) -> tuple[dict, str]:
    """``python -m autograder grade`` with no folder, in an unpacked kit: its results and stdout."""
    kit = unpack(kit_zip, where, solutions)
    if mode is None:
        proc = subprocess.run([str(python), "-m", "autograder", "grade", "--results", "r.json"], cwd=kit, capture_output=True, text=True, timeout=600)
    else:
        proc = run_in_mode(mode, python, kit, "-m", "autograder", "grade", "--results", "r.json")
    assert (kit / "r.json").is_file(), proc.stdout[-2000:] + proc.stderr[-2000:]
    return json.loads((kit / "r.json").read_text()), proc.stdout


def local_cases(where: Path) -> list[tuple[str, Path | None]]:
    """A correct solution, the template, and a bug in a caller part (3.3's loss)."""
    bug = next(e for e in entries("bugs") if e.name == "loss_unnegated")
    return [("reference", LAYOUT.reference_dir), ("template", None), ("bug", materialise(bug, where / "bug-upload"))]


@pytest.fixture(scope="module")
def sandboxed_verdicts(tmp_path_factory: pytest.TempPathFactory, kit_zip: Path) -> dict[str, dict]:
    """The kit graded in the full sandbox (root, sandbox user present): the verdicts to match."""
    where = tmp_path_factory.mktemp("sandboxed")
    verdicts = {}
    for name, solutions in local_cases(where):
        results, stdout = graded_kit(kit_zip, where / name, solutions, None, Path(sys.executable))
        assert "local mode" not in stdout
        verdicts[name] = {t["number"]: (t["status"], t["score"], t["output"]) for t in results["tests"]}
    return verdicts


@needs_root
@pytest.mark.parametrize("mode", MODES)
def test_local_mode_in_a_fresh_venv_gives_the_sandboxs_verdicts(
    mode: str, kit_zip: Path, kit_venv: Path, sandboxed_verdicts: dict[str, dict], tmp_path: Path
) -> None:
    """Every visible point for a correct solution, none for the template, and test by
    test the same status, score and message as the full sandbox (a bug included)."""
    # The bug (an unnegated loss) fails every visible test of its part.
    scores = {"reference": VISIBLE_POINTS, "template": 0, "bug": VISIBLE_POINTS - visible_points_of("3.3")}
    for name, solutions in local_cases(tmp_path):
        score = scores[name]
        results, stdout = graded_kit(kit_zip, tmp_path / name, solutions, mode, kit_venv)
        line = next((line for line in stdout.splitlines() if line.startswith("local mode: ")), "")
        assert line, stdout[:2000]
        if mode == "no-fork-no-proc":
            assert "os.fork" in line and "SOCK_SEQPACKET" in line and "/proc" in line, line
        else:
            assert "without the sandbox user 'hw3-no-such-user'" in line, line
        assert results["score"] == score, stdout[-3000:]
        verdicts = {t["number"]: (t["status"], t["score"], t["output"]) for t in results["tests"]}
        assert verdicts == sandboxed_verdicts[name]


@needs_root
@pytest.mark.parametrize("script, figures", [("q1_vae.py", ("smoke_elbo_curve.png", "smoke_samples.png")), ("q2_wgan.py", ("smoke_samples.png", "smoke_interpolation.png")), ("q3_simsiam.py", ("smoke_sg_on-mlp_none_curves.png",))])
def test_report_scripts_run_with_smoke_in_the_venv(script: str, figures: tuple[str, ...], kit_zip: Path, kit_venv: Path, tmp_path: Path) -> None:
    kit = unpack(kit_zip, tmp_path / "kit", LAYOUT.reference_dir)
    proc = run_in_mode("no-fork-no-proc", kit_venv, kit, script, "--smoke", "--out", "figures")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    for name in figures:
        data = (kit / "figures" / name).read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 1000, name


@needs_root
def test_plain_pytest_says_it_runs_in_local_mode(kit_zip: Path, tmp_path: Path) -> None:
    kit = unpack(kit_zip, tmp_path / "kit", LAYOUT.reference_dir)
    proc = run_in_mode("no-sandbox-user", Path(sys.executable), kit, "-m", "pytest")
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert "local mode: running as root without the sandbox user 'hw3-no-such-user'" in proc.stdout
    assert f"{len(VISIBLE_TESTS)} passed, {len(HIDDEN_TESTS)} skipped" in proc.stdout, proc.stdout[-1500:]


@needs_root
def test_gradescope_never_falls_back_to_local_mode(tmp_path: Path) -> None:
    """Under run_autograder a missing sandbox user is a grader error, never a silent downgrade."""
    run_ = simulate(build_zip(tmp_path / "dist"), LAYOUT.reference_dir, tmp_path / "gs", sandbox_user="hw3-no-such-user")
    results = run_.results()
    assert results["score"] == 0 and "local mode" not in run_.stdout
    assert "sandbox user 'hw3-no-such-user' does not exist" in results["output"]


# ------------------------------------------------------------------ feedback a student reads

def test_table_pytest_and_explain_show_each_message_with_its_hint(kit_zip: Path, tmp_path: Path) -> None:
    entry = next(e for e in entries("bugs") if e.name == "lme_naive_exp_log")
    kit = unpack(kit_zip, tmp_path / "kit", materialise(entry, tmp_path / "upload"))
    hint = "Hint: a log of 0 or of a negative number, a division by zero, or an overflowing exp (use the max trick / clamp)."
    table = run(kit, "-m", "autograder", "grade").stdout
    assert hint in " ".join(table.split()), table
    assert max(len(line) for line in table.splitlines()) <= 110
    explained = run(kit, "-m", "autograder", "grade", "--explain").stdout
    for number in ("1.1.1", "1.3.1", "1.3.2", "3.3.1"):
        assert f"\n{number}  " in "\n" + explained
    assert " ".join(explained.split()).count(hint) == 2  # 1.3.2 under --explain and in the table
    plain = run(kit, "-m", "pytest").stdout
    shape = tuple(FixtureStore(LAYOUT.fixtures_dir).case("lme_extreme").inputs["y"].shape)  # 1.3.2's case, from the fixtures
    assert f"Part 1.3 (log_mean_exp): log_mean_exp on inputs y{shape}" in plain and hint in plain
    assert "GradingFailure" not in plain and "raise self.fail" not in plain and "judge.py:" not in plain.split("short test summary")[0]
