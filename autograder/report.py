"""The per-part table printed after a grading."""
from __future__ import annotations

from autograder.config import GradingConfig
from autograder.records import TestOutcome
from autograder.text import clean_text


def first_line(text: str) -> str:
    for line in clean_text(text).splitlines():
        if line.strip():
            return line.strip()
    return ""


def part_table(config: GradingConfig, outcomes: list[TestOutcome]) -> str:
    by_part: dict[str, list[TestOutcome]] = {}
    for outcome in outcomes:
        by_part.setdefault(outcome.part, []).append(outcome)
    rows = [("part", "function", "score", "first failure")]
    not_run = 0.0
    for part in config.parts:
        got = by_part.get(part.number, [])
        score = sum(o.score for o in got)
        possible = sum(o.max_score for o in got)
        failures = [f"{o.number}: {first_line(o.output)}" for o in got if o.status != "passed"]
        note = "" if possible == part.points else f" (+{part.points - possible:g} hidden, graded on Gradescope)"
        not_run += part.points - possible
        rows.append((part.number, ", ".join(part.functions), f"{score:g}/{possible:g}{note}", failures[0] if failures else ""))
    total = sum(o.score for o in outcomes)
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = ["  ".join(r[i].ljust(widths[i]) for i in range(3)) + "  " + r[3][:110] for r in rows]
    lines.insert(1, "-" * min(160, sum(widths) + 20))
    lines.append(f"total: {total:g}/{config.total_points - not_run:g}" + (f" (+{not_run:g} in hidden tests, graded on Gradescope)" if not_run else ""))
    return "\n".join(lines)
