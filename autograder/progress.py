"""Progress of a regrade: a bar on a terminal, plain periodic lines otherwise (logs, CI,
``nohup``); both name any submission that has been running for over a minute."""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any, TextIO

from autograder.batch import Running

SLOW_SECONDS = 60.0
LINE_EVERY_SECONDS = 30.0


def _slow(running: list[Running]) -> str:
    slow = sorted((r for r in running if r.seconds >= SLOW_SECONDS), key=lambda r: -r.seconds)
    return ", ".join(f"{r.key} ({r.seconds:.0f} s)" for r in slow)


@dataclass
class Progress:
    """Counts finished submissions out of ``total``; ``initial`` were reused."""

    total: int
    initial: int = 0
    stream: TextIO = field(default_factory=lambda: sys.stderr)
    every: float = LINE_EVERY_SECONDS
    done: int = 0
    failed: int = 0
    _bar: Any = None
    _last_line: float = field(default_factory=time.monotonic)
    _started: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.done = self.initial
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
            slow = _slow(running)
            self._bar.set_postfix_str(f"running for over a minute: {slow}" if slow else "", refresh=True)
        elif time.monotonic() - self._last_line >= self.every:
            self._line(running)

    def _line(self, running: list[Running]) -> None:
        self._last_line = time.monotonic()
        parts = [f"progress: {self.done}/{self.total} submissions done", f"{time.monotonic() - self._started:.0f} s"]
        if self.failed:
            parts.append(f"{self.failed} could not be graded")
        if running:
            parts.append(f"{len(running)} running")
        slow = _slow(running)
        if slow:
            parts.append(f"running for over a minute: {slow}")
        print(", ".join(parts), file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        elif self.done > self.initial:
            self._line([])
