"""Local-mode workers: the graded code in a spawned interpreter, on any OS.

Used where the full sandbox cannot run (see ``sandbox/mode.py``). Each worker is
``python -m autograder.worker.portable_main`` started with pipes: requests on its
stdin, answers on its stdout, and everything the student's code prints on its stderr.
The protocol is the zygote workers' (safetensors frames of ``wire.py``, never
pickle), so SubmissionRunner cannot tell the two apart. Pipes are read by threads,
not ``select`` (which Windows does not offer on pipes), so every wait is bounded by a
deadline; a worker that times out or crashes is killed with whatever it started
(its process group on POSIX, its process tree on Windows) and replaced."""
from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from autograder import wire
from autograder.config import SandboxSpec
from autograder.worker.child import IMPORTED_MARK
from autograder.worker.portable_main import READY_MARK
from autograder.sandbox.pool import SANDBOX_USER_ENV, CallResult, SandboxError

HARNESS_ROOT = Path(__file__).resolve().parent.parent.parent
WORKER_MODULE = "autograder.worker.portable_main"
STARTUP_SECONDS = 300.0  # importing torch on a slow laptop (antivirus scans, cold disk)
KILL_WAIT_SECONDS = 15.0
SETTLE_SECONDS = 0.005  # for the reader thread to file the chunk it has just read
SETTLE_MAX_SECONDS = 0.5
CHUNK = 1 << 16
STACK_LIMIT = 1 << 16  # bytes of a timed-out worker's stack dump that are read
WINDOWS = sys.platform == "win32"


@dataclass(frozen=True)
class PortablePolicy:
    """The limits a portable worker applies to itself where the OS allows; no user switch."""

    output_limit: int
    cpu_seconds: int
    max_file_bytes: int
    uid: int | None = None
    gid: int | None = None
    lease: int | None = None

    @classmethod
    def from_config(cls, sandbox: SandboxSpec) -> "PortablePolicy":
        return cls(sandbox.output_limit_kb << 10, sandbox.cpu_seconds, sandbox.max_file_mb << 20)


def unread_bytes(fd: int) -> int:
    """How many bytes wait in a pipe (FIONREAD on POSIX, PeekNamedPipe on Windows)."""
    try:
        if WINDOWS:
            import ctypes
            import msvcrt
            from ctypes import wintypes

            available = wintypes.DWORD()
            handle = wintypes.HANDLE(msvcrt.get_osfhandle(fd))
            ok = ctypes.windll.kernel32.PeekNamedPipe(handle, None, 0, None, ctypes.byref(available), None)  # type: ignore[attr-defined]
            return int(available.value) if ok else 0
        import array
        import fcntl
        import termios

        count = array.array("i", [0])
        fcntl.ioctl(fd, termios.FIONREAD, count, True)
        return int(count[0])
    except (OSError, ValueError):
        return 0


@dataclass
class _Output:
    """What the worker printed since the last probe began: the first ``limit`` + 1 bytes."""

    fd: int
    limit: int
    data: bytearray = field(default_factory=bytearray)
    closed: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, chunk: bytes) -> None:
        with self.lock:
            if not chunk:
                self.closed = True
            elif len(self.data) <= self.limit:
                self.data += chunk[: self.limit + 1 - len(self.data)]

    def reset(self, limit: int) -> None:
        with self.lock:
            self.limit = limit
            self.data = bytearray()

    def settle(self) -> None:
        """Wait (bounded) until the reader thread holds everything the worker wrote before
        its answer: the worker flushes its output before answering, so once the pipe is
        empty, only the reader's last chunk can still be on its way into ``data``."""
        deadline = time.monotonic() + SETTLE_MAX_SECONDS
        while time.monotonic() < deadline:
            with self.lock:
                if self.closed:
                    return
            if unread_bytes(self.fd) == 0:
                time.sleep(SETTLE_SECONDS)
                return
            time.sleep(SETTLE_SECONDS / 4)

    def text(self) -> str:
        with self.lock:
            text = self.data[: self.limit].decode("utf-8", errors="replace")
            if len(self.data) > self.limit:
                text += "\n[... output truncated ...]"
            return text


def _pump(stream: IO[bytes], sink: "queue.Queue[bytes] | _Output") -> None:
    """Reader thread: move everything from ``stream`` to ``sink``, then b"" for end of
    file. Only this thread reads the pipe, so only it may close it (closing a pipe
    under a blocked reader could hand its number to another file)."""
    fd = stream.fileno()
    while True:
        try:
            chunk = os.read(fd, CHUNK)
        except OSError:
            chunk = b""
        if isinstance(sink, _Output):
            sink.add(chunk)
        else:
            sink.put(chunk)
        if not chunk:
            stream.close()
            return


