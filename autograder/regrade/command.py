"""``python -m autograder regrade EXPORT --out DIR``: a whole class at once.

EXPORT is a Gradescope "Export Submissions" zip or its unpacked folder (one folder per
submission and a ``submission_metadata.yml``), or simply a folder of submission folders.
Writes ``DIR/results/<submission>.json``, ``DIR/grades.csv``, ``DIR/tests.csv``,
``DIR/histogram.png`` and prints a summary.

Each result carries a fingerprint of everything that decided it (the submission's
files, grading.yaml, tests, fixtures, harness source); a re-run regrades exactly the
submissions whose fingerprint changed or whose result is missing, so an interrupted
regrade resumes where it stopped and a rubric change regrades everyone.

Exit codes: 0 done, 1 some submissions could not be graded (listed), 2 bad input,
130 interrupted."""
from __future__ import annotations

import json
import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from autograder.grading import preflight
from autograder.regrade.batch import FINGERPRINT_KEY, BatchInterrupted, GradeJob, JobResult, grade_many
from autograder.config import GradingConfig, load_config
from autograder.regrade.export import Export, ExportEntry, ExportError, open_export, parse_due
from autograder.regrade.fingerprint import kit_fingerprint, submission_fingerprint
from autograder.paths import KitLayout
from autograder.regrade.report import Row, part_scores, summary, write_grades, write_histogram, write_tests

__all__ = ["regrade_export", "part_scores", "ExportError"]

EXIT_DONE, EXIT_FAILURES, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130
TABLES = ("grades.csv", "tests.csv", "histogram.png")
SUBMISSION_PREFIX = "submission_"  # Gradescope's folder name: submission_<the ID its pages show>


@dataclass(frozen=True)
class Plan:
    """Which submissions to grade, with the fingerprint each result must carry."""

    jobs: list[GradeJob]
    reused: int
    fingerprints: dict[str, str]


