"""The worker's confinement and the bounded waits, on real processes and pipes: the
system-call filter, a request write that cannot stall, a traced worker that cannot hang
the zygote, the narrow filesystem view, and what happens where the kernel refuses the
namespaces (the grading still works, says so in its log and leaves no IPC behind)."""
from __future__ import annotations

import ctypes
import fcntl
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from autograder import records
from autograder.grading.budget import Budget
from autograder.grading.client import interpreter_prefixes
from autograder.config import load_config
from autograder.grading.judge import Grader, GradingFailure
from autograder.grading.results import build_results
from autograder.sandbox.zygote import REAP_SECONDS, SandboxPolicy, WorkerHandle, Zygote
from autograder.grading.submission import stage
from autograder.text import clean_text
from autograder.worker import confine
from autograder.worker.filesystem import links_on_the_way, needed_folders

from harness_tests.corpus import CONFIG, CORPUS, LAYOUT, PARTS, WORTH, part_scores

LIBC = ctypes.CDLL(None, use_errno=True)
PTRACE_SEIZE = 0x4206
F_SETPIPE_SZ = 1031
WALL = 0x40000000  # __WALL: wait for a tracee that is not our child
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (the sandbox user switch and namespaces)")
needs_filter = pytest.mark.skipif(confine.syscall_filter(platform.machine()) is None, reason="no filter for this architecture")


def _in_child(body) -> dict:
    """Run ``body()`` in a forked child and return the JSON object it returned."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_end)
            os.write(write_end, json.dumps(body()).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as handle:
        data = handle.read()
    os.waitpid(pid, 0)
    return json.loads(data)


@needs_filter
def test_syscall_filter_denies_tracing_namespaces_and_dumpable_but_not_fork_or_threads() -> None:
    def body() -> dict:
        refused = confine.install_syscall_filter()
        parent = os.getppid()
        results = {"refused": refused}
        results["ptrace"] = (LIBC.ptrace(PTRACE_SEIZE, parent, 0, 0), ctypes.get_errno())
        results["unshare_user"] = (LIBC.unshare(confine.CLONE_NEWUSER), ctypes.get_errno())
        results["dumpable"] = (LIBC.prctl(confine.PR_SET_DUMPABLE, 1, 0, 0, 0), ctypes.get_errno())
        results["process_name"] = LIBC.prctl(15, b"w", 0, 0, 0)  # PR_SET_NAME: other prctls work
        child = os.fork()
        if child == 0:
            os._exit(7)
        results["fork"] = os.waitstatus_to_exitcode(os.waitpid(child, 0)[1])
        seen = []
        thread = threading.Thread(target=lambda: seen.append(1))
        thread.start()
        thread.join()
        results["thread"] = seen
        results["exec"] = subprocess.run(["/bin/echo", "ok"], capture_output=True, text=True).stdout.strip()
        return results

    got = _in_child(body)
    assert got["refused"] is None
    assert got["ptrace"] == [-1, 1] and got["unshare_user"] == [-1, 1] and got["dumpable"] == [-1, 1], got
    assert got["process_name"] == 0 and got["fork"] == 7 and got["thread"] == [1] and got["exec"] == "ok", got


def test_request_write_is_bounded_by_the_probe_deadline() -> None:
    """A worker that shrinks its request pipe and stops reading: the trusted side gives up
    at the probe's deadline instead of blocking in the write."""
    req_r, req_w = os.pipe()
    ans_r, ans_w = os.pipe()
    out_r, out_w = os.pipe()
    fcntl.fcntl(req_r, F_SETPIPE_SZ, 4096)
    os.set_blocking(req_w, False)
    handle = WorkerHandle(os.getpid(), req_w, ans_r, out_r)
    try:
        started = time.monotonic()
        result = handle.call(b"x" * 13_000, 1.0, 1024)
        elapsed = time.monotonic() - started
    finally:
        handle.close()
        for fd in (req_r, ans_w, out_w):
            os.close(fd)
    assert result.status == "timeout" and "did not read its request" in result.detail, result
    assert elapsed < 3.0, elapsed


