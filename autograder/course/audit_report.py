"""What a mutation audit found, written out: ``audit.csv`` (one row per mutant),
``audit.md`` (a table per part, its survivors and what only hidden tests kill) and a
one-line summary. The mutation score of a part is the share of its non-equivalent
mutants that lose points (killed anywhere)."""
from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

from autograder.course.audit import STATUSES, Record
from autograder.config import GradingConfig

CSV_COLUMNS = ("mutant", "part", "operator", "status", "visible", "failed_tests", "diff")


def score(records: list[Record]) -> float | None:
    """Killed (anywhere) / non-equivalent; None when every mutant is equivalent."""
    counted = [r for r in records if r.status != "equivalent"]
    if not counted:
        return None
    return sum(r.status in ("killed", "killed_elsewhere") for r in counted) / len(counted)


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def write_csv(path: Path, records: list[Record]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for r in records:
            visible = "" if r.visible is None else ("yes" if r.visible else "no")
            writer.writerow([r.mutant.id, r.part, r.mutant.operator, r.status, visible, " ".join(r.failed_tests), r.mutant.diff])


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(config: GradingConfig, records: list[Record]) -> str:
    lines = ["# Mutation audit", "", summary(records), "", "| part | mutants | killed | by a visible test | killed elsewhere | equivalent | survived | mutation score |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    by_part = {p.number: [r for r in records if r.part == p.number] for p in config.parts}
    for part, rows in by_part.items():
        if not rows:
            continue
        counts = Counter(r.status for r in rows)
        visible = sum(1 for r in rows if r.visible)
        lines.append(f"| {part} | {len(rows)} | {counts['killed']} | {visible} | {counts['killed_elsewhere']} | {counts['equivalent']} | {counts['survived']} | {_percent(score(rows))} |")
    for part, rows in by_part.items():
        if not rows:
            continue
        title = config.part(part).title
        lines += ["", f"## {part} {title}", "", f"Mutation score {_percent(score(rows))} ({len(rows)} mutants)."]
        sections = (
            ("Survivors (full marks, yet different)", [r for r in rows if r.status == "survived"], lambda r: r.detail),
            ("Killed elsewhere (a fairness bug: another part loses points)", [r for r in rows if r.status == "killed_elsewhere"], lambda r: " ".join(r.failed_tests)),
            ("Killed by non-visible tests only", [r for r in rows if r.status == "killed" and not r.visible], lambda r: " ".join(r.failed_tests)),
            ("Equivalent", [r for r in rows if r.status == "equivalent"], lambda r: r.detail),
            ("Killed, though the differential check finds no difference (review: a test stricter than the requirement, "
             "or a float32 effect the float64 recipes cannot show)", [r for r in rows if r.status != "equivalent" and r.no_difference],
             lambda r: " ".join(r.failed_tests)),
        )
        for heading, chosen, note in sections:
            if not chosen:
                continue
            lines += ["", f"{heading}:", "", "| mutant | operator | diff | note |", "| --- | --- | --- | --- |"]
            lines += [f"| {r.mutant.id} | {r.mutant.operator} | `{_cell(r.mutant.diff)}` | {_cell(note(r))} |" for r in chosen]
    return "\n".join(lines) + "\n"


def summary(records: list[Record]) -> str:
    counts = Counter(r.status for r in records)
    visible = sum(1 for r in records if r.visible)
    parts = ", ".join(f"{counts[s]} {s}" for s in STATUSES)
    return f"audit: {len(records)} mutants: {parts} ({visible} of the killed by a visible test); mutation score {_percent(score(records))}"


def write_all(out: Path, config: GradingConfig, records: list[Record]) -> tuple[Path, Path]:
    csv_path, md_path = out / "audit.csv", out / "audit.md"
    write_csv(csv_path, records)
    md_path.write_text(markdown(config, records), encoding="utf-8")
    return csv_path, md_path
