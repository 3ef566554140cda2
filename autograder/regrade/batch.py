"""Grade many submissions fast, and stop cleanly.

torch, pytest and the harness are imported once; each of ``workers`` slots is forked
from this preloaded process, forks its own zygote (with its own sandbox user, before
any expected value is loaded) and runs ONE pytest session fed from a shared queue: a
slot asks for the next submission when it is free, so a slow submission holds up one
slot, not a share of the class. Isolation per submission is the same as a single
grading: fresh sandboxed workers, everything they started killed before the
submission's results are written.

A submission's results are written once, complete, after its last test (to a
temporary name, then renamed). Ctrl-C or SIGTERM (to the group, or to this process
alone) stops every slot and what it started, keeps what finished, and writes nothing
for what did not."""
from __future__ import annotations

import gc
import json
import os
import select
import signal
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, NoReturn

from autograder.config import GradingConfig
from autograder.libc import LIBC
from autograder.paths import KitLayout
from autograder.grading.results import build_results, complete_outcomes, harness_failure_results, write_results

FINGERPRINT_KEY = "regrade_fingerprint"  # in a regrade's results: what decided the grade
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
SLOT_STOP_SECONDS = 20.0  # a slot asked to stop gets this long before it is killed
TICK_SECONDS = 1.0
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class GradeJob:
    key: str
    submission: Path
    results: Path
    fingerprint: str = ""


@dataclass(frozen=True)
class JobResult:
    job: GradeJob
    results: dict
    seconds: float
    graded: bool = True  # False: the harness could not grade it (results say why)


@dataclass(frozen=True)
class Running:
    """A submission some slot is grading now, for progress reports."""

    key: str
    seconds: float


class BatchInterrupted(Exception):
    """Ctrl-C or SIGTERM: every slot stopped; ``finished`` are kept, the rest were not graded."""

    def __init__(self, signum: int, finished: list[JobResult], unfinished: list[GradeJob]) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.finished = finished
        self.unfinished = unfinished


class _Signalled(BaseException):
    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def slot_user(config: GradingConfig, slot: int) -> str:
    """Slot 0 uses the configured user, slot i its numbered sibling (setup.sh makes them),
    so that killing one slot's processes never touches another's."""
    return config.sandbox.user if slot == 0 else f"{config.sandbox.user}{slot}"


# ------------------------------------------------------------------ slot side

@dataclass
class _SlotState:
    stopping: bool = False


def _die_with_parent(parent: int) -> None:
    """If the regrade process dies (even by SIGKILL), the kernel sends this slot SIGTERM."""
    try:
        LIBC.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:
        os._exit(0)


def _send(fd: int, line: str) -> None:
    os.write(fd, (line + "\n").encode())


def _read_line(fd: int, buffer: bytearray) -> str:
    """Blocking read of one command line from the parent ("" when the pipe closed)."""
    while b"\n" not in buffer:
        chunk = os.read(fd, 4096)
        if not chunk:
            return ""
        buffer += chunk
    line, _, rest = bytes(buffer).partition(b"\n")
    buffer[:] = rest
    return line.decode()


def _slot(layout: KitLayout, config: GradingConfig, jobs: list[GradeJob], slot: int, commands: int, reports: int, parent: int) -> NoReturn:
    """One slot: one zygote, one queue-fed pytest session. Never returns."""
    code = 0
    state = _SlotState()

    def stop(signum: int, frame: object) -> None:
        if not state.stopping:
            state.stopping = True
            raise KeyboardInterrupt

    try:
        for signum in STOP_SIGNALS:
            signal.signal(signum, stop)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        _die_with_parent(parent)
        from autograder.grading.run import run_pytest
        from autograder.grading.plugin import GradingHandle, SubmissionDone
        from autograder.sandbox.zygote import SandboxPolicy, Zygote

        expected = {t.number for t in config.tests()}
        buffer = bytearray()

        def next_submission() -> tuple[str, Path] | None:
            if state.stopping:
                return None
            _send(reports, "next")
            line = _read_line(commands, buffer)
            if not line.isdigit():
                return None
            return line, jobs[int(line)].submission

        def done(result: SubmissionDone) -> None:
            # Written only when every test ran and no stop was asked for: a submission cut
            # short must never look finished.
            signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
            try:
                if state.stopping or not expected <= set(result.outcomes) | result.skipped:
                    _send(reports, f"incomplete {result.key}")
                    return
                job = jobs[int(result.key)]
                completed = complete_outcomes(config, result.outcomes, "This test did not run (grader error); please tell the course staff.", result.skipped)
                results = build_results(completed, result.seconds)
                if job.fingerprint:
                    results[FINGERPRINT_KEY] = job.fingerprint
                write_results(job.results, results)
                _send(reports, f"done {result.key}")
            finally:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)

        zygote = Zygote.start(SandboxPolicy.from_config(config.sandbox, slot_user(config, slot)), huge_pages=True)
        try:
            _send(reports, f"uid {zygote.policy.uid if zygote.policy.uid is not None else -1}")
            run_pytest(layout, config, GradingHandle(zygote, on_done=done, next_submission=next_submission))
        finally:
            signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
            zygote.close()
    except BaseException as exc:  # the parent reports whatever this slot did not finish
        code = 70
        if not state.stopping:
            try:
                _send(reports, "error " + " ".join(f"{type(exc).__name__}: {exc}".split())[:300])
            except OSError:
                pass
    finally:
        os._exit(code)