def _send(fd: int, data: bytes, errors: list[OSError]) -> None:
    try:
        wire.write_frame(fd, data)
    except OSError as exc:  # the worker died or closed its end
        errors.append(exc)


class PortableWorker:
    """The trusted ends of one spawned worker's pipes."""

    def __init__(self, process: subprocess.Popen, output_limit: int) -> None:
        self.process = process
        self.pid = process.pid
        self.not_after: float | None = None  # time.monotonic() past which no probe runs (the budget)
        self.stack_file: str | None = None  # where the worker's watchdog writes its stack before a timeout
        assert process.stdin is not None and process.stdout is not None and process.stderr is not None
        self._requests = process.stdin.fileno()
        self._answers: queue.Queue[bytes] = queue.Queue()
        self._ended = False
        if WINDOWS:  # frames are bytes: no newline translation on the pipes
            import msvcrt

            for stream in (process.stdin, process.stdout, process.stderr):
                msvcrt.setmode(stream.fileno(), os.O_BINARY)  # type: ignore[attr-defined]
        self._output = _Output(process.stderr.fileno(), output_limit)
        self._writer: threading.Thread | None = None
        for stream, sink in ((process.stdout, self._answers), (process.stderr, self._output)):
            threading.Thread(target=_pump, args=(stream, sink), daemon=True, name=f"autograder-worker-{self.pid}").start()

    def wait_ready(self, seconds: float) -> bool:
        """Wait for the worker's ready mark; what it printed while starting is dropped
        (torch may warn on import), so it never shows as the first probe's output."""
        try:
            ready = self._answers.get(timeout=seconds) == READY_MARK
        except queue.Empty:
            return False
        if ready:
            self._output.settle()
            self._output.reset(self._output.limit)
        return ready

    def startup_output(self) -> str:
        self._output.settle()
        return self._output.text()

    def alive(self) -> bool:
        """Exited, or wrote on the answer channel between probes: not to be reused."""
        return not self._ended and self.process.poll() is None and self._answers.empty()

    def close(self) -> None:
        """End of the requests: the worker's loop returns. The pool kills what is left.
        A request still being written (a worker that stopped reading) keeps the pipe
        open until the pool has killed the worker."""
        if self._writer is not None and self._writer.is_alive():
            return
        try:
            if self.process.stdin is not None:
                self.process.stdin.close()
        except OSError:
            pass

    def send(self, data: bytes) -> list[OSError]:
        """Start writing one frame; the errors list fills if the write fails."""
        errors: list[OSError] = []
        self._writer = threading.Thread(target=_send, args=(self._requests, data, errors), daemon=True)
        self._writer.start()
        return errors

    def join_writer(self, seconds: float) -> None:
        if self._writer is not None:
            self._writer.join(timeout=seconds)

    def call(self, payload: bytes, timeout: float, output_limit: int) -> CallResult:
        self._output.reset(output_limit)
        deadline = time.monotonic() + timeout
        if self.not_after is not None and self.not_after < deadline:
            deadline = self.not_after  # the submission's time budget
        # A worker that stops reading must not block us: the write has the probe's deadline too.
        errors = self.send(payload)
        answer = bytearray()
        expected: int | None = None
        while expected is None or len(answer) < expected:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return self._result("timeout", answer, f"did not finish within {timeout:g} s", self._stack())
            try:
                chunk = self._answers.get(timeout=remaining)
            except queue.Empty:
                continue
            if not chunk:
                self._ended = True
                self.join_writer(1.0)
                if errors and not answer:
                    return CallResult("crashed", "import", "could not receive the request", self._output.text(), b"")
                return self._result("crashed", answer, "")
            answer += chunk
            body = answer[len(IMPORTED_MARK):] if answer.startswith(IMPORTED_MARK) else answer
            if expected is None and len(body) >= wire.FRAME_HEADER:
                size = wire.frame_length(body)
                if size > wire.MAX_MESSAGE_BYTES:
                    return self._result("oversized", answer, "sent more data than allowed")
                expected = len(answer) - len(body) + wire.FRAME_HEADER + size
        if len(answer) > expected:
            return self._result("oversized", answer, "wrote unexpected data on the answer channel")
        return self._result("answered", answer, "")

    def _stack(self) -> str:
        """The stack the worker's watchdog wrote shortly before the deadline, bounded."""
        if self.stack_file is None:
            return ""
        try:
            with open(self.stack_file, "rb") as handle:
                return handle.read(STACK_LIMIT).decode("utf-8", errors="replace")
        except OSError:
            return ""

    def _result(self, status: str, answer: bytearray, detail: str, stack: str = "") -> CallResult:
        self._output.settle()
        phase = "probe" if answer.startswith(IMPORTED_MARK) else "import"
        body = bytes(answer[len(IMPORTED_MARK):] if phase == "probe" else answer)
        return CallResult(status, phase, detail, self._output.text(), wire.split_frame(body) if status == "answered" else b"", stack)


