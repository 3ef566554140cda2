"""Grade many submissions fast. torch, pytest and the harness are imported once; each
of ``workers`` children is forked from this preloaded process, forks its own zygote
(with its own sandbox user, before any expected value is loaded) and runs ONE pytest
session over its share of the submissions. Isolation per submission is the same as a
single grading: fresh sandboxed workers, everything they started killed before the
submission's results.json is written."""
from __future__ import annotations

import json
import os
import select
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from autograder.config import GradingConfig
from autograder.paths import KitLayout
from autograder.records import TestOutcome
from autograder.results import build_results, complete_outcomes, harness_failure_results, write_results


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


def _write_done(config: GradingConfig, job: GradeJob, outcomes: dict[str, TestOutcome], skipped: set[str], seconds: float) -> None:
    completed = complete_outcomes(config, outcomes, "This test did not run (grader error); please tell the course staff.", skipped)
    write_results(job.results, build_results(completed, seconds))


def _child(layout: KitLayout, config: GradingConfig, jobs: list[GradeJob], slot: int, report_fd: int) -> None:
    """One slot: one zygote, one pytest session over ``jobs``. Never returns."""
    code = 0
    try:
        from autograder.grading import run_suites_many
        from autograder.plugin import SubmissionDone
        from autograder.sandbox import SandboxPolicy, Zygote

        by_key = {job.key: job for job in jobs}

        def done(result: SubmissionDone) -> None:
            _write_done(config, by_key[result.key], result.outcomes, result.skipped, result.seconds)
            os.write(report_fd, (result.key + "\n").encode())

        zygote = Zygote.start(SandboxPolicy.from_config(config.sandbox, slot_user(config, slot)))
        try:
            run_suites_many(layout, config, {job.key: job.submission for job in jobs}, zygote, done)
        finally:
            zygote.close()
    except BaseException:  # the parent writes a failure result for whatever is missing
        code = 70
    finally:
        os._exit(code)


def _result_of(job: GradeJob, config: GradingConfig, reason: str, seconds: float) -> JobResult:
    try:
        results = json.loads(job.results.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        results = harness_failure_results(config, reason, seconds)
        write_results(job.results, results)
    return JobResult(job, results, seconds)


def grade_many(
    layout: KitLayout,
    config: GradingConfig,
    jobs: Iterable[GradeJob],
    workers: int,
    on_done: Callable[[JobResult], None] | None = None,
) -> list[JobResult]:
    """Grade every job on ``workers`` slots; every job ends with a results.json."""
    import pytest  # noqa: F401  (preloaded: children start warm)
    import torch

    import autograder.grading  # noqa: F401
    import autograder.plugin  # noqa: F401
    from autograder.worker.warmup import warm_up

    torch.set_num_threads(1)
    warm_up()  # once here rather than once per slot
    pending = list(jobs)
    for job in pending:
        job.results.parent.mkdir(parents=True, exist_ok=True)
        if job.results.exists():
            job.results.unlink()
    shares = [pending[i :: max(1, workers)] for i in range(max(1, workers))]
    started = time.monotonic()
    children: dict[int, tuple[int, list[GradeJob]]] = {}
    for slot, share in enumerate(shares):
        if not share:
            continue
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_fd)
            _child(layout, config, share, slot, write_fd)
        os.close(write_fd)
        children[pid] = (read_fd, share)
    by_key = {job.key: job for job in pending}
    done: dict[str, JobResult] = {}
    buffers = {fd: b"" for fd, _ in children.values()}
    open_fds = set(buffers)
    while open_fds:
        ready, _, _ = select.select(list(open_fds), [], [])
        for fd in ready:
            chunk = os.read(fd, 4096)
            if not chunk:
                open_fds.discard(fd)
                continue
            buffers[fd] += chunk
            *lines, buffers[fd] = buffers[fd].split(b"\n")
            for line in lines:
                key = line.decode()
                if key in by_key and key not in done:
                    done[key] = _result_of(by_key[key], config, "no results", time.monotonic() - started)
                    if on_done is not None:
                        on_done(done[key])
    for pid, (fd, share) in children.items():
        _, status = os.waitpid(pid, 0)
        os.close(fd)
        for job in share:
            if job.key not in done:
                done[job.key] = _result_of(job, config, f"the grading process ended with status {status} before this submission was graded", 0.0)
                if on_done is not None:
                    on_done(done[job.key])
    return [done[job.key] for job in pending]
