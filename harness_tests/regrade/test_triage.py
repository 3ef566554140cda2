"""The ``errors`` column and the progress lines: what a TA reads to find the submissions
that need a look. Failure messages come from the real Grader (with a runner that
answers what a hanging, crashing or broken submission's worker would)."""
from __future__ import annotations

import io
from dataclasses import dataclass

import pytest

from autograder.regrade.batch import Running
from autograder.grading.judge import Grader, GradingFailure
from autograder.regrade.progress import Progress
from autograder.records import Observation
from autograder.regrade.triage import describe
from harness_tests.corpus import CONFIG


@dataclass
class _Answers:
    observation: Observation

    def run(self, request: object) -> Observation:
        return self.observation


def _failed_test(number: str, observation: Observation) -> dict:
    spec = CONFIG.test(number)
    grader = Grader(spec, CONFIG.part(spec.part), cases=None, runner=_Answers(observation))  # type: ignore[arg-type]
    with pytest.raises(GradingFailure) as failure:
        grader.probe("call", {}, {}, call="f(x)")
    return {"number": number, "status": "failed", "score": 0.0, "output": str(failure.value)}


def test_errors_name_the_problem_and_the_parts() -> None:
    results = {
        "tests": [
            _failed_test("1.1.1", Observation("import_error", "SyntaxError: invalid syntax (q1_solution.py, line 12)", phase="import")),
            _failed_test("2.1.1", Observation("missing", "q2_solution.py not found in your submission")),
            _failed_test("3.1.1", Observation("timeout", "timed out while running: did not finish within 20 s")),
            _failed_test("3.2.1", Observation("timeout", "timed out while running: did not finish within 20 s")),
            _failed_test("3.3.1", Observation("crashed", "the worker process was killed by signal SIGSEGV (segmentation fault) while running")),
            {"number": "1.2.1", "status": "failed", "score": 0.0, "output": "Part 1.2 (log_likelihood_normal): values differ"},
        ]
    }
    assert describe(results) == "q1_solution.py: syntax error at line 12; missing q2_solution.py; timeout in parts 3.1, 3.2; crash in part 3.3"


def test_import_errors_and_harness_failures() -> None:
    imported = {"tests": [_failed_test("3.1.1", Observation("import_error", "ModuleNotFoundError: No module named 'cv2'", phase="import"))]}
    assert describe(imported) == "q3_solution.py: import error (ModuleNotFoundError: No module named 'cv2')"
    broken = {"output": "The autograder itself failed, so nothing was graded; please tell the course staff.\nSandboxError: boom", "tests": []}
    assert describe(broken) == "not graded: SandboxError: boom"
    assert describe({"tests": [{"number": "1.1.1", "status": "passed", "output": "Passed."}]}) == ""


def test_plain_progress_lines_name_slow_submissions() -> None:
    stream = io.StringIO()
    progress = Progress(total=5, initial=1, stream=stream, every=0.0)
    progress.finished(graded=True)
    progress.finished(graded=False)
    progress.tick([Running("submission_7", 75.0), Running("submission_8", 3.0)])
    progress.close()
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("progress: 1/5 submissions done")
    assert "3/5 submissions done" in lines[1] and "1 could not be graded" in lines[1] and "2 running" in lines[1]
    assert "running for over a minute: submission_7 (75 s)" in lines[1] and "submission_8" not in lines[1]