def _worker_environment(scratch: str) -> dict[str, str]:
    """The student's own environment (PATH, PYTHONPATH, conda and CUDA variables all
    keep torch importable), with temporary files in the scratch folder and one thread
    as in the sandbox, so reductions sum in the same order."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRADER_", "PYTEST_"))}
    env.update({"TMPDIR": scratch, "TEMP": scratch, "TMP": scratch, "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"})
    env.pop(SANDBOX_USER_ENV, None)
    return env


def _kill_tree(process: subprocess.Popen) -> None:
    """Kill the worker and what it started: its process group on POSIX (it leads its
    own session), its process tree on Windows (``taskkill /T``)."""
    if WINDOWS:
        try:
            subprocess.run(["taskkill", "/F", "/T", "/PID", str(process.pid)], capture_output=True, timeout=KILL_WAIT_SECONDS, check=False)
        except (OSError, subprocess.TimeoutExpired):
            pass
    else:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    try:
        process.kill()
    except OSError:
        pass


def describe_exit(returncode: int | None) -> str:
    if returncode is None:
        return "ended"
    if returncode < 0:
        hints = {"SIGKILL": " (out of memory, or killed)", "SIGXCPU": " (CPU time limit exceeded)", "SIGXFSZ": " (file size limit exceeded)", "SIGSEGV": " (segmentation fault)"}
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"was killed by signal {name}{hints.get(name, '')}"
    return f"exited with status {returncode} before returning a result"


class PortablePool:
    """Stands in for the zygote: spawns, finishes and sweeps portable workers."""

    def __init__(self, policy: PortablePolicy) -> None:
        self.policy = policy
        self._workers: dict[int, PortableWorker] = {}
        self.not_after: float | None = None
        # A student grading their own code is not an attack: workers may live side by side.
        self.exclusive_kinds = False

    def set_deadline(self, not_after: float | None) -> None:
        """No probe of a worker spawned from now on runs past ``not_after`` (monotonic):
        the time budget of the submission being graded."""
        self.not_after = not_after

    @classmethod
    def start(cls, sandbox: SandboxSpec) -> "PortablePool":
        return cls(PortablePolicy.from_config(sandbox))

    def spawn(self, submission: str, scratch: str, keep_prefixes: tuple[str, ...]) -> PortableWorker:
        """Start a worker and wait (bounded) until it has imported torch. Not ``python -I``:
        that would drop the user site and PYTHONPATH, where many students' torch lives
        (``pip install --user``, Colab); the worker narrows its own imports (child.serve)."""
        options: dict = {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP} if WINDOWS else {"start_new_session": True}
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", WORKER_MODULE],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                cwd=str(HARNESS_ROOT), env=_worker_environment(scratch), close_fds=True, **options,
            )
        except OSError as exc:
            raise SandboxError(f"could not start a worker process ({sys.executable}): {exc}") from None
        worker = PortableWorker(process, self.policy.output_limit)
        worker.not_after = self.not_after
        worker.stack_file = os.path.join(scratch, f".stack-{process.pid}")
        self._workers[worker.pid] = worker
        job = {
            "submission": submission, "scratch": scratch, "keep_prefixes": list(keep_prefixes),
            "cpu_seconds": self.policy.cpu_seconds, "max_file_bytes": self.policy.max_file_bytes,
            "stack_file": worker.stack_file,
        }
        errors = worker.send(json.dumps(job).encode())
        if not worker.wait_ready(STARTUP_SECONDS) or errors:
            self.finish(worker)
            raise SandboxError(f"the worker process did not start (python -m {WORKER_MODULE}):\n{worker.startup_output()[-1500:]}")
        return worker

    def finish(self, worker: PortableWorker) -> str:
        """Kill one worker (and what it started) and say how it had ended."""
        _kill_tree(worker.process)
        self._workers.pop(worker.pid, None)
        try:
            return describe_exit(worker.process.wait(timeout=KILL_WAIT_SECONDS))
        except subprocess.TimeoutExpired:
            return "did not end when killed"
        finally:
            worker.join_writer(KILL_WAIT_SECONDS)  # a killed reader fails the write at once
            worker.close()

    def finish_all(self) -> None:
        for worker in list(self._workers.values()):
            self.finish(worker)

    def close(self) -> None:
        self.finish_all()
