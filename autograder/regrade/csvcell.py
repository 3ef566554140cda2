"""Spreadsheet-safe CSV cells (OWASP "CSV injection"): a TA opens grades.csv in Excel or
Sheets, and a student who names themselves ``=HYPERLINK(...)`` must not get a formula
run there. A text cell that a spreadsheet would read as a formula gets a leading ``'``;
numbers (``36``, ``-4``, ``+2``, ``1.5e-3``) stay as they are, so columns still sort and sum."""
from __future__ import annotations

import re
from typing import Iterable

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# A plain decimal number only: Python's float() also takes "nan", "-inf", "1_000" and
# surrounding spaces, which a spreadsheet would not read as numbers.
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def is_number(text: str) -> bool:
    return _NUMBER.fullmatch(text) is not None


def safe_cell(value: object) -> str:
    """``value`` as a cell no spreadsheet runs as a formula."""
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_STARTS) and not is_number(text):
        return "'" + text
    return text


def safe_row(values: Iterable[object]) -> list[str]:
    return [safe_cell(v) for v in values]
