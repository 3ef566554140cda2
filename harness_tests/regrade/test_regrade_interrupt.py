"""Interrupting a real ``python -m autograder regrade``: Ctrl-C (SIGINT to its process
group) and SIGTERM to the parent alone stop every process it started, keep exactly
the submissions that finished, record nothing for the others, and a re-run then gives
exactly the grades of an uninterrupted run."""
from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Callable

import pytest

from autograder.regrade.batch import FINGERPRINT_KEY
from harness_tests.corpus import FULL_MARKS, marks
from harness_tests.regrade_helpers import Proc, alive, bug, cli, descendants, grades, reference, sandboxed, start

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="grades with the sandbox users (root only)")

KEYS = ("a_ref", "b_slow", "c_bug", "d_ref", "e_slow", "f_ref", "g_syntax")


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("class") / "export"
    for key in KEYS:
        if key.endswith("_slow"):
            reference(root / key, slow=True)
        elif key == "c_bug":
            bug("kl_analytic_missing_half", root / key)
        else:
            reference(root / key)
    (root / "g_syntax" / "q3_solution.py").write_text("def broken(:\n")
    return root


@pytest.fixture(scope="module")
def clean(export: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, str]]:
    out = tmp_path_factory.mktemp("clean") / "out"
    done = cli("regrade", str(export), "--out", str(out), "--jobs", "2")
    assert done.returncode == 0, done.stderr
    rows = grades(out)
    assert rows["b_slow"]["total"] == marks(FULL_MARKS) and rows["g_syntax"]["errors"] == "q3_solution.py: syntax error at line 1"
    return rows


def _interrupt(export: Path, out: Path, send: Callable[[int], None], ready: Callable[[set[Proc]], bool]) -> tuple[int, str, set[Proc], int]:
    """Start a regrade, wait until ``ready`` (given its process tree), ``send`` the
    signal; its exit code, stderr, every process it ever had, and how many results
    existed when the signal went."""
    proc = start("regrade", str(export), "--out", str(out), "--jobs", "2")
    seen: set[Proc] = set()
    deadline = time.monotonic() + 120
    try:
        while True:
            assert proc.poll() is None, f"the regrade ended before it could be interrupted: {proc.communicate()}"
            assert time.monotonic() < deadline, "the regrade never reached the point to interrupt"
            tree = descendants(proc.pid)
            seen |= tree
            if ready(tree):
                break
            time.sleep(0.05)
        before = len(list((out / "results").glob("*.json")))
        send(proc.pid)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode, stderr, seen, before


def _kept_results_are_clean_run_grades(out: Path, clean: dict[str, dict[str, str]]) -> set[str]:
    kept = set()
    for path in (out / "results").glob("*.json"):
        results = json.loads(path.read_text())
        assert results.get(FINGERPRINT_KEY), f"{path.name} was recorded without a fingerprint"
        assert f"{results['score']:g}" == clean[path.stem]["total"], f"{path.stem} was recorded with a wrong grade"
        kept.add(path.stem)
    assert not list((out / "results").glob(".results-*")), "a half-written result was left behind"
    return kept


def test_ctrl_c_then_resume_gives_the_grades_of_a_clean_run(export: Path, clean: dict[str, dict[str, str]], tmp_path: Path) -> None:
    out = tmp_path / "out"

    def some_done(tree: set[Proc]) -> bool:
        return len(list((out / "results").glob("*.json"))) >= 2

    code, stderr, seen, before = _interrupt(export, out, lambda pid: os.killpg(pid, signal.SIGINT), some_done)
    assert code == 130, stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    assert "to resume, run the same command again" in stderr
    time.sleep(0.5)
    assert not alive(seen), f"processes of the regrade survived Ctrl-C: {alive(seen)}"
    kept = _kept_results_are_clean_run_grades(out, clean)
    assert before <= len(kept) < len(KEYS), "the interruption did not cut the run short"
    assert not (out / "grades.csv").exists()
    resumed = cli("regrade", str(export), "--out", str(out), "--jobs", "2")
    assert resumed.returncode == 0, resumed.stderr
    assert f"{len(kept)} reused (fingerprint unchanged), {len(KEYS) - len(kept)} to grade" in resumed.stderr
    assert grades(out) == clean


def test_sigterm_to_the_parent_alone_leaves_no_process(export: Path, clean: dict[str, dict[str, str]], tmp_path: Path) -> None:
    out = tmp_path / "out"

    def workers_running(tree: set[Proc]) -> bool:
        # parent -> slot -> zygote -> worker: a submission is being graded in a sandbox
        return bool(sandboxed(tree))

    code, stderr, seen, _ = _interrupt(export, out, lambda pid: os.kill(pid, signal.SIGTERM), workers_running)
    assert code == 130, stderr
    assert "Traceback" not in stderr and "to resume" in stderr
    time.sleep(0.5)
    assert not alive(seen), f"processes of the regrade (sandboxed workers included) survived SIGTERM: {alive(seen)}"
    kept = _kept_results_are_clean_run_grades(out, clean)
    assert len(kept) < len(KEYS)
