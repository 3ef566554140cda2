"""One grading of one submission folder, in this process: fork the zygote first,
then run the graded suites through pytest, then write results.json."""
from __future__ import annotations

import contextlib
import gc
import importlib.util
import io
import os
import time
from dataclasses import dataclass
from unittest import mock
from pathlib import Path
from typing import Any, Callable

import pytest

from autograder.grading import preflight
from autograder.config import GradingConfig, load_config
from autograder.paths import GradescopeLayout, KitLayout
from autograder.grading.plugin import SINGLE, GradingHandle, SubmissionDone
from autograder.records import TestOutcome
from autograder.grading.report import part_table
from autograder.grading.results import build_results, complete_outcomes, harness_failure_results, write_results
from autograder.sandbox.gradelog import log
from autograder.sandbox.mode import start_workers
from autograder.sandbox.pool import WorkerPool


@dataclass(frozen=True)
class GradeSummary:
    outcomes: list[TestOutcome]
    results: dict[str, Any]
    table: str
    mode: str = ""  # the local-mode line, empty in the full sandbox


def _pytest_args(layout: KitLayout, config: GradingConfig) -> list[str]:
    """The trusted pytest run. The submission's path is NOT on this command line: pytest
    loads conftest.py files from the folders of its arguments (an option's value counts
    when the option is not known yet), which would run a submitted conftest.py as root.
    No conftest is loaded at all (--noconftest); the plugin is named explicitly."""
    return [
        str(layout.tests_dir),
        "-c", str(layout.pytest_ini),
        "--rootdir", str(layout.root),
        "--confcutdir", str(layout.root),
        "--noconftest",
        "-p", "autograder.grading.plugin",
        "--grading-config", str(config.source),
        "-p", "no:cacheprovider",
        # These two call gc.collect() several times per session: ~0.1 s each with torch loaded.
        "-p", "no:unraisableexception",
        "-p", "no:threadexception",
        "-p", "no:hypothesispytest",
        # Per-test overhead we do not need in a grading run: the graded tests neither print
        # nor log nor warn, and the worker's output is captured by the sandbox.
        "-p", "no:logging",
        "-p", "no:warnings",
        "-p", "no:faulthandler",
        "-p", "no:doctest",
        "--capture=no",
        "-q", "--tb=line", "-o", "console_output_style=classic",
        # Third-party plugins are not auto-loaded (see run_pytest): only those named here.
        *(["-p", "pytest_timeout"] if importlib.util.find_spec("pytest_timeout") is not None else []),
    ]


def run_pytest(layout: KitLayout, config: GradingConfig, handle: GradingHandle) -> tuple[int, str]:
    """One trusted pytest session for ``handle``'s submissions; its exit code and output."""
    buffer = io.StringIO()
    # torch, numpy and pytest are loaded for good: moved out of the collector's reach, the
    # full collections during the session no longer walk their ~10^6 objects (~1 s of CPU).
    gc.freeze()
    # Whatever pytest plugins the machine has installed (a TA's pytest-randomly reorders
    # and reseeds, pytest-xdist forks, a benchmark plugin shells out to git) stay out of
    # a grading run.
    with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer), mock.patch.dict(os.environ, {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}):
        code = pytest.main(_pytest_args(layout, config), plugins=[handle])
    return int(code), buffer.getvalue()


def run_suites(layout: KitLayout, config: GradingConfig, submission: Path, zygote: WorkerPool, started: float | None = None) -> tuple[GradingHandle, str, int]:
    """``started``: when the grading began (its time budget counts from there)."""
    handle = GradingHandle(zygote, submissions={SINGLE: submission}, started=started if started is not None else time.monotonic())
    code, output = run_pytest(layout, config, handle)
    return handle, output, code


def run_suites_many(
    layout: KitLayout, config: GradingConfig, submissions: dict[str, Path], zygote: WorkerPool, on_done: Callable[[SubmissionDone], None]
) -> int:
    """One pytest session over many submissions (a bulk regrade's slot)."""
    code, _ = run_pytest(layout, config, GradingHandle(zygote, submissions=submissions, on_done=on_done))
    return code


def grade_folder(
    layout: KitLayout, submission: Path, results_path: Path | None, user: str | None = None, require_sandbox: bool = False
) -> GradeSummary:
    """Grade ``submission``; a results.json is written whatever happens once grading
    started. A kit that fails its preflight (missing, corrupt or stale fixtures) raises
    PreflightError first and writes nothing. The full sandbox is mandatory with
    ``require_sandbox`` and in Gradescope's layout; anywhere else a machine that cannot
    run it grades in local mode (``sandbox/mode.py``)."""
    started = time.monotonic()
    config: GradingConfig | None = None
    zygote: WorkerPool | None = None
    mode = ""
    try:
        config = load_config(layout.config_file)
        preflight.require(config, layout)
        required = require_sandbox or layout.root.resolve() == GradescopeLayout.from_env().source.resolve()
        zygote, chosen = start_workers(config.sandbox, user, required)
        mode = chosen.line
        handle, output, code = run_suites(layout, config, submission, zygote, started)
        if code == pytest.ExitCode.INTERRUPTED:
            raise KeyboardInterrupt  # Ctrl-C (pytest caught it): the caller says so in one line
        if code not in (0, 1) and not handle.outcomes:
            raise RuntimeError(f"pytest exited with code {code}:\n{output[-3000:]}")
        outcomes = complete_outcomes(config, handle.outcomes, f"This test did not run (grader error); please tell the course staff.\n{output[-1500:]}", handle.skipped)
        results = build_results(outcomes, time.monotonic() - started)
        table = part_table(config, outcomes)
    except preflight.PreflightError:
        raise  # nothing was graded, and nothing is written: the caller says why in one line
    except Exception as exc:  # the grader's own failure must still produce a results.json
        results = harness_failure_results(config, f"{type(exc).__name__}: {exc}", time.monotonic() - started)
        outcomes = []
        table = f"grader error: {type(exc).__name__}: {exc}"
    finally:
        if zygote is not None:
            try:
                zygote.close()
            except Exception as exc:  # the results are complete: a failing clean-up must not lose them
                log(f"closing the sandbox failed: {type(exc).__name__}: {exc}")
    if results_path is not None:
        write_results(results_path, results)
    return GradeSummary(outcomes, results, table, mode)
