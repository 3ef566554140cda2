"""Grade many submissions fast: torch, pytest and the harness are imported once, and
each submission is graded in a child forked from this preloaded process, with the
same isolation as a single grading (its own zygote, its own sandbox user per slot)."""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from autograder.config import GradingConfig
from autograder.paths import KitLayout
from autograder.results import harness_failure_results, write_results


@dataclass(frozen=True)
class GradeJob:
    key: str
    submission: Path
    results: Path


@dataclass(frozen=True)
class JobResult:
    job: GradeJob
    results: dict
    seconds: float


def slot_user(config: GradingConfig, slot: int) -> str:
    """Slot 0 uses the configured user, slot i its numbered sibling (setup.sh makes them),
    so that killing one slot's processes never touches another's."""
    return config.sandbox.user if slot == 0 else f"{config.sandbox.user}{slot}"


def _child(layout: KitLayout, job: GradeJob, user: str) -> None:
    from autograder.grading import grade_folder

    code = 0
    try:
        grade_folder(layout, job.submission, job.results, user=user)
    except BaseException:  # grade_folder already writes a results.json on its own failures
        code = 70
    finally:
        os._exit(code)


def _read(job: GradeJob, config: GradingConfig, status: int, seconds: float) -> JobResult:
    try:
        results = json.loads(job.results.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        results = harness_failure_results(config, f"the grading process ended with status {status} without results", seconds)
        write_results(job.results, results)
    return JobResult(job, results, seconds)


def grade_many(
    layout: KitLayout,
    config: GradingConfig,
    jobs: Iterable[GradeJob],
    workers: int,
    on_done: Callable[[JobResult], None] | None = None,
) -> list[JobResult]:
    """Run the jobs on ``workers`` forked children at a time; every job yields a results.json."""
    import pytest  # noqa: F401  (preload, so that children start warm)
    import torch

    import autograder.grading  # noqa: F401
    import autograder.plugin  # noqa: F401

    torch.set_num_threads(1)
    pending = list(jobs)
    running: dict[int, tuple[GradeJob, int, float]] = {}
    free_slots = list(range(max(1, workers)))
    done: list[JobResult] = []
    while pending or running:
        while pending and free_slots:
            job = pending.pop(0)
            slot = free_slots.pop(0)
            job.results.parent.mkdir(parents=True, exist_ok=True)
            pid = os.fork()
            if pid == 0:
                _child(layout, job, slot_user(config, slot))
            running[pid] = (job, slot, time.monotonic())
        pid, status = os.wait()
        if pid not in running:
            continue
        job, slot, started = running.pop(pid)
        free_slots.append(slot)
        result = _read(job, config, status, time.monotonic() - started)
        done.append(result)
        if on_done is not None:
            on_done(result)
    return done
