"""What a regrade leaves for the TA: ``grades.csv`` (one row per submission, one column
per part, the total, the score Gradescope holds and whether it changed, what went
wrong), ``tests.csv`` (one column per test), a per-part score histogram and the
printed summary ending with the submissions that need a look."""
from __future__ import annotations

import collections
import csv
from dataclasses import dataclass
from pathlib import Path

from autograder.config import GradingConfig
from autograder.export import ExportEntry
from autograder.report import first_line
from autograder.triage import describe

SCORE_EPSILON = 1e-6


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
    scores = {part.number: 0.0 for part in config.parts}
    for test in results.get("tests", []):
        part = ".".join(str(test.get("number", "")).split(".")[:2])
        if part in scores:
            scores[part] += float(test.get("score", 0.0))
    return scores


def changed(entry: ExportEntry, total: float) -> str:
    """Against the score Gradescope holds: ``+2`` / ``-4``, empty when equal or unknown."""
    if entry.export_score is None or abs(entry.export_score - total) < SCORE_EPSILON:
        return ""
    return f"{total - entry.export_score:+g}"


def write_grades(path: Path, config: GradingConfig, rows: list[Row]) -> None:
    parts = [p.number for p in config.parts]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["submission_id", "names", "emails", "sids", *parts, "total", "export_score", "changed", "errors"])
        for row in rows:
            students = row.entry.students
            people = ["; ".join(s.name for s in students), "; ".join(s.email for s in students), "; ".join(s.sid for s in students)]
            export_score = "" if row.entry.export_score is None else f"{row.entry.export_score:g}"
            if row.results is None:
                writer.writerow([row.entry.key, *people, *[""] * len(parts), "", export_score, "", row.errors])
                continue
            scores = part_scores(config, row.results)
            total = sum(scores.values())
            writer.writerow([row.entry.key, *people, *[f"{scores[p]:g}" for p in parts], f"{total:g}", export_score, changed(row.entry, total), row.errors])


def write_tests(path: Path, config: GradingConfig, rows: list[Row]) -> None:
    numbers = [t.number for t in config.tests()]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["submission_id", *numbers])
        for row in rows:
            scores = {str(t.get("number")): t.get("score", 0.0) for t in (row.results or {}).get("tests", [])}
            writer.writerow([row.entry.key, *[f"{float(scores[n]):g}" if n in scores else "" for n in numbers]])


def write_histogram(path: Path, config: GradingConfig, rows: list[Row]) -> str:
    """A PNG of each part's score distribution; matplotlib is a development dependency
    (not installed on Gradescope), so without it this says so and writes nothing."""
    try:
        from matplotlib.figure import Figure  # no pyplot: no global figure state, no GUI backend
    except ImportError:
        return "histogram skipped: matplotlib is not installed (pip install -r requirements-dev.txt)"
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
