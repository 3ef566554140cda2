"""The pytest plugin, run on tiny graded test files through ``pytester``: scores, messages
and the Gradescope results.json it writes."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from autograder.config import load_config

pytest_plugins = ["pytester"]

# pytester's in-process runs drop the modules they imported when they end; the first
# comparison imports torch.distributed's operator registrations, which cannot run twice in
# one process, so a later test comparing tensors would fail. Imported once here, for good.
torch.testing.assert_close(torch.zeros(1), torch.zeros(1))

REPO = Path(__file__).resolve().parent.parent.parent
GRADING_YAML = REPO / "grading.yaml"
TOP_KEYS = {"score", "execution_time", "output", "output_format", "visibility", "stdout_visibility", "tests"}
TEST_KEYS = {"name", "number", "score", "max_score", "status", "output", "output_format", "tags", "visibility"}

GRADED_FILE = '''
import pytest
from autograder.grading.judge import GradingFailure

@pytest.mark.graded("1.1.1")
def test_passes():
    assert 1 + 1 == 2

@pytest.mark.graded("1.1.2")
def test_fails_with_a_message():
    raise GradingFailure("log_likelihood_bernoulli: shape: expected (6,), got (6, 1).")

@pytest.mark.graded("1.1.3")
def test_crashes():
    def helper_frame():
        raise KeyError("surprise")
    helper_frame()

@pytest.mark.graded("1.2.1")
def test_plain_assert():
    assert 1 == 2, "a plain assertion"

@pytest.mark.graded("1.2.2")
@pytest.mark.skip(reason="hidden tests are skipped in the student kit")
def test_skipped():
    pass

def test_not_graded():
    pass
'''


@pytest.fixture
def run(pytester: pytest.Pytester):
    pytester.syspathinsert(REPO)

    def _run(source: str, *extra: str) -> tuple[pytest.RunResult, Path]:
        pytester.makepyfile(test_graded=source)
        results = pytester.path / "out" / "results.json"
        outcome = pytester.runpytest(
            "-p", "autograder.grading.plugin", "-p", "no:cacheprovider",
            "--grading-config", str(GRADING_YAML), "--results", str(results), *extra,
        )
        return outcome, results

    return _run


def _tests(results: Path) -> dict[str, dict]:
    data = json.loads(results.read_text(encoding="utf-8"))
    assert TOP_KEYS <= set(data)
    assert isinstance(data["execution_time"], (int, float)) and data["execution_time"] >= 0
    for test in data["tests"]:
        assert TEST_KEYS <= set(test), test
        assert test["output_format"] in ("md", "text")
        assert test["visibility"] in ("visible", "hidden", "after_due_date", "after_published")
        assert test["status"] in ("passed", "failed")
        assert test["tags"] and str(test["number"]).startswith(test["tags"][0])
    assert abs(data["score"] - sum(t["score"] for t in data["tests"])) < 1e-9
    return {t["number"]: t for t in data["tests"]}


def test_results_json_scores_and_messages(run) -> None:
    outcome, path = run(GRADED_FILE)
    outcome.assert_outcomes(passed=2, failed=3, skipped=1)
    config = load_config(GRADING_YAML)
    tests = _tests(path)
    skipped = {"1.2.2"}
    assert set(tests) == {t.number for t in config.tests()} - skipped  # every configured test once

    passed = tests["1.1.1"]
    assert passed["status"] == "passed" and passed["score"] == passed["max_score"] == config.test("1.1.1").points
    assert passed["name"].startswith("1.1.1") and config.test("1.1.1").name in passed["name"]

    failed = tests["1.1.2"]
    assert failed["status"] == "failed" and failed["score"] == 0 and failed["max_score"] == config.test("1.1.2").points
    assert failed["output"] == "log_likelihood_bernoulli: shape: expected (6,), got (6, 1)."
    assert "Traceback" not in failed["output"] and "test_graded.py" not in failed["output"]

    crashed = tests["1.1.3"]
    assert crashed["status"] == "failed" and crashed["score"] == 0
    assert crashed["output"].startswith("internal grader error (KeyError)")
    assert "surprise" in crashed["output"] and "Traceback" not in crashed["output"]
    assert crashed["visibility"] == "after_due_date"  # grading.yaml's one setting for non-visible tests

    plain = tests["1.2.1"]
    assert plain["score"] == 0 and plain["output"].startswith("internal grader error (AssertionError)")

    # Tests that did not run are present, score 0 and say so (never a silent full mark).
    for number in set(tests) - {"1.1.1", "1.1.2", "1.1.3", "1.2.1"}:
        assert tests[number]["score"] == 0 and tests[number]["status"] == "failed"
        assert "did not run" in tests[number]["output"]
    assert json.loads(path.read_text())["score"] == config.test("1.1.1").points


def test_unknown_graded_number_is_a_usage_error(run) -> None:
    outcome, _ = run('import pytest\n\n@pytest.mark.graded("9.9.9")\ndef test_x():\n    pass\n')
    assert outcome.ret == pytest.ExitCode.USAGE_ERROR
    assert "9.9.9" in outcome.stderr.str() + outcome.stdout.str()


def test_duplicate_graded_number_is_a_usage_error(run) -> None:
    source = 'import pytest\n\n@pytest.mark.graded("1.1.1")\ndef test_a():\n    pass\n\n@pytest.mark.graded("1.1.1")\ndef test_b():\n    pass\n'
    outcome, _ = run(source)
    assert outcome.ret == pytest.ExitCode.USAGE_ERROR
    assert "also used by" in outcome.stderr.str() + outcome.stdout.str()


def test_fixture_error_in_setup_is_an_internal_grader_error(run) -> None:
    source = '''
import pytest

@pytest.fixture
def broken():
    raise RuntimeError("fixture exploded")

@pytest.mark.graded("3.2.1")
def test_uses_broken(broken):
    pass
'''
    outcome, path = run(source)
    outcome.assert_outcomes(errors=1)
    test = _tests(path)["3.2.1"]
    assert test["score"] == 0 and test["output"].startswith("internal grader error (RuntimeError)")
    assert "fixture exploded" in test["output"]


def test_bad_grading_config_stops_the_run(pytester: pytest.Pytester, tmp_path: Path) -> None:
    pytester.syspathinsert(REPO)
    bad = tmp_path / "grading.yaml"
    bad.write_text("version: 1\n")
    pytester.makepyfile(test_x="def test_x():\n    pass\n")
    outcome = pytester.runpytest("-p", "autograder.grading.plugin", "--grading-config", str(bad))
    assert outcome.ret != pytest.ExitCode.OK
    assert str(bad) in outcome.stderr.str() + outcome.stdout.str()


def test_grader_against_the_reference(run) -> None:
    """One real probe through the sandboxed worker: the reference passes 1.1.1 and 1.1.2."""
    source = '''
import pytest

@pytest.mark.graded("1.1.1")
def test_shape(grader):
    case = grader.case("bernoulli_basic")
    obs = grader.call("log_likelihood_bernoulli", case, ("mu", "target"))
    info = grader.info(obs, "out")
    assert info["type"] == "Tensor" and tuple(info["shape"]) == (6,)

@pytest.mark.graded("1.1.2")
def test_values(grader):
    case = grader.case("bernoulli_basic")
    obs = grader.call("log_likelihood_bernoulli", case, ("mu", "target"))
    grader.expect_close(obs, "out", case.expected["out"], what="log_likelihood_bernoulli", hints=case.hint_list("out"))
'''
    outcome, path = run(source, "--submission", str(REPO / "reference"))
    outcome.assert_outcomes(passed=2)
    tests = _tests(path)
    config = load_config(GRADING_YAML)
    assert {n: tests[n]["score"] for n in ("1.1.1", "1.1.2")} == {n: config.test(n).points for n in ("1.1.1", "1.1.2")}, "each passed test earns its grading.yaml points"


FALLBACK_FILE = '''
import pytest
from autograder.grading.judge import Grader, GradingFailure

@pytest.fixture
def grader(request):
    from autograder.config import load_config
    config = load_config(__import__("pathlib").Path(request.config.getoption("--grading-config")))
    spec = config.test(request.node.get_closest_marker("graded").args[0])
    return Grader(spec, config.part(spec.part), cases=None, runner=None)

CALLS = []

@pytest.mark.graded("1.5.1")
@pytest.mark.callee_fallback(log_likelihood_normal="log_likelihood_normal")
def test_rescued(grader):
    CALLS.append(dict(grader.fallback))
    if not grader.fallback:
        raise GradingFailure("own callee: wrong")

@pytest.mark.graded("1.5.2")
@pytest.mark.callee_fallback(log_likelihood_normal="log_likelihood_normal")
def test_fails_both_ways(grader):
    raise GradingFailure("first failure" if not grader.fallback else "second failure")

@pytest.mark.graded("1.5.3")
@pytest.mark.callee_fallback(log_likelihood_normal="log_likelihood_normal")
def test_passes_first(grader):
    assert not grader.fallback

@pytest.mark.graded("1.5.4")
@pytest.mark.callee_fallback(log_likelihood_normal="no_such_substitute")
def test_no_substitute_available(grader):
    raise GradingFailure("own callee only")

def test_calls_were_in_order():
    assert CALLS == [{}, {"log_likelihood_normal": "log_likelihood_normal"}]
'''


def test_callee_fallback_only_adds_points_and_shows_the_students_own_failure(run) -> None:
    outcome, path = run(FALLBACK_FILE)
    outcome.assert_outcomes(passed=3, failed=2)
    tests = _tests(path)
    assert tests["1.5.1"]["status"] == "passed" and "correct log_likelihood_normal in place of yours" in tests["1.5.1"]["output"]
    assert tests["1.5.2"]["status"] == "failed" and tests["1.5.2"]["output"] == "first failure"
    assert tests["1.5.3"]["status"] == "passed" and tests["1.5.3"]["output"] == "Passed."
    # Where no correct callee ships (the student kit), the student's own verdict stands.
    assert tests["1.5.4"]["status"] == "failed" and tests["1.5.4"]["output"] == "own callee only"


LEFTOVER_FILE = '''
import pytest
from autograder.grading.judge import Grader, GradingFailure
from autograder.grading.plugin import SESSION_KEY

RUNS = {}


@pytest.fixture
def grader(request, submission_key):
    session = request.config.stash[SESSION_KEY]
    key = session.resolve(submission_key)
    RUNS[key] = RUNS.get(key, 0) + 1
    if key == "a" and RUNS[key] == 2:
        raise RuntimeError("the deferred run of submission a broke in its set-up")
    spec = session.config.test("3.3.1")
    return Grader(spec, session.config.part("3.3"), cases=None, runner=None)


@pytest.mark.graded("3.3.1")
@pytest.mark.callee_fallback(CosineSimilarity="CosineSimilarity")
def test_caller(grader, request):
    key = request.config.stash[SESSION_KEY].queued
    if key == "a":
        raise GradingFailure("the message of submission a")
    if grader.fallback:
        raise GradingFailure("submission b run with the correct callee")
'''


def test_a_deferred_run_that_breaks_leaves_nothing_for_the_next_submission(pytester: pytest.Pytester, tmp_path: Path) -> None:
    """Submission a's caller test fails and its deferred fallback run breaks in set-up, so
    its first failure is never taken back by a fallback run; the same pytest item then
    grades submission b, which passes on its own and must see nothing of a."""
    from autograder.grading.plugin import GradingHandle
    from autograder.sandbox.mode import start_workers

    pytester.syspathinsert(REPO)
    pytester.makepyfile(test_leftover=LEFTOVER_FILE)
    queue = [("a", tmp_path / "a"), ("b", tmp_path / "b")]
    for _, folder in queue:
        folder.mkdir()
    done = {}
    pool, _ = start_workers(load_config(GRADING_YAML).sandbox)
    handle = GradingHandle(pool, next_submission=lambda: queue.pop(0) if queue else None, on_done=lambda d: done.update({d.key: d.outcomes}))
    try:
        pytester.runpytest("-p", "autograder.grading.plugin", "-p", "no:cacheprovider", "--grading-config", str(GRADING_YAML), plugins=[handle])
    finally:
        pool.close()
    assert done["a"]["3.3.1"].status == "failed"
    assert done["b"]["3.3.1"].status == "passed", done["b"]["3.3.1"].output