# ------------------------------------------------------------------ parent side

@dataclass
class _Slot:
    index: int
    pid: int
    commands: int
    reports: int
    buffer: bytes = b""
    job: int | None = None
    started: float = 0.0
    uid: int | None = None
    took_work: bool = False
    error: str = ""  # what stopped the slot, as it reported it


@dataclass
class _Batch:
    layout: KitLayout
    config: GradingConfig
    jobs: list[GradeJob]
    on_done: Callable[[JobResult], None] | None
    pending: deque[int] = field(default_factory=deque)
    slots: dict[int, _Slot] = field(default_factory=dict)  # by report fd
    done: dict[int, JobResult] = field(default_factory=dict)
    last_status: str = ""

    def start_slot(self, index: int) -> None:
        commands_r, commands_w = os.pipe()
        reports_r, reports_w = os.pipe()
        inherited = [fd for s in self.slots.values() for fd in (s.commands, s.reports)]
        parent = os.getpid()
        # Blocked across the fork: the child must not run the parent's handlers; it
        # unblocks them once its own are in place.
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        pid = os.fork()
        if pid == 0:
            for fd in [commands_w, reports_r, *inherited]:
                os.close(fd)
            os.setpgid(0, 0)  # its own group: the parent decides when a slot stops
            _slot(self.layout, self.config, self.jobs, index, commands_r, reports_w, parent)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        try:
            os.setpgid(pid, pid)
        except OSError:  # the child already did it (or already ended)
            pass
        os.close(commands_r)
        os.close(reports_w)
        self.slots[reports_r] = _Slot(index, pid, commands_w, reports_r)

    def finish(self, index: int, result: JobResult) -> None:
        self.done[index] = result
        if self.on_done is not None:
            self.on_done(result)

    def failed(self, index: int, reason: str, seconds: float) -> None:
        """A submission the harness could not grade: a placeholder result that says why,
        without a fingerprint, so the next run tries it again."""
        job = self.jobs[index]
        results = harness_failure_results(self.config, reason, seconds)
        write_results(job.results, results)
        self.finish(index, JobResult(job, results, seconds, graded=False))

    def handle(self, slot: _Slot, line: str) -> None:
        word, _, arg = line.partition(" ")
        if word == "uid" and arg.lstrip("-").isdigit() and int(arg) >= 0:
            slot.uid = int(arg)
        elif word == "error":
            slot.error = arg
        elif word == "next":
            slot.job = self.pending.popleft() if self.pending else None
            slot.started = time.monotonic()
            slot.took_work = slot.took_work or slot.job is not None
            try:
                os.write(slot.commands, f"{slot.job if slot.job is not None else 'end'}\n".encode())
            except OSError:
                pass  # it ended: its EOF comes next
        elif word in ("done", "incomplete") and arg.isdigit() and int(arg) == slot.job:
            index, seconds = int(arg), time.monotonic() - slot.started
            slot.job = None
            if word == "incomplete":
                self.failed(index, "grading stopped before every test had run", seconds)
                return
            job = self.jobs[index]
            try:
                results = json.loads(job.results.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as exc:
                self.failed(index, f"its results could not be read back ({exc})", seconds)
                return
            self.finish(index, JobResult(job, results, seconds))

    def read(self, fd: int) -> None:
        slot = self.slots[fd]
        chunk = os.read(fd, 4096)
        if not chunk:
            self.ended(slot)
            return
        slot.buffer += chunk
        *lines, slot.buffer = slot.buffer.split(b"\n")
        for line in lines:
            self.handle(slot, line.decode(errors="replace"))

    def ended(self, slot: _Slot) -> None:
        status = _reap(slot.pid, SLOT_STOP_SECONDS)
        _close(slot.commands, slot.reports)
        del self.slots[slot.reports]
        self.last_status = _describe(status) + (f" ({slot.error})" if slot.error else "")
        if slot.job is not None:
            self.failed(slot.job, f"the grading process {self.last_status} while grading this submission", time.monotonic() - slot.started)
        if self.pending and slot.took_work:
            self.start_slot(slot.index)  # it made progress before: a fresh slot takes over

    def running(self) -> list[Running]:
        now = time.monotonic()
        return [Running(self.jobs[s.job].key, now - s.started) for s in self.slots.values() if s.job is not None]

    def stop_all(self) -> None:
        """Stop every slot (each closes its zygote, which kills its workers and sweeps its
        sandbox user), then kill whatever is left of a slot that did not end cleanly."""
        for slot in self.slots.values():
            try:  # the slot alone: it closes its zygote, which kills the workers
                os.kill(slot.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + SLOT_STOP_SECONDS
        unclean: set[int] = set()
        for slot in list(self.slots.values()):
            status = _reap(slot.pid, max(0.0, deadline - time.monotonic()))
            if status is None:
                _signal_group(slot.pid, signal.SIGKILL)
                _reap(slot.pid, 5.0)
            if status is None or not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
                _signal_group(slot.pid, signal.SIGKILL)  # its zygote, if it outlived the slot
                if slot.uid is not None:
                    unclean.add(slot.uid)
            _close(slot.commands, slot.reports)
        self.slots.clear()
        if unclean:
            from autograder.sandbox.zygote import kill_user_processes

            for uid in unclean:  # the slot could not sweep its sandbox user itself
                kill_user_processes(uid)


def _signal_group(pid: int, signum: int) -> None:
    try:
        os.killpg(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _reap(pid: int, seconds: float) -> int | None:
    """Wait (at most ``seconds``) for a slot to end; its status, or None if it did not."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return 0
        if done:
            return status
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.02)


def _describe(status: int | None) -> str:
    if status is None:
        return "did not end"
    if os.WIFSIGNALED(status):
        return f"was killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"ended with status {os.WEXITSTATUS(status)}"


def _close(*fds: int) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


def _raise_signalled(signum: int, frame: object) -> None:
    raise _Signalled(signum)


def preload() -> None:
    """Import and warm up once here, so every forked slot starts warm."""
    import pytest  # noqa: F401
    import torch

    import autograder.grading.run  # noqa: F401
    import autograder.grading.plugin  # noqa: F401
    from autograder.worker.warmup import warm_up

    torch.set_num_threads(1)
    warm_up()
    # The first comparison imports torch.distributed.tensor (~0.4 s of CPU): once here,
    # not once per slot.
    torch.testing.assert_close(torch.zeros(1), torch.zeros(1))
    # Out of the collector's reach before the slots fork: a collection in a slot would
    # otherwise walk (and so copy, page by page) everything loaded here.
    gc.freeze()


def grade_many(
    layout: KitLayout,
    config: GradingConfig,
    jobs: Iterable[GradeJob],
    workers: int,
    on_done: Callable[[JobResult], None] | None = None,
    on_tick: Callable[[list[Running]], None] | None = None,
) -> list[JobResult]:
    """Grade every job on ``workers`` slots; every job ends with a result, unless the run
    is interrupted (BatchInterrupted: what finished is kept, nothing else is written)."""
    batch = _Batch(layout, config, list(jobs), on_done)
    if not batch.jobs:
        return []
    for job in batch.jobs:
        job.results.parent.mkdir(parents=True, exist_ok=True)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = {signum: signal.signal(signum, _raise_signalled) for signum in STOP_SIGNALS} if main_thread else {}
    try:
        preload()
        batch.pending.extend(range(len(batch.jobs)))
        for index in range(max(1, min(workers, len(batch.jobs)))):
            batch.start_slot(index)
        last_tick = time.monotonic()
        while batch.slots:
            ready, _, _ = select.select(list(batch.slots), [], [], TICK_SECONDS)
            for fd in ready:
                if fd in batch.slots:
                    batch.read(fd)
            if on_tick is not None and time.monotonic() - last_tick >= TICK_SECONDS:
                last_tick = time.monotonic()
                on_tick(batch.running())
        for index in list(batch.pending):
            batch.failed(index, f"no grading process was left to grade it (the last one {batch.last_status})", 0.0)
        batch.pending.clear()
    except _Signalled as exc:
        for signum in STOP_SIGNALS:
            signal.signal(signum, signal.SIG_IGN)
        batch.stop_all()
        _remove_temporaries(batch.jobs)
        finished = [batch.done[i] for i in sorted(batch.done)]
        raise BatchInterrupted(exc.signum, finished, [j for i, j in enumerate(batch.jobs) if i not in batch.done]) from None
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return [batch.done[i] for i in range(len(batch.jobs))]


def _remove_temporaries(jobs: list[GradeJob]) -> None:
    """Half-written results (a slot stopped mid-write) are temporary files: remove them."""
    for folder in {job.results.parent for job in jobs}:
        for leftover in folder.glob(".results-*.json"):
            leftover.unlink(missing_ok=True)
