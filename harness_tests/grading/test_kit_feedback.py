"""Feedback as a student meets it, graded in the unpacked student kit: a caller part names
the student's failing callee first, the commonest penalty mistakes lose a visible point
(locally and on Gradescope), the student's own print() shows with its failure, a
timeout names the file and line the code was at, a hanging import costs one timeout,
Ctrl-C ends with one line, and the kit's own files name nothing it does not hold."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from harness_tests.corpus import CONFIG, LAYOUT, entries, materialise, materialise_files
from harness_tests.gradescope_sim import build_zip, simulate
from harness_tests.course.test_student_kit import kit_zip, run, unpack  # noqa: F401  (kit_zip is a fixture)

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="Gradescope's run needs root (the sandbox user)")


def _bug(name: str, where: Path) -> Path:
    return materialise(next(e for e in entries("bugs") if e.name == name), where)


def _part_of(function: str) -> str:
    return next(p.number for p in CONFIG.parts if any(f == function or f.startswith(function + ".") for f in p.functions))


def _visible(part: str) -> list[str]:
    return [t.number for t in CONFIG.part(part).tests if not t.hidden]


def _graded(kit: Path, *args: str) -> dict[str, dict]:
    proc = run(kit, "-m", "autograder", "grade", ".", "--results", "r.json", *args)
    assert (kit / "r.json").is_file(), proc.stdout[-2000:] + proc.stderr[-2000:]
    return {t["number"]: t for t in json.loads((kit / "r.json").read_text(encoding="utf-8"))["tests"]}


def _set_timeout(kit: Path, seconds: float, budget: float | None = None) -> None:
    """The kit's own grading.yaml with shorter waits (the code under test is the same)."""
    data = yaml.safe_load((kit / "grading.yaml").read_text(encoding="utf-8"))
    data["defaults"]["timeout"] = seconds
    if budget is not None:
        data["sandbox"]["budget_seconds"] = budget
    (kit / "grading.yaml").write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


@pytest.mark.parametrize(("bug", "caller", "callee"), [
    ("normal_logvar_as_logstd", "kl_gaussian_gaussian_mc", "log_likelihood_normal"),
    ("cosine_one_norm", "SimSiam.loss", "CosineSimilarity"),
])
def test_a_caller_part_names_the_students_failing_callee_first(bug: str, caller: str, callee: str, kit_zip: Path, tmp_path: Path) -> None:  # noqa: F811
    kit = unpack(kit_zip, tmp_path / "kit", _bug(bug, tmp_path / "upload"))
    tests = _graded(kit)
    caller_part, callee_part = _part_of(caller), _part_of(callee)
    assert any(tests[n]["status"] == "failed" for n in _visible(callee_part)), "the bug must fail its own part"
    failed = [n for n in _visible(caller_part) if tests[n]["status"] == "failed"]
    assert failed, f"{caller} passes with the broken {callee}: nothing to name"
    for number in failed:
        output = tests[number]["output"]
        first = output.split("\n", 1)[0]
        assert f"{caller} calls your {callee}, which fails part {callee_part}: fix that first" in first, output
        assert "Hint:" not in output.split("Output of your code", 1)[0], f"{number} keeps a hint about the caller's own code: {output}"


@pytest.mark.parametrize("bug", ["lp_no_create_graph", "lp_t_per_element"])
@needs_root
def test_the_commonest_penalty_mistakes_lose_a_visible_point_locally_and_on_gradescope(bug: str, kit_zip: Path, tmp_path: Path) -> None:  # noqa: F811
    upload = _bug(bug, tmp_path / "upload")
    local = _graded(unpack(kit_zip, tmp_path / "kit", upload))
    remote = {t["number"]: t for t in simulate(build_zip(tmp_path / "dist"), upload, tmp_path / "gs").results()["tests"]}
    part = _part_of("lp_reg")
    lost_local = [n for n in _visible(part) if local[n]["status"] == "failed"]
    lost_remote = [n for n in _visible(part) if remote[n]["status"] == "failed"]
    assert lost_local and lost_local == lost_remote, (lost_local, lost_remote)


PRINTING_LME = '''

def log_mean_exp(y):
    print("DEBUG-PRINT-MARKER shape", tuple(y.shape))
    return torch.logsumexp(y, dim=1)
'''


@needs_root
def test_the_students_own_print_shows_with_a_visible_failure_only(kit_zip: Path, tmp_path: Path) -> None:  # noqa: F811
    q1 = (LAYOUT.reference_dir / "q1_solution.py").read_text(encoding="utf-8") + PRINTING_LME
    upload = materialise_files(tmp_path / "upload", {"q1_solution.py": q1})
    kit = unpack(kit_zip, tmp_path / "kit", upload)
    part = _part_of("log_mean_exp")
    tests = _graded(kit)
    for number in _visible(part):
        assert tests[number]["status"] == "failed" and "DEBUG-PRINT-MARKER shape" in tests[number]["output"], tests[number]
    assert "DEBUG-PRINT-MARKER shape" in run(kit, "-m", "autograder", "grade").stdout  # the table
    assert "DEBUG-PRINT-MARKER shape" in run(kit, "-m", "autograder", "grade", "--explain").stdout
    assert "DEBUG-PRINT-MARKER shape" in run(kit, "-m", "pytest", "-q").stdout
    remote = simulate(build_zip(tmp_path / "dist"), upload, tmp_path / "gs").results()["tests"]
    for test in remote:
        if test["number"].startswith(part + ".") and test["visibility"] != "visible":
            assert test["status"] == "failed" and "DEBUG-PRINT-MARKER" not in test["output"], test


