"""Progress of a regrade: a bar on a terminal, plain periodic lines otherwise (logs, CI,
``nohup``); both name every submission that has been running for over a minute.

A plain line comes every ``every`` seconds, and at once when a submission passes the
minute: lines 30 s apart alone would miss a submission that passes it just after one
line and ends before the next (an 84 s submission started a few seconds into the
regrade read only "1 running" at 61 s and was done by 91 s)."""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, TextIO

from autograder.regrade.batch import Running

SLOW_SECONDS = 60.0
LINE_EVERY_SECONDS = 30.0


def slow(running: list[Running]) -> list[Running]:
    """The submissions running for over a minute, longest first."""
    return sorted((r for r in running if r.seconds >= SLOW_SECONDS), key=lambda r: -r.seconds)


def _names(running: list[Running]) -> str:
    return ", ".join(f"{r.key} ({r.seconds:.0f} s)" for r in slow(running))


@dataclass
class Progress:
    """Counts finished submissions out of ``total``; ``initial`` were reused. ``clock``
    is the time source (tests pass a fake one)."""

    total: int
    initial: int = 0
    stream: TextIO = field(default_factory=lambda: sys.stderr)
    every: float = LINE_EVERY_SECONDS
    clock: Callable[[], float] = time.monotonic
    done: int = 0
    failed: int = 0
    _bar: Any = None
    _last_line: float = 0.0
    _started: float = 0.0
    _named: set[str] = field(default_factory=set)  # slow submissions a line has named

    def __post_init__(self) -> None:
        self.done = self.initial
        self._started = self._last_line = self.clock()
        if self.stream.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=self.total, initial=self.initial, unit="submission", file=self.stream)
        else:
            self._line([])

    def finished(self, graded: bool) -> None:
        self.done += 1
        self.failed += 0 if graded else 1
        if self._bar is not None:
            self._bar.update(1)

    def tick(self, running: list[Running]) -> None:
        if self._bar is not None:
            names = _names(running)
            self._bar.set_postfix_str(f"running for over a minute: {names}" if names else "", refresh=True)
            return
        newly_slow = any(r.key not in self._named for r in slow(running))
        if newly_slow or self.clock() - self._last_line >= self.every:
            self._line(running)

    def _line(self, running: list[Running]) -> None:
        now = self.clock()
        self._last_line = now
        parts = [f"progress: {self.done}/{self.total} submissions done", f"{now - self._started:.0f} s"]
        if self.failed:
            parts.append(f"{self.failed} could not be graded")
        if running:
            parts.append(f"{len(running)} running")
        names = _names(running)
        if names:
            parts.append(f"running for over a minute: {names}")
            self._named.update(r.key for r in slow(running))
        print(", ".join(parts), file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        elif self.done > self.initial:
            self._line([])
