"""What run_autograder runs: lock the folders down, grade, write results.json once."""
from __future__ import annotations

import os
import sys
import time
import traceback

from autograder.paths import GradescopeLayout, KitLayout
from autograder.grading.preflight import PreflightError


def lock_down(layout: GradescopeLayout) -> None:
    """As root: the harness, fixtures, tests, results and metadata become unreadable to
    the sandbox user (the worker never needs them: it is forked with the code loaded)."""
    if os.geteuid() != 0:
        return
    for folder in (layout.source, layout.results_dir):
        folder.mkdir(parents=True, exist_ok=True)
        os.chown(folder, 0, 0)
        os.chmod(folder, 0o700)
    if layout.metadata_file.exists():
        os.chmod(layout.metadata_file, 0o600)
    if layout.submission.exists():
        os.chmod(layout.submission, 0o700)


def print_safely(text: str) -> None:
    """Print the table for the log; a stream that cannot take it (an ASCII locale, a
    closed pipe) costs the log line, never the results, which are written by then."""
    try:
        print(text)
    except (UnicodeError, OSError, ValueError):
        try:
            sys.stdout.buffer.write(text.encode("ascii", "backslashreplace") + b"\n")
        except (AttributeError, OSError, ValueError):
            pass


def main() -> int:
    started = time.monotonic()
    gradescope = GradescopeLayout.from_env()
    kit = KitLayout(gradescope.source)
    table = ""
    try:
        lock_down(gradescope)
        from autograder.grading.run import grade_folder

        table = grade_folder(kit, gradescope.submission, gradescope.results_file, require_sandbox=True).table
    except PreflightError as exc:  # a broken kit: no grade at all, rather than a 0
        from autograder.grading.results import grader_error_results, write_results

        write_results(gradescope.results_file, grader_error_results(str(exc), time.monotonic() - started))
        table = f"grader error: {exc}"
    except Exception as exc:  # last resort: the grader's own failure still yields a results.json
        from autograder.grading.results import harness_failure_results, write_results

        traceback.print_exc()
        # grade_folder writes the results last, so they were not written: nothing is lost.
        write_results(gradescope.results_file, harness_failure_results(None, f"{type(exc).__name__}: {exc}", time.monotonic() - started))
    print_safely(table)  # after the results are written, outside the fallback
    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        pass
    return 0