def test_an_endless_loop_is_named_by_file_and_line(kit_zip: Path, tmp_path: Path) -> None:  # noqa: F811
    q1 = (LAYOUT.reference_dir / "q1_solution.py").read_text(encoding="utf-8")
    q1 += "\n\ndef log_mean_exp(y):\n    total = y.sum()\n    while True:\n        total = total + 1\n"
    line = q1.splitlines().index("        total = total + 1") + 1
    kit = unpack(kit_zip, tmp_path / "kit", materialise_files(tmp_path / "upload", {"q1_solution.py": q1}))
    _set_timeout(kit, 3.0)
    tests = _graded(kit)
    first = _visible(_part_of("log_mean_exp"))[0]
    assert re.search(rf"your code was at q1_solution\.py, line ({line}|{line - 1}), in log_mean_exp", tests[first]["output"]), tests[first]["output"]


COUNT_TIMEOUTS = """
import json, sys
from pathlib import Path
from autograder.config import load_config
from autograder.grading.run import run_suites
from autograder.paths import KitLayout
from autograder.sandbox.mode import start_workers

layout = KitLayout.here()
config = load_config(layout.config_file)
pool, _ = start_workers(config.sandbox)
timeouts = []


class Counted:
    def __init__(self, worker):
        self.worker = worker

    def __getattr__(self, name):
        return getattr(self.worker, name)

    def call(self, *args, **kwargs):
        result = self.worker.call(*args, **kwargs)
        if result.status == "timeout":
            timeouts.append(result.phase)
        return result


class CountingPool:
    def __getattr__(self, name):
        return getattr(pool, name)

    def spawn(self, *args, **kwargs):
        return Counted(pool.spawn(*args, **kwargs))

    def finish(self, worker):
        return pool.finish(worker.worker if isinstance(worker, Counted) else worker)


try:
    handle, _, _ = run_suites(layout, config, Path(sys.argv[1]), CountingPool())
finally:
    pool.close()
print(json.dumps({"timeouts": timeouts, "failed": sorted(n for n, o in handle.outcomes.items() if o.status != "passed")}))
"""


def test_an_import_that_hangs_costs_one_timeout(kit_zip: Path, tmp_path: Path) -> None:  # noqa: F811
    q2 = (LAYOUT.reference_dir / "q2_solution.py").read_text(encoding="utf-8") + "\n\nwhile True:\n    pass\n"
    upload = materialise_files(tmp_path / "upload", {"q2_solution.py": q2})
    kit = unpack(kit_zip, tmp_path / "kit", None)
    _set_timeout(kit, 3.0)
    proc = run(kit, "-c", COUNT_TIMEOUTS, str(upload))
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    module_tests = [t.number for p in CONFIG.part_of_module("q2_solution") for t in p.tests if not t.hidden]
    assert set(module_tests) <= set(report["failed"]), report
    assert report["timeouts"] == ["import"], f"a hanging import cost {len(report['timeouts'])} timeouts: {report}"


def test_ctrl_c_ends_the_grading_with_one_line_and_status_130(kit_zip: Path, tmp_path: Path) -> None:  # noqa: F811
    q1 = (LAYOUT.reference_dir / "q1_solution.py").read_text(encoding="utf-8") + "\n\nimport time\ntime.sleep(60)\n"
    kit = unpack(kit_zip, tmp_path / "kit", materialise_files(tmp_path / "upload", {"q1_solution.py": q1}))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "GRADER_"))}
    proc = subprocess.Popen([sys.executable, "-m", "autograder", "grade"], cwd=kit, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(6.0)  # well into the first probe (the import sleeps)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, (proc.returncode, stdout[-2000:], stderr[-2000:])
    assert "Traceback" not in stdout + stderr and "grader error" not in stdout + stderr, stdout + stderr
    assert [line for line in stderr.splitlines() if line.strip()] == ["interrupted"], stderr


def test_grade_py_grades_from_any_folder_and_refuses_a_file(kit_zip: Path, tmp_path: Path) -> None:  # noqa: F811
    kit = unpack(kit_zip, tmp_path / "kit", LAYOUT.reference_dir)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    graded = run(elsewhere, str(kit / "grade.py"))
    visible_points = sum(t.points for t in CONFIG.tests() if not t.hidden)
    assert graded.returncode == 0 and f"total: {visible_points:g}/{visible_points:g}" in graded.stdout, graded.stdout[-2000:] + graded.stderr[-2000:]
    refused = run(elsewhere, str(kit / "grade.py"), str(kit / "q1_solution.py"))
    assert refused.returncode == 2 and "a file, not a folder" in refused.stderr and "Traceback" not in refused.stderr, refused.stderr


# What the course staff's repository has and the kit does not.
ABSENT_FROM_KIT = re.compile(r"setup\.sh|run_autograder|harness_tests|calibrat|regrade|reference/|fixtures generate|requirements-dev")


def test_the_kits_own_files_name_nothing_it_does_not_hold(kit_zip: Path, tmp_path: Path) -> None:  # noqa: F811
    kit = unpack(kit_zip, tmp_path / "kit", None)
    read_by_students = [kit / name for name in ("README.md", "grading.yaml", "requirements.txt", "pytest.ini", "grade.py")]
    read_by_students += [p for p in kit.glob("*.py") if p.name not in ("grade.py",)] + list(kit.glob("*.ipynb"))
    found = [f"{p.name}: {m.group(0)}" for p in read_by_students for m in ABSENT_FROM_KIT.finditer(p.read_text(encoding="utf-8"))]
    for args in (("--help",), ("grade", "--help")):
        found += [f"--help: {m.group(0)}" for m in ABSENT_FROM_KIT.finditer(run(kit, "-m", "autograder", *args).stdout)]
    assert not found, found
