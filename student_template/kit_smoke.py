"""Marks on what a ``--smoke`` run writes, so that its output is never taken for results.

A smoke run trains a tiny model for a few steps on synthetic data: its figures only show
that the code runs. Each of its files starts with ``smoke_`` (so that it never overwrites
a real run's figure or checkpoint in the same folder) and each figure's title says it.
"""
from __future__ import annotations

PREFIX = "smoke_"
TITLE = "SMOKE RUN (synthetic data, tiny model): not results"


def smoke_name(name: str, smoke: bool) -> str:
    """``name`` with the smoke prefix when ``smoke`` is true."""
    return PREFIX + name if smoke and not name.startswith(PREFIX) else name


def smoke_title(title: str, smoke: bool) -> str:
    """``title`` under the smoke banner when ``smoke`` is true."""
    return f"{TITLE}\n{title}" if smoke else title


def is_smoke_name(name: str) -> bool:
    """Whether a file (or run) name was written by a smoke run."""
    return name.startswith(PREFIX)
