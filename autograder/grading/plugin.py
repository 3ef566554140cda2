"""The pytest plugin that turns the graded suites into Gradescope scores.

It reads points, visibility, tolerances and timeouts from grading.yaml, hands each
test a ``grader`` bound to its rubric entry, and records one TestOutcome per test.
The submission is never imported here: the ``grader`` reaches it only through the
sandboxed worker. One session may grade many submissions: either a fixed set (the
graded tests are parametrised by submission and run submission after submission), or
a queue (a bulk regrade's slot): the tests are collected once and run again for each
submission ``next_submission`` hands out, until it says there is no more work."""
from __future__ import annotations

import functools
import itertools
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import pytest

from autograder.grading.budget import Budget
from autograder.grading.client import PayloadCache, SubmissionRunner, substitute_source
from autograder.config import GradingConfig, PartSpec, TestSpec, load_config
from autograder.grading.fixture_store import FixtureStore
from autograder.grading.fresh_cases import CaseSource
from autograder.grading.judge import Grader, GradingFailure, without_hints
from autograder.paths import KitLayout
from autograder.records import TestOutcome
from autograder.grading.results import build_results, complete_outcomes, write_results
from autograder.grading.submission import StagedSubmission, stage
from autograder.sandbox.mode import choose_mode, start_workers
from autograder.sandbox.pool import WorkerPool

SESSION_KEY = pytest.StashKey["GradingSession"]()
FALLBACK_KEY = pytest.StashKey[str]()  # this run passed with these correct callees
FIRST_FAILURE_KEY = pytest.StashKey[GradingFailure]()  # its own callee failed; the fallback runs later
# What one submission leaves on a pytest item; cleared before the item grades the next one.
PER_SUBMISSION_KEYS = (FALLBACK_KEY, FIRST_FAILURE_KEY)
SINGLE = ""
QUEUE = "queue"  # the parameter of queue-fed sessions: whichever submission is current


@dataclass(frozen=True)
class SubmissionDone:
    """Everything known about one submission once its last test ran."""

    key: str
    outcomes: dict[str, TestOutcome]
    skipped: set[str]
    seconds: float


@dataclass(eq=False)
class GradingHandle:
    """Registered by the CLI: hands over a zygote forked before pytest started (so no
    expected value was ever in its memory) and receives the outcomes. With
    ``submissions``, one session grades them all, calling ``on_done`` after each."""

    zygote: WorkerPool
    outcomes: dict[str, TestOutcome] = field(default_factory=dict)
    skipped: set[str] = field(default_factory=set)
    submissions: dict[str, Path] = field(default_factory=dict)
    on_done: Callable[[SubmissionDone], None] | None = None
    # Queue mode: the next (key, folder) to grade, or None when there is no more work.
    next_submission: Callable[[], tuple[str, Path] | None] | None = None
    # Calibration: (submission, test number, what was compared, tolerance ratio).
    recorder: Callable[[str, str, str, float], None] | None = None
    # When a single grading began (before the zygote started): its time budget counts from here.
    started: float = field(default_factory=time.monotonic)


@dataclass
class _Active:
    key: str
    staged: StagedSubmission
    runner: SubmissionRunner
    outcomes: dict[str, TestOutcome] = field(default_factory=dict)
    skipped: set[str] = field(default_factory=set)
    started: float = field(default_factory=time.monotonic)


