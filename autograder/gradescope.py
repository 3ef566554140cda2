"""What run_autograder runs: lock the folders down, grade, write results.json once."""
from __future__ import annotations

import os
import sys
import time
import traceback

from autograder.paths import GradescopeLayout, KitLayout


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


def main() -> int:
    started = time.monotonic()
    gradescope = GradescopeLayout.from_env()
    kit = KitLayout(gradescope.source)
    try:
        lock_down(gradescope)
        from autograder.grading import grade_folder

        summary = grade_folder(kit, gradescope.submission, gradescope.results_file, require_sandbox=True)
        print(summary.table)
    except Exception as exc:  # last resort: the grader's own failure still yields a results.json
        from autograder.results import harness_failure_results, write_results

        traceback.print_exc()
        write_results(gradescope.results_file, harness_failure_results(None, f"{type(exc).__name__}: {exc}", time.monotonic() - started))
    sys.stdout.flush()
    return 0
