"""Gradescope's results.json, built from the config's list of tests so that every
test appears exactly once, whatever happened while grading."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from autograder.config import GradingConfig
from autograder.records import TestOutcome
from autograder.text import bounded, clean_text

MAX_TEST_OUTPUT = 8000


TRUNCATED = "\n[... truncated ...]"


def _truncate(text: str, limit: int) -> str:
    return bounded(text, limit, TRUNCATED)


def complete_outcomes(
    config: GradingConfig, outcomes: dict[str, TestOutcome], missing_reason: str, exclude: set[str] | frozenset[str] = frozenset()
) -> list[TestOutcome]:
    """One outcome per configured test; a test that did not run scores 0 and says why.

    ``exclude`` holds tests skipped on purpose (hidden tests in the student kit)."""
    result = []
    for spec in config.tests():
        if spec.number in exclude:
            continue
        outcome = outcomes.get(spec.number)
        if outcome is None:
            outcome = TestOutcome(spec.number, spec.name, spec.part, 0.0, spec.points, "failed", missing_reason, spec.visibility, (spec.part,))
        result.append(outcome)
    return result


def build_results(outcomes: list[TestOutcome], execution_time: float, output: str = "") -> dict[str, Any]:
    tests = [
        {
            "name": f"{o.number} {o.name}",
            "number": o.number,
            "score": o.score,
            "max_score": o.max_score,
            "status": o.status,
            "output": _truncate(clean_text(o.output), MAX_TEST_OUTPUT),
            "output_format": "text",
            "tags": list(o.tags),
            "visibility": o.visibility,
        }
        for o in outcomes
    ]
    return {
        "score": round(sum(o.score for o in outcomes), 6),
        "execution_time": round(float(execution_time), 3),
        "output": _truncate(clean_text(output), MAX_TEST_OUTPUT),
        "output_format": "text",
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": tests,
    }


def harness_failure_results(config: GradingConfig | None, error: str, execution_time: float) -> dict[str, Any]:
    """Every test 0 with the error, so a broken grader is never a silent score."""
    message = f"The autograder itself failed, so nothing was graded; please tell the course staff.\n{error}"
    if config is None:
        return build_results([], execution_time, message)
    outcomes = complete_outcomes(config, {}, message)
    return build_results(outcomes, execution_time, message)


def grader_error_results(error: str, execution_time: float) -> dict[str, Any]:
    """A grading that could not start (a broken kit): what went wrong and no score at all,
    so Gradescope shows the run as failed instead of recording 0 for the student."""
    return {
        "execution_time": round(float(execution_time), 3),
        "output": _truncate(clean_text(f"Grader error, tell the course staff: nothing was graded, because the autograder is broken ({error})."), MAX_TEST_OUTPUT),
        "output_format": "text",
        "visibility": "visible",
        "stdout_visibility": "hidden",
    }


def write_results(path: Path, results: dict[str, Any]) -> None:
    """Atomic write, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".results-", suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(results, handle, indent=2)
        handle.write("\n")
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
