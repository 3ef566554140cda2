"""The local-mode workers (autograder/sandbox/portable.py) on their own: real spawned
interpreters, driven through SubmissionRunner as a grading drives them. Each test
writes a tiny q1_solution.py that misbehaves in one way and checks that the trusted
side sees exactly that: an answer, a timeout, a crash, truncated output, an
answer channel that fd 0/1 cannot reach, and nothing left running once the submission is done."""
from __future__ import annotations

import dataclasses
import os
import signal
import time
from pathlib import Path
from typing import Iterator

import pytest
import torch

from autograder.grading.client import SubmissionRunner
from autograder.sandbox.portable import PortablePool
from autograder.records import Observation, ProbeRequest
from autograder.grading.submission import StagedSubmission, stage
from autograder.sandbox.mode import WorkerMode, choose_mode
from harness_tests.corpus import CONFIG

SANDBOX = CONFIG.sandbox


@pytest.fixture(scope="module")
def pool() -> Iterator[PortablePool]:
    workers = PortablePool.start(SANDBOX)
    yield workers
    workers.close()


def _staged(tmp_path: Path, source: str) -> StagedSubmission:
    folder = tmp_path / "upload"
    folder.mkdir()
    (folder / "q1_solution.py").write_text(source, encoding="utf-8")
    return stage(folder, ("q1_solution",), {}, None)


def _call(runner: SubmissionRunner, timeout: float = 20.0) -> Observation:
    request = ProbeRequest(
        "call", ("q1_solution",), {"module": "q1_solution", "function": "f", "args": ["x"]}, {"x": torch.arange(4.0)}, 7, timeout
    )
    return runner.run(request)


def _grade(pool: PortablePool, tmp_path: Path, source: str, calls: int = 1, timeout: float = 20.0) -> list[Observation]:
    staged = _staged(tmp_path, source)
    runner = SubmissionRunner(pool, staged)  # type: ignore[arg-type]
    try:
        return [_call(runner, timeout) for _ in range(calls)]
    finally:
        runner.close()
        staged.cleanup()


def test_answers_travel_as_plain_tensors(pool: PortablePool, tmp_path: Path) -> None:
    (obs,) = _grade(pool, tmp_path, "import torch\ndef f(x):\n    print('hello')\n    return x * 2\n")
    assert obs.ok, obs.message
    assert torch.equal(obs.tensors["out"], torch.arange(4.0) * 2)
    assert obs.values["out"]["type"] == "Tensor"


def test_a_student_error_is_reported_with_the_students_frames_only(pool: PortablePool, tmp_path: Path) -> None:
    (obs,) = _grade(pool, tmp_path, "def f(x):\n    raise ValueError('nope')\n")
    assert obs.status == "error"
    assert obs.message.startswith("ValueError: nope") and 'File "q1_solution.py", line 2, in f' in obs.message
    assert "autograder" not in obs.message


def test_an_import_error_fails_the_module(pool: PortablePool, tmp_path: Path) -> None:
    (obs,) = _grade(pool, tmp_path, "import no_such_module_anywhere\n")
    assert obs.status == "import_error" and "ModuleNotFoundError" in obs.message


def test_a_hang_times_out_and_the_next_probe_gets_a_fresh_worker(pool: PortablePool, tmp_path: Path) -> None:
    source = "import os\nSEEN = []\ndef f(x):\n    SEEN.append(1)\n    if len(SEEN) == 1 and not os.path.exists('flag'):\n        open('flag', 'w').close()\n        while True:\n            pass\n    return x\n"
    started = time.monotonic()
    first, second = _grade(pool, tmp_path, source, calls=2, timeout=3.0)
    assert first.status == "timeout" and "did not finish within 3 s" in first.message
    assert second.ok, second.message  # a new worker (the flag in the scratch folder is kept)
    assert time.monotonic() - started < 60


def test_a_crash_is_reported_with_how_the_worker_ended(pool: PortablePool, tmp_path: Path) -> None:
    (obs,) = _grade(pool, tmp_path, "import os\ndef f(x):\n    os.kill(os.getpid(), 9)\n")
    assert obs.status == "crashed"
    assert "was killed by signal SIGKILL" in obs.message and "while running" in obs.message


def test_output_is_captured_and_truncated(pool: PortablePool, tmp_path: Path) -> None:
    (obs,) = _grade(pool, tmp_path, "import os\ndef f(x):\n    print('A' * 100000)\n    os.write(2, b'B' * 10)\n    raise RuntimeError('x')\n")
    assert obs.status == "error"
    assert obs.output.startswith("A" * 100) and obs.output.endswith("[... output truncated ...]")
    assert len(obs.output) <= pool.policy.output_limit + 40


def test_writing_to_stdout_or_reading_stdin_cannot_touch_the_channels(pool: PortablePool, tmp_path: Path) -> None:
    """fd 1 is not the answer channel and fd 0 is not the request channel in a worker."""
    source = "import os, sys\ndef f(x):\n    os.write(1, b'\\x00' * 64)\n    assert sys.stdin.read() == ''\n    assert os.read(0, 10) == b''\n    return x + 1\n"
    first, second = _grade(pool, tmp_path, source, calls=2)
    assert first.ok and second.ok, (first.message, second.message)
    assert torch.equal(second.tensors["out"], torch.arange(4.0) + 1)


def test_everything_the_submission_started_is_killed_at_the_end(pool: PortablePool, tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    source = (
        "import subprocess, sys\n"
        "def f(x):\n"
        f"    p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
        f"    open({str(pidfile)!r}, 'w').write(str(p.pid))\n"
        "    return x\n"
    )
    (obs,) = _grade(pool, tmp_path, source)
    assert obs.ok, obs.message
    pid = int(pidfile.read_text())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        except ChildProcessError:
            pass
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    pytest.fail("a process started by the submission outlived its grading")


def test_the_mode_is_chosen_and_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = dataclasses.replace(SANDBOX, user="hw3-no-such-user")
    assert choose_mode(spec, required=True) == WorkerMode(True)
    if os.geteuid() == 0:
        mode = choose_mode(spec)
        assert not mode.sandboxed and "without the sandbox user 'hw3-no-such-user'" in mode.line
        assert mode.line.startswith("local mode: ")
    monkeypatch.delattr(os, "fork")
    mode = choose_mode(SANDBOX)
    assert not mode.sandboxed and "os.fork" in mode.reason


def test_one_worker_until_a_visible_probe_follows_a_non_visible_one(pool: PortablePool, tmp_path: Path) -> None:
    """The visible worker is promoted to non-visible (all it will show is out), so a
    submission whose tests run visible first needs one; a visible probe after a
    non-visible one never reaches that worker again."""
    staged = _staged(tmp_path, "import os\nimport torch\ndef f(x):\n    return torch.tensor(float(os.getpid()))\n")
    runner = SubmissionRunner(pool, staged)  # type: ignore[arg-type]
    request = ProbeRequest("call", ("q1_solution",), {"module": "q1_solution", "function": "f", "args": ["x"]}, {"x": torch.arange(4.0)}, 7, 20.0)
    try:
        pids = [runner.run(dataclasses.replace(request, visible=visible)).tensors["out"].item() for visible in (True, True, False, False, True)]
    finally:
        runner.close()
        staged.cleanup()
    assert pids[0] == pids[1] == pids[2] == pids[3]
    assert pids[4] != pids[3]
