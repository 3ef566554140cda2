"""What a grading prints: the per-part table, with the message (and its hint) of each
failing part's first failure under its row, wrapped rather than cut; and, on request,
every test's full message."""
from __future__ import annotations

import textwrap

from autograder.config import GradingConfig, PartSpec
from autograder.grading.judge import OUTPUT_MARK
from autograder.records import TestOutcome
from autograder.text import clean_text

WIDTH = 100
INDENT = "      "
MAX_LEAD = 16  # characters of a line's own indentation kept when it is wrapped
PRINTED_LINES = 8  # of the student's own output, under a failing part's row


def first_line(text: str) -> str:
    for line in clean_text(text).splitlines():
        if line.strip():
            return line.strip()
    return ""


def _wrapped(text: str, indent: str, width: int = WIDTH) -> list[str]:
    """Each line of ``text`` wrapped to ``width``; continuation lines keep its indentation."""
    lines = []
    for line in text.splitlines() or [""]:
        lead = line[: len(line) - len(line.lstrip())][:MAX_LEAD]  # a submission's text may start with megabytes of spaces
        lines += textwrap.wrap(
            line.strip(), width, initial_indent=indent + lead, subsequent_indent=indent + lead + "  ",
            break_long_words=True, break_on_hyphens=False,
        ) or [indent]
    return lines


def failure_summary(part: PartSpec, outcome: TestOutcome) -> str:
    """The message without the part's name (the row shows it) nor the student's output."""
    message = outcome.output.split(OUTPUT_MARK, 1)[0].strip()
    prefix = f"Part {part.number} ({', '.join(part.functions)}): "
    if message.startswith(prefix):
        message = message[len(prefix):]
    return f"{outcome.number}: {message}"


def printed_lines(outcome: TestOutcome) -> list[str]:
    """The last lines the student's code printed in this test (when its message has them)."""
    if OUTPUT_MARK not in outcome.output:
        return []
    lines = [line for line in outcome.output.split(OUTPUT_MARK, 1)[1].splitlines()[1:] if line.strip()]
    shown = [line if len(line) <= WIDTH else line[: WIDTH - 3] + "..." for line in lines[-PRINTED_LINES:]]
    return (["[...]"] if len(lines) > PRINTED_LINES else []) + shown


def part_table(config: GradingConfig, outcomes: list[TestOutcome]) -> str:
    by_part: dict[str, list[TestOutcome]] = {}
    for outcome in outcomes:
        by_part.setdefault(outcome.part, []).append(outcome)
    rows = [("part", "function", "score")]
    notes: list[list[str]] = [[]]
    not_run = 0.0
    for part in config.parts:
        got = by_part.get(part.number, [])
        score = sum(o.score for o in got)
        possible = sum(o.max_score for o in got)
        failures = [o for o in got if o.status != "passed"]
        note = "" if possible == part.points else f" (+{part.points - possible:g} hidden, graded on Gradescope)"
        not_run += part.points - possible
        rows.append((part.number, ", ".join(part.functions), f"{score:g}/{possible:g}{note}"))
        detail: list[str] = []
        if failures:
            detail = _wrapped(failure_summary(part, failures[0]), INDENT)
            printed = printed_lines(failures[0])
            if printed:
                detail.append(f"{INDENT}your code printed:")
                detail += [f"{INDENT}  | {line}" for line in printed]
            if len(failures) > 1:
                detail.append(f"{INDENT}(and {len(failures) - 1} more failing test(s) in this part: see --explain)")
        notes.append(detail)
    total = sum(o.score for o in outcomes)
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = []
    for index, (row, detail) in enumerate(zip(rows, notes)):
        lines.append("  ".join(row[i].ljust(widths[i]) for i in range(3)).rstrip())
        if index == 0:
            lines.append("-" * min(WIDTH, sum(widths) + 4))
        lines += detail
    lines.append(f"total: {total:g}/{config.total_points - not_run:g}" + (f" (+{not_run:g} in hidden tests, graded on Gradescope)" if not_run else ""))
    return "\n".join(lines)


def explain(outcomes: list[TestOutcome]) -> str:
    """Every test that ran, with its full message (``grade --explain``)."""
    blocks = []
    for outcome in sorted(outcomes, key=lambda o: [int(p) if p.isdigit() else p for p in o.number.split(".")]):
        head = f"{outcome.number}  {outcome.status.upper()}  {outcome.score:g}/{outcome.max_score:g}  {outcome.name}"
        body = _wrapped(outcome.output, "    ") if outcome.status != "passed" else []
        blocks.append("\n".join([head, *body]))
    return "\n".join(blocks)
