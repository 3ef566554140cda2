"""The results.json a real ``grade --results`` writes against Gradescope's own conventions,
as gradescope-utils' JSONTestRunner (the library Gradescope publishes for Python
autograders, requirements-dev.txt) writes them for an equivalent unittest suite: every
field both write has the same JSON type, and the values Gradescope reads as words
(status, visibility) come from the same vocabulary.

One documented difference: gradescope-utils 0.5.0 writes ``execution_time`` as text
(``format(t, "0.2f")``); Gradescope's specification, which the kit follows, has a number of
seconds. The test pins that difference so that any other one fails."""
from __future__ import annotations

import io
import json
import sys
import unittest
from pathlib import Path
from typing import Any

import pytest

from autograder.config import load_config
from harness_tests.corpus import LAYOUT
from harness_tests.regrade_helpers import bug, cli

# Imported outright: without gradescope-utils (requirements-dev.txt) this file fails, never skips.
from gradescope_utils.autograder_utils.decorators import number, tags, visibility, weight
from gradescope_utils.autograder_utils.json_test_runner import JSONTestRunner

BUG = "bernoulli_keepdim_shape"  # fails some tests and passes others
KNOWN_DIFFERENCES = {("", "execution_time"): ("number", "string")}  # (test or "", field): (ours, theirs)


def _kind(value: Any) -> str:
    """The JSON type (JSON has one number type: 1 and 1.0 are both numbers)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    raise TypeError(type(value).__name__)


class _Equivalent(unittest.TestCase):
    """Two graded tests as a gradescope-utils autograder writes them: one passes with
    output, one fails; numbered, weighted, tagged by part, with a visibility. Run by
    JSONTestRunner only, never collected by pytest."""

    __test__ = False

    @weight(1)
    @number("1.1.1")
    @tags("1.1")
    @visibility("visible")
    def test_passes(self) -> None:
        """1.1.1 log_likelihood_bernoulli returns one float32 value per example"""
        print("Passed.")

    @weight(2)
    @number("1.1.2")
    @tags("1.1")
    @visibility("after_due_date")
    def test_fails(self) -> None:
        """1.1.2 log_likelihood_bernoulli matches the reference"""
        self.fail("values differ")


@pytest.fixture(scope="module")
def theirs() -> dict[str, Any]:
    stream = io.StringIO()
    suite = unittest.defaultTestLoader.loadTestsFromTestCase(_Equivalent)
    stdout = sys.stdout
    try:  # buffer=True swaps sys.stdout per test; keep pytest's capture out of it
        JSONTestRunner(stream=stream, visibility="visible", stdout_visibility="hidden").run(suite)
    finally:
        sys.stdout = stdout
    return json.loads(stream.getvalue())


@pytest.fixture(scope="module")
def ours(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("results_format")
    path = folder / "results.json"
    done = cli("grade", str(bug(BUG, folder / "upload")), "--results", str(path))
    assert done.returncode == 0, done.stderr
    return json.loads(path.read_text(encoding="utf-8"))


def test_the_reference_runner_wrote_what_it_is_compared_with(theirs: dict[str, Any]) -> None:
    """The comparison means something only if gradescope-utils wrote these fields."""
    assert {"tests", "score", "execution_time", "visibility", "stdout_visibility"} <= set(theirs)
    fields = set().union(*(set(t) for t in theirs["tests"]))
    assert {"name", "score", "max_score", "number", "visibility", "output", "status", "tags"} <= fields
    assert {t["status"] for t in theirs["tests"]} == {"passed", "failed"}


def test_every_field_both_write_has_the_same_type(ours: dict[str, Any], theirs: dict[str, Any]) -> None:
    config = load_config(LAYOUT.config_file)
    assert len(ours["tests"]) == len(config.tests())
    differences: dict[tuple[str, str], tuple[str, str]] = {}
    for field in set(ours) & set(theirs):
        if field != "tests" and _kind(ours[field]) != _kind(theirs[field]):
            differences[("", field)] = (_kind(ours[field]), _kind(theirs[field]))
    assert _kind(ours["tests"]) == _kind(theirs["tests"]) == "array"
    reference_types: dict[str, set[str]] = {}
    for test in theirs["tests"]:
        for field, value in test.items():
            reference_types.setdefault(field, set()).add(_kind(value))
    shared = 0
    for test in ours["tests"]:
        for field in set(test) & set(reference_types):
            shared += 1
            if _kind(test[field]) not in reference_types[field]:
                differences[(test["number"], field)] = (_kind(test[field]), "/".join(sorted(reference_types[field])))
    assert shared >= len(ours["tests"]) * 7, "too few shared fields to compare"
    assert differences == KNOWN_DIFFERENCES
    float(theirs["execution_time"])  # their text is a number of seconds, as ours is
    assert ours["execution_time"] >= 0


def test_the_fields_gradescope_reads_are_all_there(ours: dict[str, Any], theirs: dict[str, Any]) -> None:
    """What gradescope-utils writes for a weighted, numbered test with output and a
    visibility, ours writes for every test; top-level fields likewise (bar its empty leaderboard)."""
    their_test_fields = set().union(*(set(t) for t in theirs["tests"]))
    for test in ours["tests"]:
        assert their_test_fields <= set(test), (test["number"], their_test_fields - set(test))
    assert set(theirs) - {"leaderboard"} <= set(ours), set(theirs) - set(ours)


def test_words_and_numbers_follow_the_same_conventions(ours: dict[str, Any], theirs: dict[str, Any]) -> None:
    statuses = {t["status"] for t in ours["tests"]}
    assert statuses == {"passed", "failed"}, "the bug should both pass and fail tests"
    assert statuses <= {t["status"] for t in theirs["tests"]}
    gradescope_visibilities = {"visible", "hidden", "after_due_date", "after_published"}
    assert {t["visibility"] for t in theirs["tests"]} <= gradescope_visibilities
    assert {t["visibility"] for t in ours["tests"]} <= gradescope_visibilities
    assert ours["visibility"] in gradescope_visibilities and ours["stdout_visibility"] in gradescope_visibilities
    for results in (ours, theirs):
        # As JSONTestRunner does: the top-level score is the tests' sum, and a test is
        # failed exactly when it lost points.
        assert results["score"] == pytest.approx(sum(t["score"] for t in results["tests"]))
        for test in results["tests"]:
            assert 0 <= test["score"] <= test["max_score"]
            assert (test["status"] == "failed") == (test["score"] < test["max_score"]), test
            assert isinstance(test["number"], str) and test["name"]
    assert all(t["name"].startswith(t["number"]) for t in ours["tests"])
