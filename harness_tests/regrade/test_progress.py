"""The regrade's plain progress lines, driven by a fake clock: every submission that runs
for over a minute is named, even one that passes the minute between two periodic lines
and ends before the next (an 84 s submission once read only "1 running")."""
from __future__ import annotations

import io
import re
from dataclasses import dataclass

from autograder.regrade.batch import Running
from autograder.regrade.progress import LINE_EVERY_SECONDS, SLOW_SECONDS, Progress


@dataclass
class FakeClock:
    now: float = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass(frozen=True)
class Job:
    key: str
    start: float
    seconds: float


def _simulate(jobs: list[Job], until: float, tick: float = 1.0) -> list[tuple[float, str]]:
    """Tick a Progress as grade_many does (once a second), with ``jobs`` running on
    the fake clock; every line it printed, with the fake time it printed it at."""
    clock, stream = FakeClock(), io.StringIO()
    progress = Progress(total=len(jobs), stream=stream, clock=clock)
    lines: list[tuple[float, str]] = []
    seen = 0
    finished: set[str] = set()

    def collect() -> None:
        nonlocal seen
        text = stream.getvalue().splitlines()
        lines.extend((clock.now, line) for line in text[seen:])
        seen = len(text)

    collect()
    while clock.now < until:
        clock.now += tick
        for job in jobs:
            if job.key not in finished and clock.now >= job.start + job.seconds:
                finished.add(job.key)
                progress.finished(graded=True)
        running = [Running(j.key, clock.now - j.start) for j in jobs if j.start <= clock.now and j.key not in finished]
        progress.tick(running)
        collect()
    progress.close()
    collect()
    return lines


def test_a_submission_passing_the_minute_between_two_lines_is_named() -> None:
    # Started 6 s in (the regrade's preload), graded in 84 s: at the 60 s line it had run
    # 54 s, and it was done before the 90 s line.
    job = Job("submission_84", start=6.0, seconds=84.0)
    assert 2 * LINE_EVERY_SECONDS < job.start + SLOW_SECONDS and job.start + job.seconds <= 3 * LINE_EVERY_SECONDS
    lines = _simulate([job], until=120.0)
    naming = [(t, line) for t, line in lines if "submission_84" in line]
    assert naming, lines
    when, line = naming[0]
    assert job.start + SLOW_SECONDS <= when <= job.start + SLOW_SECONDS + 1.0, naming
    assert "running for over a minute: submission_84 (60 s)" in line and "1 running" in line
    assert lines[0][1].startswith("progress: 0/1 submissions done") and lines[-1][1].startswith("progress: 1/1 submissions done")


def test_every_slow_submission_is_named_and_lines_stay_sparse() -> None:
    jobs = [Job("fast", 0.0, 20.0), Job("slow_a", 0.0, 61.5), Job("slow_b", 25.0, 70.0), Job("slow_c", 40.0, 200.0)]
    until = 250.0
    lines = _simulate(jobs, until=until)
    text = "\n".join(line for _, line in lines)
    for job in jobs:
        assert (job.key in text) == (job.seconds > SLOW_SECONDS), (job.key, text)
    # A line every 30 s, one more when a submission passes the minute, and the last one.
    slow = sum(1 for j in jobs if j.seconds > SLOW_SECONDS)
    assert len(lines) <= 1 + until / LINE_EVERY_SECONDS + slow + 1, text
    # Still running: named again in the periodic lines, with how long it has run.
    named_for = [int(m) for _, line in lines for m in re.findall(r"slow_c \((\d+) s\)", line)]
    assert len(named_for) >= 3 and named_for == sorted(named_for) and named_for[-1] > 2 * SLOW_SECONDS, named_for


def test_quick_submissions_make_no_extra_lines() -> None:
    jobs = [Job(f"s{i}", start=10.0 * i, seconds=9.0) for i in range(10)]
    lines = _simulate(jobs, until=100.0)
    times = [t for t, _ in lines]
    assert all(b - a >= LINE_EVERY_SECONDS for a, b in zip(times[:-2], times[1:-1])), times
    assert not any("over a minute" in line for _, line in lines)
