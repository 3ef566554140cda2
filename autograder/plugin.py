"""The pytest plugin that turns the graded suites into a Gradescope score.

It reads points, visibility, tolerances and timeouts from grading.yaml, hands each
test a ``grader`` bound to its rubric entry, and records one TestOutcome per test.
The submission is never imported here: the ``grader`` reaches it only through the
sandboxed worker."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import pytest

from autograder.client import SubmissionRunner
from autograder.config import GradingConfig, load_config
from autograder.fixture_store import FixtureStore
from autograder.judge import Grader, GradingFailure
from autograder.paths import KitLayout
from autograder.records import TestOutcome
from autograder.results import build_results, complete_outcomes, write_results
from autograder.sandbox import SandboxPolicy, Zygote
from autograder.submission import StagedSubmission, stage

SESSION_KEY = pytest.StashKey["GradingSession"]()


@dataclass(eq=False)
class GradingHandle:
    """Registered by the CLI: hands over a zygote forked before pytest started (so no
    expected value was ever in its memory) and receives the outcomes."""

    zygote: Zygote
    outcomes: dict[str, TestOutcome] = field(default_factory=dict)
    skipped: set[str] = field(default_factory=set)


@dataclass
class GradingSession:
    config: GradingConfig
    layout: KitLayout
    submission_dir: Path
    zygote: Zygote | None = None
    owns_zygote: bool = False
    staged: StagedSubmission | None = None
    _runner: SubmissionRunner | None = None
    _store: FixtureStore | None = None
    outcomes: dict[str, TestOutcome] = field(default_factory=dict)
    skipped: set[str] = field(default_factory=set)
    started: float = field(default_factory=time.monotonic)

    def policy(self) -> SandboxPolicy:
        s = self.config.sandbox
        return SandboxPolicy.for_user(s.user, s.memory_mb, s.cpu_seconds, s.max_processes, s.max_file_mb, s.output_limit_kb)

    @property
    def runner(self) -> SubmissionRunner:
        if self._runner is None:
            if self.zygote is None:
                self.zygote = Zygote.start(self.policy())
                self.owns_zygote = True
            support = {name: self.layout.template_dir / f"{name}.py" for name in self.config.support_modules}
            self.staged = stage(self.submission_dir, self.config.modules, support, self.zygote.policy.uid)
            self._runner = SubmissionRunner(self.zygote, self.staged)
        return self._runner

    @property
    def store(self) -> FixtureStore:
        if self._store is None:
            self._store = FixtureStore(self.layout.fixtures_dir)
        return self._store

    def close(self) -> None:
        if self._runner is not None:
            self._runner.close()
        if self.zygote is not None and self.owns_zygote:
            self.zygote.close()
        if self.staged is not None:
            self.staged.cleanup()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hw3", "HW3 autograder")
    group.addoption("--submission", default=None, help="folder with q1_solution.py, q2_solution.py, q3_solution.py")
    group.addoption("--results", default=None, help="write a Gradescope results.json here")
    group.addoption("--grading-config", default=None, help="grading.yaml to use (default: the kit's own)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "graded(number): the rubric entry (grading.yaml) this test scores")
    layout = KitLayout.here()
    config_path = Path(config.getoption("--grading-config") or layout.config_file)
    grading = load_config(config_path)
    option = config.getoption("--submission") or os.environ.get("HW3_SUBMISSION")
    submission = Path(option).resolve() if option else layout.default_submission()
    session = GradingSession(grading, layout, submission)
    for plugin in config.pluginmanager.get_plugins():
        if isinstance(plugin, GradingHandle):
            session.zygote = plugin.zygote
            session.outcomes = plugin.outcomes
            session.skipped = plugin.skipped
    config.stash[SESSION_KEY] = session


def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(SESSION_KEY, None)
    if session is not None:
        session.close()


def _number(item: pytest.Item) -> str | None:
    marker = item.get_closest_marker("graded")
    return str(marker.args[0]) if marker is not None else None


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    grading = config.stash[SESSION_KEY].config
    known = {t.number for t in grading.tests()}
    seen: dict[str, str] = {}
    for item in items:
        number = _number(item)
        if number is None:
            continue
        if number not in known:
            raise pytest.UsageError(f"{item.nodeid}: graded({number!r}) has no entry in {grading.source}")
        if number in seen:
            raise pytest.UsageError(f"{item.nodeid}: graded({number!r}) is also used by {seen[number]}")
        seen[number] = item.nodeid


@pytest.fixture
def grader(request: pytest.FixtureRequest) -> Iterator[Grader]:
    """The test's rubric entry, fixtures and sandboxed runner."""
    session: GradingSession = request.config.stash[SESSION_KEY]
    number = _number(request.node)
    if number is None:
        raise pytest.UsageError(f"{request.node.nodeid} uses `grader` without @pytest.mark.graded(...)")
    spec = session.config.test(number)
    runner = session.runner
    yield Grader(spec, session.config.part(spec.part), session.store, runner)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    number = _number(item)
    if number is None or report.when == "teardown" and report.passed:
        return
    if report.when == "call" or (report.when == "setup" and not report.passed):
        session: GradingSession = item.config.stash[SESSION_KEY]
        spec = session.config.test(number)
        excinfo = call.excinfo
        if report.skipped:
            session.skipped.add(number)
            return
        if report.passed:
            score, status, message = spec.points, "passed", "Passed."
        elif excinfo is not None and excinfo.errisinstance(GradingFailure):
            score, status, message = 0.0, "failed", str(excinfo.value)
        else:
            kind = excinfo.typename if excinfo is not None else "error"
            detail = str(excinfo.value) if excinfo is not None else str(report.longrepr)
            score, status, message = 0.0, "failed", f"internal grader error ({kind}): {detail[:1000]}\nPlease tell the course staff."
        session.outcomes[number] = TestOutcome(number, spec.name, spec.part, score, spec.points, status, message, spec.visibility, (spec.part,))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    grading: GradingSession = session.config.stash[SESSION_KEY]
    path = session.config.getoption("--results")
    if path:
        outcomes = complete_outcomes(
            grading.config, grading.outcomes, "This test did not run (grader error); please tell the course staff.", exclude=grading.skipped
        )
        write_results(Path(path), build_results(outcomes, time.monotonic() - grading.started))