@dataclass
class GradingSession:
    config: GradingConfig
    layout: KitLayout
    submissions: dict[str, Path]
    handle: GradingHandle | None = None
    zygote: WorkerPool | None = None
    owns_zygote: bool = False
    active: _Active | None = None
    _store: FixtureStore | None = None
    _cases: CaseSource | None = None
    payloads: PayloadCache = field(default_factory=PayloadCache)
    outcomes: dict[str, TestOutcome] = field(default_factory=dict)
    skipped: set[str] = field(default_factory=set)
    started: float = field(default_factory=time.monotonic)
    queued: str | None = None  # queue mode: the submission being graded
    # In a harness session (this plugin runs the loop), fallback runs wait for the end of
    # their group: these tests run again then.
    defer_fallbacks: bool = False
    deferred: list[pytest.Item] = field(default_factory=list)

    def resolve(self, key: str) -> str:
        """A test's submission key: in queue mode, whichever submission is current."""
        return self.queued if key == QUEUE and self.queued is not None else key

    def runner_for(self, key: str) -> SubmissionRunner:
        """The runner of ``key``; moving on to another submission finishes the previous one."""
        if self.active is not None and self.active.key == key:
            return self.active.runner
        self.finish_active()
        if self.zygote is None:
            self.zygote, _ = start_workers(self.config.sandbox)
            self.owns_zygote = True
        support = {name: self.layout.template_dir / f"{name}.py" for name in self.config.support_modules}
        staged = stage(self.submissions[key], self.config.modules, support, self.zygote.policy.uid, self.zygote.policy.gid)
        self.active = _Active(key, staged, SubmissionRunner(self.zygote, staged, self.payloads))
        self.zygote.set_deadline(self.budget_for(key).deadline)
        return self.active.runner

    def budget_for(self, key: str) -> Budget:
        """The time budget of submission ``key``: a single grading's counts from its start,
        each submission of a bulk regrade has its own, counted from its first test."""
        if key == SINGLE:
            started = self.handle.started if self.handle is not None else self.started
        else:
            started = self.active.started if self.active is not None and self.active.key == key else time.monotonic()
        return Budget(self.config.sandbox.budget_seconds, started)

    def record(self, key: str, outcome: TestOutcome | None, number: str) -> None:
        """File an outcome (None: skipped) with its submission: a single grading keeps
        them on the session, a bulk one on the submission being graded."""
        if key == SINGLE:
            outcomes, skipped = self.outcomes, self.skipped
        elif self.active is not None and self.active.key == key:
            outcomes, skipped = self.active.outcomes, self.active.skipped
        else:
            return
        if outcome is None:
            skipped.add(number)
        else:
            outcomes[number] = outcome

    def outcomes_of(self, key: str) -> dict[str, TestOutcome]:
        """What submission ``key`` has been graded so far."""
        if key == SINGLE:
            return self.outcomes
        return self.active.outcomes if self.active is not None and self.active.key == key else {}

    def finish_active(self) -> None:
        """Kill everything the submission started, then report it as done."""
        active, self.active = self.active, None
        if active is None:
            return
        try:
            active.runner.close()
        finally:
            active.staged.cleanup()
        if self.handle is not None and self.handle.on_done is not None and active.key != SINGLE:
            self.handle.on_done(SubmissionDone(active.key, active.outcomes, active.skipped, time.monotonic() - active.started))

    @property
    def store(self) -> FixtureStore:
        if self._store is None:
            self._store = FixtureStore(self.layout.fixtures_dir)
        return self._store

    @property
    def cases(self) -> CaseSource:
        if self._cases is None:
            self._cases = CaseSource(self.store, self.config, self.layout.reference_dir)
        return self._cases

    def close(self) -> None:
        self.finish_active()
        if self.zygote is not None and self.owns_zygote:
            self.zygote.close()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("autograder", "autograder")
    group.addoption("--submission", default=None, help="folder with the solution files (grading.yaml: modules)")
    group.addoption("--results", default=None, help="write a Gradescope results.json here")
    group.addoption("--grading-config", default=None, help="grading.yaml to use (default: the kit's own)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "graded(number): the rubric entry (grading.yaml) this test scores")
    config.addinivalue_line(
        "markers", "callee_fallback(attr=substitute): if the test fails with the student's own callee, grade it again with a correct one"
    )
    layout = KitLayout.here()
    grading = load_config(Path(config.getoption("--grading-config") or layout.config_file))
    option = config.getoption("--submission") or os.environ.get("GRADER_SUBMISSION")
    submission = Path(option).resolve() if option else layout.default_submission()
    session = GradingSession(grading, layout, {SINGLE: submission})
    for plugin in config.pluginmanager.get_plugins():
        if isinstance(plugin, GradingHandle):
            session.handle = plugin
            session.zygote = plugin.zygote
            session.outcomes = plugin.outcomes
            session.skipped = plugin.skipped
            if plugin.submissions:
                session.submissions = dict(plugin.submissions)
    config.stash[SESSION_KEY] = session
    config.pluginmanager.register(DeferredFallbacks(), "autograder-deferred-fallbacks")


def pytest_report_header(config: pytest.Config) -> str | None:
    """Plain ``pytest`` in the student kit: say when the local mode will be used."""
    session = config.stash.get(SESSION_KEY, None)
    if session is None or session.handle is not None:
        return None
    return choose_mode(session.config.sandbox).line or None


def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(SESSION_KEY, None)
    if session is not None:
        session.close()


def _number(item: pytest.Item) -> str | None:
    marker = item.get_closest_marker("graded")
    return str(marker.args[0]) if marker is not None else None


def _submission_key(item: pytest.Item) -> str:
    callspec = getattr(item, "callspec", None)
    raw = str(callspec.params.get("submission_key", SINGLE)) if callspec is not None else SINGLE
    return item.config.stash[SESSION_KEY].resolve(raw)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "submission_key" not in metafunc.fixturenames:
        return
    session: GradingSession = metafunc.config.stash[SESSION_KEY]
    if session.handle is not None and session.handle.next_submission is not None:
        metafunc.parametrize("submission_key", [QUEUE], ids=[QUEUE])
        return
    keys = [k for k in session.submissions if k != SINGLE]
    if keys:
        metafunc.parametrize("submission_key", keys, ids=keys)


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    grading = config.stash[SESSION_KEY]
    tests = {t.number: t for t in grading.config.tests()}
    seen: dict[tuple[str, str], str] = {}
    for item in items:
        number = _number(item)
        if number is None:
            continue
        if number not in tests:
            raise pytest.UsageError(f"{item.nodeid}: graded({number!r}) has no entry in {grading.config.source}")
        key = (_submission_key(item), number)
        if key in seen:
            raise pytest.UsageError(f"{item.nodeid}: graded({number!r}) is also used by {seen[key]}")
        seen[key] = item.nodeid
    order = {k: i for i, k in enumerate(grading.submissions)}
    # Per submission, its visible graded tests first, then the non-visible ones, then any
    # ungraded test: workers of different kinds never live side by side (see
    # client.SubmissionRunner), and this order needs one switch instead of one per part.
    # Results list the tests in the rubric's order whatever the order they ran in.
    items.sort(key=lambda it: (order.get(_submission_key(it), 0), _kind(it, grading.config)))


def _kind(item: pytest.Item, config: GradingConfig) -> int:
    """0 visible, 1 not visible (hidden or after the due date), 2 ungraded."""
    number = _number(item)
    return 2 if number is None else int(config.test(number).hidden)


def _run_groups(session: pytest.Session, items: list[pytest.Item]) -> None:
    """Run ``items`` submission by submission; after a submission's tests (visible, then
    not visible), the fallback runs its tests deferred (in the order they failed, so the
    visible ones first). Both halves then need one worker each, promoted from visible to
    non-visible. Fixtures are torn down between the halves (no test is told a next item
    it may not be followed by)."""
    grading: GradingSession = session.config.stash[SESSION_KEY]
    grading.defer_fallbacks = True

    for _, group in itertools.groupby(items, key=_submission_key):
        batch = list(group)
        try:
            _run_in_order(session, batch)
            deferred, grading.deferred = grading.deferred, []  # a second run never defers again
            _run_in_order(session, deferred)
        finally:
            grading.deferred = []
            _forget_submission(batch)


def _forget_submission(items: list[pytest.Item]) -> None:
    """Clear what a submission left on the (reused) pytest items: in a queue-fed session
    the same items grade the next submission, which must never meet this one's first
    failure (a deferred run that broke before its body ran leaves it) or fallback mark."""
    for item in items:
        for key in PER_SUBMISSION_KEYS:
            if key in item.stash:
                del item.stash[key]


def _run_in_order(session: pytest.Session, batch: list[pytest.Item]) -> None:
    for index, item in enumerate(batch):
        nextitem = batch[index + 1] if index + 1 < len(batch) else None
        if _runs_lean(item):
            _run_lean(item, nextitem)
        else:
            item.config.hook.pytest_runtest_protocol(item=item, nextitem=nextitem)
        if session.shouldfail:
            raise session.Failed(session.shouldfail)
        if session.shouldstop:
            raise session.Interrupted(session.shouldstop)


_MARKS_OF_THE_FULL_PROTOCOL = ("skip", "skipif", "xfail", "timeout", "usefixtures", "filterwarnings")


def _runs_lean(item: pytest.Item) -> bool:
    """A graded test function with no mark that pytest's own protocol would act on, on a
    pytest whose set-up state this can drive (9.0 is pinned for the autograder)."""
    return (
        isinstance(item, pytest.Function)
        and _number(item) is not None
        and hasattr(item.session, "_setupstate")
        and hasattr(item, "_initrequest")
        and not any(item.get_closest_marker(name) for name in _MARKS_OF_THE_FULL_PROTOCOL)
    )


def _run_lean(item: pytest.Function, nextitem: pytest.Item | None) -> None:
    """Set up, call and tear down one graded test, and record its outcome, without the
    per-phase hooks, call records and reports of pytest's protocol: in a harness session
    nothing reads them (the outcome is the record), and they cost ~3 ms per test, more
    than half of a regrade slot's own CPU. Fixtures, ``pytest_pyfunc_call`` (so the
    fallback runs) and the outcome are what pytest's protocol would give."""
    if not item._request:  # a deferred test runs a second time
        item._initrequest()
    setup_state = item.session._setupstate
    error: BaseException | None = None
    try:
        setup_state.setup(item)
        item.runtest()
    except (KeyboardInterrupt, pytest.exit.Exception):
        raise
    except BaseException as exc:  # the test's outcome (pytest's skip and fail are BaseExceptions)
        error = exc
    finally:
        try:
            setup_state.teardown_exact(None if item.session.shouldfail or item.session.shouldstop else nextitem)
        except (KeyboardInterrupt, pytest.exit.Exception):
            raise
        except BaseException as exc:  # as in pytest's protocol, a failed teardown does not change the outcome
            print(f"{item.nodeid}: teardown failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        finally:
            item._request = False
            item.funcargs = None
    if isinstance(error, FallbackDeferred):
        return  # recorded when it runs again
    if isinstance(error, pytest.skip.Exception):
        _record_outcome(item, "skipped", None)
    elif error is None:
        _record_outcome(item, "passed", None)
    else:
        _record_outcome(item, "failed", error)


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> bool | None:
    """A harness session runs its own loop (see ``_run_groups``). Queue mode: the
    collected tests once per submission handed out, finishing each submission
    (everything it started killed, ``on_done`` called) before asking for the next, so a
    free slot takes new work instead of a share fixed up front."""
    grading: GradingSession = session.config.stash[SESSION_KEY]
    if grading.handle is None:
        return None  # plain pytest (the student kit): pytest's own loop; no correct callees there
    if session.testsfailed and not session.config.option.continue_on_collection_errors:
        raise session.Interrupted(f"{session.testsfailed} error(s) during collection")
    if session.config.option.collectonly:
        return True
    feed = grading.handle.next_submission
    if feed is None:
        _run_groups(session, session.items)
        return True
    while True:
        work = feed()
        if work is None:
            return True
        key, folder = work
        grading.submissions[key] = folder
        grading.queued = key
        grading.runner_for(key)  # staged now, so on_done comes even if no test reached it
        _run_groups(session, session.items)
        grading.finish_active()
        grading.queued = None


@pytest.fixture
def submission_key(request: pytest.FixtureRequest) -> str:
    """Which submission this test grades (parametrised in a bulk regrade)."""
    return str(getattr(request, "param", SINGLE))


@pytest.fixture
def grader(request: pytest.FixtureRequest, submission_key: str) -> Iterator[Grader]:
    """The test's rubric entry, fixtures and sandboxed runner."""
    session: GradingSession = request.config.stash[SESSION_KEY]
    number = _number(request.node)
    if number is None:
        raise pytest.UsageError(f"{request.node.nodeid} uses `grader` without @pytest.mark.graded(...)")
    spec = session.config.test(number)
    if spec.hidden and not session.store.private:
        # The student kit runs the visible tests only, whether or not a test needs fixtures.
        pytest.skip("hidden test: runs on Gradescope only")
    key = session.resolve(submission_key)  # parametrised directly: the fixture is bypassed
    runner = session.runner_for(key)
    recorder = session.handle.recorder if session.handle is not None else None
    bound = functools.partial(recorder, key) if recorder is not None else None
    secret = session.store.secret() + runner.staged.digest()
    marker = request.node.get_closest_marker("callee_fallback")
    watch = tuple(sorted(marker.kwargs)) if marker is not None else ()
    yield Grader(spec, session.config.part(spec.part), session.cases, runner, bound, budget=session.budget_for(key), secret=secret, watch=watch)




class FallbackDeferred(Exception):
    """Not an outcome: the test runs again, with correct callees, once the other tests of
    its submission have run with the student's own."""


def _substitutes(item: pytest.Function) -> dict[str, str]:
    marker = item.get_closest_marker("callee_fallback")
    return {attr: name for attr, name in (marker.kwargs.items() if marker else ()) if substitute_source(name) is not None}


def _run_fallback(item: pytest.Function, first: GradingFailure, substitutes: dict[str, str]) -> bool:
    """The test body again with correct callees; it fails with the first failure."""
    arguments = {name: item.funcargs[name] for name in item._fixtureinfo.argnames}
    arguments["grader"] = item.funcargs["grader"].with_fallback(substitutes)
    try:
        item.obj(**arguments)
    except GradingFailure:
        raise first from None
    item.stash[FALLBACK_KEY] = ", ".join(sorted(substitutes))
    return True


class DeferredFallbacks:
    """Registered beside this module (one module cannot hold two ``pytest_pyfunc_call``):
    the deferred second run of a test calls it with correct callees only."""

    @pytest.hookimpl(tryfirst=True)
    def pytest_pyfunc_call(self, pyfuncitem: pytest.Function) -> bool | None:
        first = pyfuncitem.stash.get(FIRST_FAILURE_KEY, None)
        if first is None:
            return None
        del pyfuncitem.stash[FIRST_FAILURE_KEY]
        return _run_fallback(pyfuncitem, first, _substitutes(pyfuncitem))


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Iterator[object]:
    """A caller graded with the student's own callee first; only if that fails, again
    with a correct callee (where the kit has one: on Gradescope, not in the student kit).
    It passes if either passes, so a substitute can only ever add points, and a failure
    shown to the student always comes from the student's own code.

    In a harness session the second run waits until the submission's other tests have
    run (``FallbackDeferred``): a worker holding a correct callee never runs side by side
    with one without, so running it at once would cost two fresh workers per such test."""
    if FALLBACK_KEY in pyfuncitem.stash:  # left by the previous submission of a queue
        del pyfuncitem.stash[FALLBACK_KEY]
    retry = FIRST_FAILURE_KEY in pyfuncitem.stash
    try:
        return (yield)
    except GradingFailure as first:
        substitutes = _substitutes(pyfuncitem)
        if retry or not substitutes or not isinstance(pyfuncitem.funcargs.get("grader"), Grader):
            raise
        session: GradingSession = pyfuncitem.config.stash[SESSION_KEY]
        if session.defer_fallbacks:
            pyfuncitem.stash[FIRST_FAILURE_KEY] = first
            session.deferred.append(pyfuncitem)
            raise FallbackDeferred() from None
        return _run_fallback(pyfuncitem, first, substitutes)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if _number(item) is None or not (report.when == "call" or (report.when == "setup" and not report.passed)):
        return
    if call.excinfo is not None and call.excinfo.errisinstance(FallbackDeferred):
        return  # recorded when it runs again
    if report.skipped:
        _record_outcome(item, "skipped", None)
        return
    error = call.excinfo.value if call.excinfo is not None else None
    message = _record_outcome(item, "passed" if report.passed else "failed", error, str(report.longrepr))
    if isinstance(error, GradingFailure):
        report.longrepr = message  # what the student reads in plain pytest: no harness traceback


def _record_outcome(item: pytest.Item, result: str, error: BaseException | None, detail: str = "") -> str:
    """File a graded test's outcome ("passed", "failed" with ``error``, or with only a
    report's ``detail``, or "skipped") with its submission; the message it was given."""
    number = _number(item)
    assert number is not None
    session: GradingSession = item.config.stash[SESSION_KEY]
    key = _submission_key(item)
    spec = session.config.test(number)
    if result == "skipped":
        session.record(key, None, number)
        return ""
    if result == "passed":
        score, status, message = spec.points, "passed", "Passed."
        callee = item.stash.get(FALLBACK_KEY, None)
        if callee:
            message = (f"Passed with the course's correct {callee} in place of yours: your own {callee} makes this test fail, "
                       "so fix it in its own part; this part keeps its points.")
    elif isinstance(error, GradingFailure):
        score, status, message = 0.0, "failed", _with_callee_note(session, key, spec, error)
    else:
        kind, text = (type(error).__name__, str(error)) if error is not None else ("error", detail)
        score, status, message = 0.0, "failed", f"internal grader error ({kind}): {text[:1000]}\nPlease tell the course staff."
    session.record(key, TestOutcome(number, spec.name, spec.part, score, spec.points, status, message, spec.visibility, (spec.part,)), number)
    return message


def _callee_part(config: GradingConfig, callee: str) -> PartSpec | None:
    """The part that grades ``callee`` (a function, or a class whose method it lists)."""
    for part in config.parts:
        if any(name == callee or name.startswith(callee + ".") for name in part.functions):
            return part
    return None


def _with_callee_note(session: GradingSession, key: str, spec: TestSpec, error: GradingFailure) -> str:
    """A caller's failure, told first that it calls the student's own callee when that
    callee fails its own part: the fix starts there, and a hint about the caller's own code
    (sampling, pairing) would send the student to the wrong place, so it is left out.

    A visible test's note looks at the callee's visible tests only: what a visible message
    says is seen at once, and a note that followed a non-visible result would tell, upload
    after upload, what a submission did on the non-visible inputs."""
    part = spec.part
    graded = {number: o for number, o in session.outcomes_of(key).items() if spec.hidden or o.visibility == "visible"}
    failing = []
    for callee in error.called:
        callee_part = _callee_part(session.config, callee)
        if callee_part is None or callee_part.number == part:
            continue
        if any(o.part == callee_part.number and o.status != "passed" for o in graded.values()):
            failing.append((callee, callee_part.number))
    if not failing:
        return str(error)
    caller = ", ".join(session.config.part(part).functions)
    prefix = f"Part {part} ({caller}): "
    text = without_hints(str(error))
    text = text[len(prefix):] if text.startswith(prefix) else text
    named = " and ".join(f"your {callee}, which fails part {number}" for callee, number in failing)
    return f"{prefix}{caller} calls {named}: fix that first, since this test's result depends on it.\n{text}"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    grading: GradingSession = session.config.stash[SESSION_KEY]
    grading.finish_active()
    path = session.config.getoption("--results")
    if path:
        outcomes = complete_outcomes(
            grading.config, grading.outcomes, "This test did not run (grader error); please tell the course staff.", exclude=grading.skipped
        )
        write_results(Path(path), build_results(outcomes, time.monotonic() - grading.started))
