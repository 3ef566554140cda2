"""The per-part table printed after a grading."""
from __future__ import annotations

from autograder.config import GradingConfig
from autograder.records import TestOutcome


def first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def part_table(config: GradingConfig, outcomes: list[TestOutcome]) -> str:
    by_part: dict[str, list[TestOutcome]] = {}
    for outcome in outcomes:
        by_part.setdefault(outcome.part, []).append(outcome)
    rows = [("part", "function", "score", "first failure")]
    for part in config.parts:
        got = by_part.get(part.number, [])
        score = sum(o.score for o in got)
        failures = [f"{o.number}: {first_line(o.output)}" for o in got if o.status != "passed"]
        rows.append((part.number, ", ".join(part.functions), f"{score:g}/{part.points:g}", failures[0] if failures else ""))
    total = sum(o.score for o in outcomes)
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = ["  ".join(r[i].ljust(widths[i]) for i in range(3)) + "  " + r[3][:110] for r in rows]
    lines.insert(1, "-" * min(160, sum(widths) + 20))
    lines.append(f"total: {total:g}/{config.total_points:g}")
    return "\n".join(lines)
