"""Text that came from a submission, made safe for every stream and file.

A submission controls its exception messages, its output and the names in what it
returns. Lone surrogates (``"\\ud800"``) cannot be encoded as UTF-8, so printing them
raised and once cost a student their results; control characters can rewrite a
terminal or a log line. Everything the worker says is cleaned once, where it enters the
trusted side, and again (cheaply) where results and reports are written."""
from __future__ import annotations

import re
from typing import Any

REPLACEMENT = "\ufffd"
# The most characters of one string from the worker that the trusted side keeps. The
# worker's own cap is code inside the untrusted process (a submission can replace it), so
# the bound that counts is this one: a message of megabytes once made the report's line
# wrapping take minutes and gigabytes, and results.json was never written.
STRING_LIMIT = 2000
# C0 controls but tab and newline, DEL, C1 controls, lone surrogates, and the
# bidirectional overrides that make a line read differently from what it holds.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069]")


def clean_text(text: str) -> str:
    """``text`` with every unsafe character replaced by U+FFFD (``\\r\\n`` becomes ``\\n``)."""
    if not isinstance(text, str):
        text = str(text)
    return _UNSAFE.sub(REPLACEMENT, text.replace("\r\n", "\n"))


def bounded(text: str, limit: int = STRING_LIMIT, mark: str | None = None) -> str:
    """``text`` cut to ``limit`` characters, ending with ``mark`` (by default, how many
    characters were left out)."""
    if len(text) <= limit:
        return text
    return text[:limit] + (mark if mark is not None else f" [... {len(text) - limit} more characters not shown]")


def clean_json(value: Any, depth: int = 0) -> Any:
    """A JSON value (decoded from the worker's header) with every string cleaned and bounded."""
    if depth > 32:
        return None
    if isinstance(value, str):
        return bounded(clean_text(value))
    if isinstance(value, dict):
        return {bounded(clean_text(str(k)), 200): clean_json(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [clean_json(v, depth + 1) for v in value]
    return value