def _load(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def current_results(path: Path, fingerprint: str, config: GradingConfig) -> dict | None:
    """The stored results if they were graded from exactly this fingerprint and are complete."""
    results = _load(path)
    if results is None or results.get(FINGERPRINT_KEY) != fingerprint:
        return None
    return results if len(results.get("tests", [])) == len(config.tests()) else None


def plan(layout: KitLayout, config: GradingConfig, export: Export, results_dir: Path, force: bool, only: set[str] | None) -> Plan:
    kit = kit_fingerprint(layout)
    fingerprints = {e.key: submission_fingerprint(kit, e.folder) for e in export.entries}
    jobs, reused = [], 0
    for entry in export.entries:
        path = results_dir / f"{entry.key}.json"
        wanted = entry.key in only if only is not None else True
        if not wanted:
            continue
        if not force and only is None and current_results(path, fingerprints[entry.key], config) is not None:
            reused += 1
            continue
        jobs.append(GradeJob(entry.key, entry.folder, path, fingerprints[entry.key]))
    return Plan(jobs, reused, fingerprints)


def resolve_only(ids: list[str], keys: set[str]) -> tuple[set[str], list[str]]:
    """The folders ``--only`` names, and the IDs that name none. An ID is a folder name or
    the bare submission ID Gradescope shows (``236126116`` for ``submission_236126116``)."""
    chosen, unknown = set(), []
    for given in ids:
        name = given.rstrip("/" + os.sep) or given
        for candidate in (name, SUBMISSION_PREFIX + name):
            if candidate in keys:
                chosen.add(candidate)
                break
        else:
            unknown.append(given)
    return chosen, sorted(unknown)


def _usable_cores() -> int:
    """The cores this process may run on (a container's CPU set, not the host's count)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def _resume_command(export: Path, out: Path, due: str | None) -> str:
    words = ["python3", "-m", "autograder", "regrade", str(export), "--out", str(out), *(["--due", due] if due else [])]
    return " ".join(shlex.quote(p) for p in words)


def _rows(config: GradingConfig, entries: tuple[ExportEntry, ...], results_dir: Path, fingerprints: dict[str, str], failed: dict[str, JobResult]) -> list[Row]:
    rows = []
    for entry in entries:
        if entry.key in failed:
            reason = str(failed[entry.key].results.get("output", "")).strip().splitlines()[-1:]
            rows.append(Row(entry, None, f"could not be graded: {reason[0] if reason else 'grader error'}"[:200]))
            continue
        results = current_results(results_dir / f"{entry.key}.json", fingerprints[entry.key], config)
        rows.append(Row(entry, results, "" if results is not None else "not graded with the current kit and files (run without --only)"))
    return rows


def regrade_export(
    layout: KitLayout, export: Path, out: Path, jobs: int | None = None, force: bool = False, only: list[str] | None = None,
    due: str | None = None,
) -> int:
    """Grade the export into ``out``; the exit code (see the module's docstring).
    ``due`` (``--due``) decides grades.csv's ``late`` column. Bad input raises ExportError
    (or ConfigError) before anything is graded."""
    config = load_config(layout.config_file)
    due_at = parse_due(due) if due else None
    preflight.require(config, layout)  # before anything is read or written: --out stays as it was
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out}: --out exists and is not a folder")
    opened = open_export(export, out)
    chosen: set[str] | None = None
    if only:
        chosen, unknown = resolve_only(only, {e.key for e in opened.entries})
        if unknown:
            raise ExportError(
                f"{export}: no submission folder named {', '.join(unknown)} (--only takes folder names or the IDs Gradescope shows, "
                f"for {SUBMISSION_PREFIX}<ID>)"
            )
    if opened.unlisted:
        shown = ", ".join(opened.unlisted[:20]) + (" ..." if len(opened.unlisted) > 20 else "")
        print(f"warning: {len(opened.unlisted)} submission folder(s) not in submission_metadata.yml, graded with blank names: {shown}", file=sys.stderr)
    out.mkdir(parents=True, exist_ok=True)
    results_dir = out / "results"
    work = plan(layout, config, opened, results_dir, force, chosen)
    print(f"{len(opened.entries)} submission(s): {work.reused} reused (fingerprint unchanged), {len(work.jobs)} to grade", file=sys.stderr)
    failed: dict[str, JobResult] = {}
    if work.jobs:
        for name in TABLES:  # never leave tables that do not match the results
            (out / name).unlink(missing_ok=True)
        from autograder.regrade.progress import Progress

        progress = Progress(total=len(opened.entries) if chosen is None else len(work.jobs), initial=work.reused)
        slots = jobs or config.sandbox.slots_per_core * _usable_cores()

        def done(result: JobResult) -> None:
            progress.finished(result.graded)
            if not result.graded:
                failed[result.job.key] = result

        try:
            grade_many(layout, config, work.jobs, workers=slots, on_done=done, on_tick=progress.tick)
        except BatchInterrupted as stop:
            progress.close()
            print(
                f"interrupted ({stop}): stopped every grading process; kept {len(stop.finished)} result(s) finished in this run, "
                f"{len(stop.unfinished)} submission(s) not graded (nothing recorded for them).\n"
                f"to resume, run the same command again: {_resume_command(export, out, due)}",
                file=sys.stderr,
            )
            return EXIT_INTERRUPTED
        progress.close()
    rows = _rows(config, opened.entries, results_dir, work.fingerprints, failed)
    write_grades(out / "grades.csv", config, rows, due_at)
    write_tests(out / "tests.csv", config, rows)
    note = write_histogram(out / "histogram.png", config, rows)
    print(summary(config, rows))
    print(f"wrote {out / 'grades.csv'}, {out / 'tests.csv'} and {len(rows)} results in {results_dir}; {note}")
    if failed:
        print(f"{len(failed)} submission(s) could not be graded (run again to retry them): {', '.join(sorted(failed))}", file=sys.stderr)
        return EXIT_FAILURES
    return EXIT_DONE
