"""In a harness session (the CLI's, a regrade slot's, Gradescope's) graded tests run
without pytest's per-phase hooks and reports; their outcomes must be what pytest's
protocol gives, in plain pytest, for the same tests."""
from __future__ import annotations

import json
from typing import Iterator

import pytest

from autograder.config import load_config
from autograder.grading.plugin import GradingHandle
from autograder.records import TestOutcome as Outcome  # renamed: not collected as a test class
from autograder.sandbox.mode import start_workers
from autograder.sandbox.pool import WorkerPool
from harness_tests.grading.test_plugin import GRADED_FILE, GRADING_YAML, REPO

pytest_plugins = ["pytester"]

# test_plugin's graded file (pass, GradingFailure, crash, plain assert, skip mark), and
# what only fixtures and pytest's own outcomes can do.
GRADED = GRADED_FILE + '''
@pytest.fixture
def broken():
    raise RuntimeError("fixture set-up broke")

@pytest.fixture
def breaks_on_teardown():
    yield 1
    raise RuntimeError("fixture teardown broke")

@pytest.mark.graded("1.3.1")
def test_uses_broken(broken):
    pass

@pytest.mark.graded("1.3.2")
def test_teardown_breaks(breaks_on_teardown):
    pass

@pytest.mark.graded("1.3.3")
def test_after_the_broken_teardown():
    pass

@pytest.mark.graded("1.4.1")
def test_skips_itself():
    pytest.skip("skipped from inside")

@pytest.mark.graded("1.4.2")
def test_fails_with_pytest_fail():
    pytest.fail("pytest.fail inside")
'''


@pytest.fixture(scope="module")
def pool() -> Iterator[WorkerPool]:
    zygote, _ = start_workers(load_config(GRADING_YAML).sandbox)
    yield zygote
    zygote.close()


def _graded(pytester: pytest.Pytester, source: str, handle: GradingHandle | None) -> tuple[pytest.RunResult, dict[str, Outcome]]:
    """Run ``source`` as a graded file: in a harness session with ``handle``, else plain."""
    pytester.syspathinsert(REPO)
    pytester.makepyfile(test_graded=source)
    results = pytester.path / "results.json"
    args = ["-p", "autograder.grading.plugin", "-p", "no:cacheprovider", "--grading-config", str(GRADING_YAML), "--results", str(results)]
    run = pytester.runpytest_inprocess(*args, plugins=[handle] if handle is not None else [], no_reraise_ctrlc=True)
    if handle is not None:
        return run, dict(handle.outcomes)
    data = json.loads(results.read_text(encoding="utf-8"))
    outcomes = {t["number"]: Outcome(t["number"], t["name"], t["tags"][0], t["score"], t["max_score"], t["status"], t["output"], t["visibility"], tuple(t["tags"]))
                for t in data["tests"] if t["output"] != "This test did not run (grader error); please tell the course staff."}
    return run, outcomes


def _view(outcomes: dict[str, Outcome]) -> dict[str, tuple[str, float, str]]:
    return {n: (o.status, o.score, o.output.split("\n")[0]) for n, o in outcomes.items()}


def test_outcomes_match_pytests_own_protocol(pytester: pytest.Pytester, pool: WorkerPool) -> None:
    _, plain = _graded(pytester, GRADED, None)
    handle = GradingHandle(pool)
    run, lean = _graded(pytester, GRADED, handle)
    assert _view(lean) == _view(plain)
    view = _view(lean)
    assert view["1.1.1"][0] == "passed" and view["1.1.1"][2] == "Passed."
    assert view["1.1.2"] == ("failed", 0.0, "log_likelihood_bernoulli: shape: expected (6,), got (6, 1).")
    assert view["1.1.3"][2] == "internal grader error (KeyError): 'surprise'"
    assert view["1.2.1"][2].startswith("internal grader error (AssertionError): a plain assertion")
    assert view["1.3.1"][2] == "internal grader error (RuntimeError): fixture set-up broke"
    # A failed teardown keeps the test's outcome, and the next test still runs.
    assert view["1.3.2"][0] == "passed" and view["1.3.3"][0] == "passed"
    assert view["1.4.2"][2] == "internal grader error (Failed): pytest.fail inside"
    # Skipped, by its mark (pytest's own protocol) or from inside: no outcome.
    assert "1.2.2" not in lean and "1.4.1" not in lean
    assert handle.skipped == {"1.2.2", "1.4.1"}


def test_ctrl_c_in_a_graded_test_stops_the_session(pytester: pytest.Pytester, pool: WorkerPool) -> None:
    source = '''
import pytest

@pytest.mark.graded("1.1.1")
def test_interrupted():
    raise KeyboardInterrupt

@pytest.mark.graded("1.1.2")
def test_never_reached():
    pass
'''
    handle = GradingHandle(pool)
    run, outcomes = _graded(pytester, source, handle)
    assert run.ret == pytest.ExitCode.INTERRUPTED
    assert outcomes == {}