def test_a_budget_deadline_cuts_the_probe_timeout() -> None:
    req_r, req_w = os.pipe()
    ans_r, ans_w = os.pipe()
    out_r, out_w = os.pipe()
    handle = WorkerHandle(os.getpid(), req_w, ans_r, out_r, not_after=time.monotonic() + 0.5)
    try:
        started = time.monotonic()
        result = handle.call(b"small", 30.0, 1024)
        elapsed = time.monotonic() - started
    finally:
        handle.close()
        for fd in (req_r, ans_w, out_w):
            os.close(fd)
    assert result.status == "timeout" and "time budget" in result.detail, result
    assert elapsed < 2.0, elapsed


class _NeverRun:
    def run(self, request):  # pragma: no cover - must not be reached
        raise AssertionError(f"probe ran past the budget: {request}")


def test_exhausted_budget_fails_the_test_at_once_naming_it() -> None:
    config = load_config(LAYOUT.config_file)
    spec = config.test("1.1.1")
    grader = Grader(spec, config.part("1.1"), None, _NeverRun(), budget=Budget(480.0, time.monotonic() - 481.0))  # type: ignore[arg-type]
    with pytest.raises(GradingFailure, match=r"time budget of 480 s \(sandbox.budget_seconds"):
        grader.probe("call", {}, {}, call="f()")
    assert Budget(480.0, time.monotonic()).clamp(20.0) == 20.0
    assert Budget(10.0, time.monotonic() - 8.0).clamp(20.0) <= 2.0


def test_submission_text_is_cleaned_in_results() -> None:
    dirty = "a\ud800b\x1b[31mc\x00d\te\nf\r\ng\u202eh"
    assert clean_text(dirty) == "a\ufffdb\ufffd[31mc\ufffdd\te\nf\ng\ufffdh"
    outcome = records.TestOutcome("1.1.1", "t", "1.1", 0.0, 1.0, "failed", dirty, "visible", ("1.1",))
    results = build_results([outcome], 1.0, dirty)
    json.dumps(results).encode("utf-8")
    assert "\ud800" not in results["tests"][0]["output"] and "\x1b" not in results["output"]


def test_view_keeps_only_the_interpreter_folders(tmp_path: Path) -> None:
    prefix = tmp_path / "pyenv" / "versions" / "3.10"
    site = prefix / "lib" / "python3.10" / "site-packages"
    site.mkdir(parents=True)
    (tmp_path / "link").symlink_to(prefix)
    kept = needed_folders((str(prefix), str(site), "/usr/lib", str(tmp_path / "link")))
    assert kept == [str(prefix.resolve())]
    assert links_on_the_way((str(tmp_path / "link"),)) == [(str(tmp_path / "link"), str(prefix))]


# ---------------------------------------------------------------- as root, real workers


def _sandbox_user() -> str:
    """A sandbox user the attack suite's lanes do not use (they take the last two)."""
    return os.environ.get("GRADER_SANDBOX_USER", "hw3sandbox")


@needs_root
def test_killed_traced_worker_does_not_hang_the_zygote(tmp_path: Path) -> None:
    """A worker whose zombie belongs to a tracer cannot be reaped by its parent: the
    zygote must give up after REAP_SECONDS instead of waiting for ever. The tracer is
    this (root) test process, which the sweep of the sandbox user does not kill."""
    config = load_config(LAYOUT.config_file)
    zygote = Zygote.start(SandboxPolicy.from_config(config.sandbox, _sandbox_user()))
    staged = stage(LAYOUT.reference_dir, config.modules, {}, zygote.policy.uid, zygote.policy.gid)
    try:
        worker = zygote.spawn(str(staged.submission), str(staged.scratch), interpreter_prefixes())
        assert LIBC.ptrace(PTRACE_SEIZE, worker.pid, 0, 0) == 0, os.strerror(ctypes.get_errno())
        started = time.monotonic()
        zygote.finish(worker)
        elapsed = time.monotonic() - started
        os.waitpid(worker.pid, WALL)  # as its tracer, let the zombie go to its parent
        assert elapsed < REAP_SECONDS + 5, elapsed
        assert not list(staged.scratch.iterdir()), "the worker's scratch folder outlived it"
    finally:
        zygote.close()
        staged.cleanup()


