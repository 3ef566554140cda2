"""What went wrong with a submission, in a few words a TA can sort by: read from the
test outputs of its results (missing file, syntax error at line N, import error,
timeout or crash in a part, grader error). Wrong answers are not errors."""
from __future__ import annotations

import re
from dataclasses import dataclass

from autograder.grading.report import first_line

HARNESS_FAILURE = "The autograder itself failed"
_MISSING = re.compile(r"(\S+\.py) not found in your submission")
_FILE_PROBLEM = re.compile(r"(\S+\.py) (is a symbolic link|found in several folders|is larger than|could not be read)")
_SYNTAX = re.compile(r"(\S+\.py) could not be imported: (SyntaxError|IndentationError|TabError): .*?line (\d+)")
_IMPORT = re.compile(r"(\S+\.py) could not be imported: ([A-Za-z_][\w.]*)(?::\s*(.*))?")
_IMPORT_TIMEOUT = re.compile(r"(\S+\.py) timed out")


@dataclass(frozen=True)
class Problem:
    """One kind of problem and the parts it hit; equal problems of several parts merge."""

    kind: str
    parts: tuple[str, ...] = ()

    def text(self) -> str:
        if not self.parts:
            return self.kind
        return f"{self.kind} in part{'s' if len(self.parts) > 1 else ''} {', '.join(self.parts)}"


def _part(test: dict) -> str:
    return ".".join(str(test.get("number", "")).split(".")[:2])


def _classify(test: dict) -> tuple[str, bool] | None:
    """(problem, whether it is per part) for one failed test, or None for a wrong answer."""
    line = first_line(str(test.get("output", "")))
    body = line.split("): ", 1)[-1] if line.startswith("Part ") else line
    if match := _MISSING.search(body):
        return f"missing {match.group(1)}", False
    if match := _FILE_PROBLEM.search(body):
        return f"{match.group(1)} {match.group(2)}", False
    if match := _SYNTAX.search(body):
        return f"{match.group(1)}: syntax error at line {match.group(3)}", False
    if "details are not shown" in body:
        return None  # the same problem is reported, with details, by the part it depends on
    if match := _IMPORT.search(body):
        detail = f"{match.group(2)}: {match.group(3)}" if match.group(3) else match.group(2)
        return f"{match.group(1)}: import error ({detail[:80]})", False
    if match := _IMPORT_TIMEOUT.search(body):
        return f"{match.group(1)}: timeout while importing", False
    if "NotImplementedError" in str(test.get("output", "")):
        return "not implemented", True
    if " timed out" in body:
        return "timeout", True
    if " crashed" in body or "the worker process" in body:
        return "crash", True
    if "returned something that could not be read" in body:
        return "unreadable answer", True
    if "internal grader error" in body:
        return "grader error", True
    return None


def problems(results: dict) -> list[Problem]:
    """The submission's problems, in the order of the tests that showed them."""
    found: dict[str, list[str]] = {}
    per_part: dict[str, bool] = {}
    output = str(results.get("output", ""))
    if HARNESS_FAILURE in output:
        reason = output.split("\n", 1)[-1].strip().splitlines()
        found[f"not graded: {(reason[0] if reason else 'grader error')[:120]}"] = []
    for test in results.get("tests", []):
        if test.get("status") == "passed":
            continue
        if HARNESS_FAILURE in str(test.get("output", "")):
            continue
        classified = _classify(test)
        if classified is None:
            continue
        kind, by_part = classified
        parts = found.setdefault(kind, [])
        per_part[kind] = by_part
        if by_part and _part(test) not in parts:
            parts.append(_part(test))
    return [Problem(kind, tuple(parts) if per_part.get(kind) else ()) for kind, parts in found.items()]


def describe(results: dict) -> str:
    """The ``errors`` column: every problem, ``; ``-separated (empty when there is none)."""
    return "; ".join(p.text() for p in problems(results))
