"""What a regrade leaves for the TA: ``grades.csv`` (one row per submitter, so a group
submission gives each member their own row; when it was submitted and whether that was
late; one column per part, the total, the score Gradescope holds and whether it changed,
what went wrong), ``tests.csv`` (one row per submission, one column per test), a per-part
score histogram and the printed summary ending with the submissions that need a look.
Every CSV cell is spreadsheet-safe (``autograder.regrade.csvcell``)."""
from __future__ import annotations

import collections
import csv
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from autograder.config import GradingConfig
from autograder.regrade.csvcell import safe_row
from autograder.regrade.export import ExportEntry, Student
from autograder.grading.report import first_line
from autograder.regrade.triage import describe

SCORE_EPSILON = 1e-6
STAFF_REQUIREMENTS = "requirements-staff.txt"  # the staff's extras (matplotlib), beside requirements.txt


@dataclass(frozen=True)
class Row:
    """One submission in the tables; ``results`` is None when it has no current grade."""

    entry: ExportEntry
    results: dict | None
    note: str = ""  # why there is no current grade

    @property
    def errors(self) -> str:
        if self.results is None:
            return self.note
        return describe(self.results)


def part_scores(config: GradingConfig, results: dict) -> dict[str, float]:
    """Points per part, each test charged to the part grading.yaml puts it in (a part's
    number need not have two levels: an assignment's parts may be "1", "2")."""
    parts = {test.number: test.part for test in config.tests()}
    scores = {part.number: 0.0 for part in config.parts}
    for test in results.get("tests", []):
        part = parts.get(str(test.get("number", "")))
        if part is not None:
            scores[part] += float(test.get("score", 0.0))
    return scores


def changed(entry: ExportEntry, total: float) -> str:
    """Against the score Gradescope holds: ``+2`` / ``-4``, empty when equal or unknown."""
    if entry.export_score is None or abs(entry.export_score - total) < SCORE_EPSILON:
        return ""
    return f"{total - entry.export_score:+g}"


def late(entry: ExportEntry, due: datetime | None) -> str:
    """``yes`` / ``no`` against the due date; empty when either time is unknown."""
    if due is None or entry.created_at is None:
        return ""
    return "yes" if entry.created_at > due else "no"


def grades_header(config: GradingConfig) -> list[str]:
    return ["submission_id", "name", "email", "sid", "created_at", "late", *(p.number for p in config.parts), "total", "export_score", "changed", "errors"]


def write_grades(path: Path, config: GradingConfig, rows: list[Row], due: datetime | None = None) -> None:
    """One line per submitter (a submission without listed submitters gets one, unnamed):
    a gradebook joins on the student, and each member of a group gets the group's grade."""
    parts = [p.number for p in config.parts]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(safe_row(grades_header(config)))
        for row in rows:
            entry = row.entry
            export_score = "" if entry.export_score is None else f"{entry.export_score:g}"
            when = [entry.created_at.isoformat(timespec="seconds") if entry.created_at is not None else "", late(entry, due)]
            if row.results is None:
                grade = [*[""] * len(parts), "", export_score, "", row.errors]
            else:
                scores = part_scores(config, row.results)
                total = sum(scores.values())
                grade = [*[f"{scores[p]:g}" for p in parts], f"{total:g}", export_score, changed(entry, total), row.errors]
            for student in entry.students or (Student(),):
                writer.writerow(safe_row([entry.key, student.name, student.email, student.sid, *when, *grade]))


def write_tests(path: Path, config: GradingConfig, rows: list[Row]) -> None:
    numbers = [t.number for t in config.tests()]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(safe_row(["submission_id", *numbers]))
        for row in rows:
            scores = {str(t.get("number")): t.get("score", 0.0) for t in (row.results or {}).get("tests", [])}
            writer.writerow(safe_row([row.entry.key, *[f"{float(scores[n]):g}" if n in scores else "" for n in numbers]]))


def write_histogram(path: Path, config: GradingConfig, rows: list[Row]) -> str:
    """A PNG of each part's score distribution; matplotlib is a staff dependency
    (requirements-staff.txt, not installed on Gradescope), so without it this says which
    file to install and writes nothing."""
    try:
        from matplotlib.figure import Figure  # no pyplot: no global figure state, no GUI backend
    except ImportError:
        return f"histogram skipped: matplotlib is not installed (python3 -m pip install -r {STAFF_REQUIREMENTS})"
    graded = [r.results for r in rows if r.results is not None]
    columns = 3
    lines = (len(config.parts) + columns - 1) // columns
    figure = Figure(figsize=(4 * columns, 2.6 * lines))
    axes = figure.subplots(lines, columns, squeeze=False)
    for ax, part in zip(axes.flat, config.parts):
        counts = collections.Counter(part_scores(config, r)[part.number] for r in graded)
        points = sorted(set(counts) | {0.0, part.points})
        ax.bar([f"{p:g}" for p in points], [counts.get(p, 0) for p in points], color="#4878a8")
        ax.set_title(f"{part.number} {', '.join(part.functions)}"[:40], fontsize=9)
        ax.set_xlabel("score")
        ax.set_ylabel("submissions")
    for ax in list(axes.flat)[len(config.parts):]:
        ax.set_visible(False)
    figure.suptitle(f"Per-part scores of {len(graded)} submission(s)")
    # Fixed margins: a computed layout draws the whole figure once more (~0.3 s).
    figure.subplots_adjust(left=0.06, right=0.98, bottom=0.08, top=0.9, hspace=0.65, wspace=0.25)
    figure.savefig(path, dpi=80)
    return f"wrote {path}"


def summary(config: GradingConfig, rows: list[Row]) -> str:
    graded = [r.results for r in rows if r.results is not None]
    lines = [f"{len(rows)} submission(s), {len(graded)} graded", f"{'part':6}{'mean':>8}  distribution (score: count)   most common failure"]
    for part in config.parts:
        scores = [part_scores(config, r)[part.number] for r in graded]
        counts = collections.Counter(scores)
        failures: collections.Counter[str] = collections.Counter()
        for r in graded:
            failures.update({
                first_line(t["output"]).split(": ", 1)[-1][:90]
                for t in r.get("tests", [])
                if str(t.get("number", "")).startswith(part.number + ".") and t.get("status") != "passed"
            })
        common = failures.most_common(1)[0] if failures else ("", 0)
        dist = " ".join(f"{s:g}:{c}" for s, c in sorted(counts.items(), reverse=True))
        mean = sum(scores) / len(scores) if scores else 0.0
        lines.append(f"{part.number:6}{mean:8.2f}  {dist:28} {f'({common[1]}x) {common[0]}' if common[1] else ''}")
    totals = [sum(part_scores(config, r).values()) for r in graded]
    if totals:
        lines.append(f"total mean {sum(totals) / len(totals):.2f}/{config.total_points:g}")
    moved = [r for r in rows if r.results is not None and changed(r.entry, sum(part_scores(config, r.results).values()))]
    if moved:
        lines.append(f"{len(moved)} score(s) differ from the export's")
    flagged = [(r.entry.key, r.errors) for r in rows if r.errors]
    lines.append(f"problem submissions ({len(flagged)}):" if flagged else "problem submissions: none")
    lines.extend(f"  {key}: {errors}" for key, errors in flagged)
    return "\n".join(lines)