@needs_root
@needs_filter
def test_refused_namespaces_fall_back_are_logged_and_leave_no_ipc(tmp_path: Path) -> None:
    """Grade under a filter that refuses unshare and mount, as a container may: the log
    says which protections were refused, the grading still works, and the SysV segment
    the submission made is removed at the end even without an IPC namespace."""
    _remove_leftover_segment()
    submission = tmp_path / "upload"
    shutil.copytree(LAYOUT.reference_dir, submission)
    shutil.copy(CORPUS / "attacks" / "leftovers_between_workers" / "q1_solution.py", submission / "q1_solution.py")
    results = tmp_path / "results.json"
    log = _grade_refused(submission, results).stderr
    for refused in ("mount namespace refused", "IPC namespace refused", "network namespace refused", "PID namespace not used"):
        assert refused in log, log[-2000:]
    scores = part_scores(json.loads(results.read_text(encoding="utf-8")))
    assert all(scores[p] == 4 for p in PARTS if p != "1.1"), scores
    assert _leftover_segment() is None, "the submission's SysV segment outlived the grading"


def _grade_refused(submission: Path, results: Path) -> subprocess.CompletedProcess[str]:
    """``python -m autograder grade`` under a filter that refuses unshare and mount, as a
    container may: the workers get no namespaces of their own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "GRADER_"))}
    env["GRADER_SANDBOX_USER"] = _sandbox_user()
    return subprocess.run(
        [sys.executable, "-m", "autograder", "grade", str(submission), "--results", str(results)],
        cwd=LAYOUT.root, env=env, capture_output=True, text=True, timeout=300,
        preexec_fn=confine.install_syscall_filter,
    )


SHARED_TMP_ATTACK = CORPUS / "attacks" / "leak_through_shared_tmp"


@needs_root
@needs_filter
def test_refused_namespaces_keep_worker_kinds_apart(tmp_path: Path) -> None:
    """Without namespaces the workers of a submission share /tmp. What a non-visible
    worker left there (hidden inputs) and what a substituted worker left (the correct
    callee) must still never reach a visible test: workers of different kinds never live
    side by side, and /tmp is cleaned of the sandbox user's files between them."""
    submission = tmp_path / "upload"
    shutil.copytree(LAYOUT.reference_dir, submission)
    shutil.copy(SHARED_TMP_ATTACK / "q1_solution.py", submission / "q1_solution.py")
    results = tmp_path / "results.json"
    proc = _grade_refused(submission, results)
    assert "IPC namespace refused" in proc.stderr, proc.stderr[-2000:]
    tests = json.loads(results.read_text(encoding="utf-8"))["tests"]
    callee = [line.strip() for line in (LAYOUT.substitutes_dir / "log_likelihood_normal.py").read_text(encoding="utf-8").splitlines()
              if line.strip().startswith("return")]
    for test in tests:
        if test["visibility"] == "visible":
            assert "HIDDEN-INPUTS-SEEN" not in test["output"], test
            assert not [line for line in callee if line in test["output"]], test
    scores = part_scores({"tests": tests})
    # 1.5 returns zeros; 1.3's hidden test may meet what the hidden bernoulli test left
    # in the same (non-visible) worker's reach: the submission's own doing.
    assert scores["1.5"] == 0 and all(scores[p] == WORTH[p] for p in PARTS if p not in ("1.3", "1.5")), ("only 1.5 (and 1.3's hidden test) may lose points", scores)
    visible_13 = [t.number for t in CONFIG.part("1.3").tests if not t.hidden]
    assert {t["number"]: t["score"] for t in tests if t["number"] in visible_13} == {n: CONFIG.test(n).points for n in visible_13}, "1.3's visible tests keep their points"
    assert not list(Path("/tmp").glob(".leak-through-shared-tmp-*")), "the sandbox user's files outlived the grading"


LEFTOVER_KEY = 0x48573312  # the SysV key of the leftovers_between_workers attack


def _leftover_segment() -> str | None:
    """The shmid of the attack's segment in this IPC namespace, whoever owns it."""
    with open("/proc/sysvipc/shm", encoding="ascii") as table:
        header = table.readline().split()
        for line in table:
            row = dict(zip(header, line.split()))
            if int(row["key"]) == LEFTOVER_KEY:
                return row["shmid"]
    return None


def _remove_leftover_segment() -> None:
    """A segment left by an earlier (failed) run would make this one look leaky."""
    shmid = _leftover_segment()
    if shmid is not None:
        subprocess.run(["ipcrm", "-m", shmid], check=True)
