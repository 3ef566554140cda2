"""The zygote: a process forked from the trusted harness right after torch is
imported and before any expected value is loaded, which forks one worker per probe.

A worker starts in its own session, drops to the unprivileged sandbox user when we
are root, gets resource limits, runs one probe and exits; afterwards every process of
that user (or of the worker's session when not root) is killed, so nothing the
submission started survives the probe."""
from __future__ import annotations

import json
import os
import pwd
import resource
import select
import signal
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from autograder import wire
from autograder.worker.child import IMPORTED_MARK, run_job


@dataclass(frozen=True)
class SandboxPolicy:
    """Limits and identity of the worker processes."""

    uid: int | None
    gid: int | None
    memory_bytes: int
    cpu_seconds: int
    max_processes: int
    max_file_bytes: int
    output_limit: int

    @classmethod
    def for_user(cls, user: str, memory_mb: int, cpu_seconds: int, max_processes: int, max_file_mb: int, output_limit_kb: int) -> "SandboxPolicy":
        """Switch to ``user`` only when grading as root; locally the student's own user runs the worker."""
        uid = gid = None
        if os.geteuid() == 0:
            try:
                entry = pwd.getpwnam(user)
            except KeyError:
                raise SandboxError(f"sandbox user {user!r} does not exist: run setup.sh (as root) first") from None
            uid, gid = entry.pw_uid, entry.pw_gid
        return cls(uid, gid, memory_mb << 20, cpu_seconds, max_processes, max_file_mb << 20, output_limit_kb << 10)


@dataclass(frozen=True)
class RawResult:
    """What the zygote saw of one worker: how it ended and the bytes it sent."""

    status: str  # "answered" | "timeout" | "crashed" | "oversized"
    phase: str  # "import" while the modules were being imported, then "probe"
    detail: str
    output: str
    answer: bytes


class SandboxError(RuntimeError):
    """The sandbox itself cannot work (missing user, dead zygote): a harness failure."""


def _vm_size() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _pids_of_uid(uid: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status", encoding="ascii", errors="replace") as status:
                for line in status:
                    if line.startswith("Uid:"):
                        if int(line.split()[1]) == uid:
                            pids.append(int(entry))
                        break
        except OSError:
            continue
    return pids


def kill_user_processes(uid: int) -> None:
    """SIGKILL every process of the sandbox user, repeatedly, until none is left."""
    for _ in range(100):
        pids = _pids_of_uid(uid)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.005)


def _close_fds(keep: set[int]) -> None:
    for fd in map(int, os.listdir("/proc/self/fd")):
        if fd not in keep and fd > 2:
            try:
                os.close(fd)
            except OSError:
                pass


def _worker(policy: SandboxPolicy, job: dict, payload: bytes, out_w: int, resp_w: int) -> None:
    """In the forked worker: isolate, limit, drop privileges, run. Never returns."""
    code = 0
    try:
        os.setsid()
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(out_w, 1)
        os.dup2(out_w, 2)
        _close_fds({0, 1, 2, resp_w})
        limits = {
            resource.RLIMIT_AS: _vm_size() + policy.memory_bytes,
            resource.RLIMIT_CPU: policy.cpu_seconds,
            resource.RLIMIT_FSIZE: policy.max_file_bytes,
            resource.RLIMIT_CORE: 0,
            resource.RLIMIT_NOFILE: 256,
        }
        if policy.uid is not None:
            limits[resource.RLIMIT_NPROC] = policy.max_processes
        for which, value in limits.items():
            resource.setrlimit(which, (value, value))
        scratch = job["scratch"]
        if policy.uid is not None and policy.gid is not None:
            os.setgroups([])
            os.setgid(policy.gid)
            os.setuid(policy.uid)
        os.chdir(scratch)
        os.environ.clear()
        os.environ.update({"HOME": scratch, "TMPDIR": scratch, "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"})
        sys.stdout = open(1, "w", buffering=1, closefd=False)
        sys.stderr = open(2, "w", buffering=1, closefd=False)
        sys.stdin = open(0, "r", closefd=False)
        run_job(payload, resp_w, job["submission"], tuple(job["keep_prefixes"]))
    except BaseException:  # anything escaping the job is reported by the zygote as a crash
        code = 70
    finally:
        os._exit(code)


def _supervise(pid: int, policy: SandboxPolicy, timeout: float, out_r: int, resp_r: int) -> RawResult:
    """Collect output and answer until the worker ends or its time is up."""
    deadline = time.monotonic() + timeout
    answer = bytearray()
    output = bytearray()
    open_fds = {out_r, resp_r}
    status, detail = "answered", ""
    exit_status: int | None = None
    while open_fds:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            status, detail = "timeout", f"did not finish within {timeout:g} s"
            break
        ready, _, _ = select.select(list(open_fds), [], [], min(remaining, 0.05))
        for fd in ready:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                open_fds.discard(fd)
            elif fd == resp_r:
                answer += chunk
                if len(answer) > wire.MAX_MESSAGE_BYTES + 16:
                    status, detail = "oversized", "sent more data than allowed"
                    open_fds.clear()
            elif len(output) < policy.output_limit:
                output += chunk[: policy.output_limit - len(output)]
        if exit_status is None:
            done, exit_status_raw = os.waitpid(pid, os.WNOHANG)
            if done:
                exit_status = exit_status_raw
                # Children the worker left behind may hold the pipes open: finish them.
                _kill_all(pid, policy)
                deadline = min(deadline, time.monotonic() + 0.5)
    _kill_all(pid, policy)
    if exit_status is None:
        _, exit_status = os.waitpid(pid, 0)
    phase = "probe" if answer.startswith(IMPORTED_MARK) else "import"
    body = bytes(answer[len(IMPORTED_MARK):] if phase == "probe" else answer)
    if status == "answered" and (os.WIFSIGNALED(exit_status) or os.WEXITSTATUS(exit_status) != 0 or not body):
        status = "crashed"
        if os.WIFSIGNALED(exit_status):
            sig = os.WTERMSIG(exit_status)
            detail = f"killed by signal {signal.Signals(sig).name}" + _signal_hint(sig)
        elif not body:
            detail = f"exited with status {os.WEXITSTATUS(exit_status)} before returning a result"
        else:
            detail = f"exited with status {os.WEXITSTATUS(exit_status)}"
    if len(output) >= policy.output_limit:
        output += b"\n[... output truncated ...]"
    return RawResult(status, phase, detail, output.decode("utf-8", errors="replace"), body)


def _signal_hint(sig: int) -> str:
    if sig == signal.SIGKILL:
        return " (out of memory or killed)"
    if sig == signal.SIGXCPU:
        return " (CPU time limit exceeded)"
    if sig == signal.SIGXFSZ:
        return " (file size limit exceeded)"
    if sig == signal.SIGSEGV:
        return " (segmentation fault)"
    return ""


def _kill_all(pid: int, policy: SandboxPolicy) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if policy.uid is not None:
        kill_user_processes(policy.uid)


def _serve(policy: SandboxPolicy, requests: int, replies: int) -> None:
    """The zygote's loop: one job in, one worker forked, one RawResult out."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        try:
            header = json.loads(wire.read_frame(requests))
            payload = wire.read_frame(requests)
        except (EOFError, OSError):
            return
        out_r, out_w = os.pipe()
        resp_r, resp_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(out_r)
            os.close(resp_r)
            os.close(requests)
            os.close(replies)
            _worker(policy, header, payload, out_w, resp_w)
        os.close(out_w)
        os.close(resp_w)
        result = _supervise(pid, policy, float(header["timeout"]), out_r, resp_r)
        os.close(out_r)
        os.close(resp_r)
        meta = {k: v for k, v in asdict(result).items() if k != "answer"}
        try:
            wire.write_frame(replies, json.dumps(meta).encode())
            wire.write_frame(replies, result.answer)
        except OSError:
            return


class Zygote:
    """Handle on the zygote process, owned by one grading session."""

    def __init__(self, pid: int, requests: int, replies: int, policy: SandboxPolicy) -> None:
        self.pid = pid
        self._requests = requests
        self._replies = replies
        self.policy = policy

    @classmethod
    def start(cls, policy: SandboxPolicy) -> "Zygote":
        """Fork now: call this before loading any expected value or hidden fixture."""
        import torch

        from autograder.worker.warmup import warm_up

        torch.set_num_threads(1)
        warm_up()
        req_r, req_w = os.pipe()
        rep_r, rep_w = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                os.close(req_w)
                os.close(rep_r)
                devnull = os.open(os.devnull, os.O_RDWR)
                for fd in (0, 1, 2):
                    os.dup2(devnull, fd)
                _close_fds({0, 1, 2, req_r, rep_w})
                _serve(policy, req_r, rep_w)
            except BaseException:  # the zygote must never fall back into the caller's code
                code = 70
            finally:
                os._exit(code)
        os.close(req_r)
        os.close(rep_w)
        return cls(pid, req_w, rep_r, policy)

    def run(self, payload: bytes, submission: Path, scratch: Path, timeout: float, keep_prefixes: tuple[str, ...]) -> RawResult:
        header = {"timeout": timeout, "submission": str(submission), "scratch": str(scratch), "keep_prefixes": list(keep_prefixes)}
        try:
            wire.write_frame(self._requests, json.dumps(header).encode())
            wire.write_frame(self._requests, payload)
            meta = json.loads(wire.read_frame(self._replies))
            answer = wire.read_frame(self._replies)
        except (OSError, EOFError, wire.WireError) as exc:
            raise SandboxError(f"the worker supervisor stopped unexpectedly: {exc}") from None
        return RawResult(answer=answer, **meta)

    def close(self) -> None:
        for fd in (self._requests, self._replies):
            try:
                os.close(fd)
            except OSError:
                pass
        try:
            os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass
        if self.policy.uid is not None:
            kill_user_processes(self.policy.uid)
