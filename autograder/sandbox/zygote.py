"""The zygote and its workers: where untrusted code runs.

The zygote is forked from the trusted harness right after torch is imported and warmed
up, before any expected value is loaded. On request it forks a worker that starts its
own session, gets resource limits, is confined (worker/filesystem.py: a private view of
the filesystem and its own scratch; worker/confine.py: IPC and network namespaces and a
system-call filter), drops to the unprivileged sandbox user (when we are root), reports
what the kernel refused, and then answers probes on pipes whose trusted ends are handed
back to the harness. A worker that times out or crashes is killed together with every
process of the sandbox user (tracers included) and replaced. No wait is unbounded:
requests are written without blocking under the probe's deadline, killed workers are
reaped with WNOHANG and a time limit, and every exchange with the zygote has one. When a
submission is done, every process of the sandbox user (or, when not root, of the workers'
sessions) is killed, so nothing the submission started outlives its grading."""
from __future__ import annotations

import fcntl
import gc
import json
import os
import pwd
import resource
import select
import shutil
import signal
import socket
import sys
import time
from dataclasses import dataclass
from typing import NoReturn

from autograder import wire
from autograder.config import SandboxSpec
from autograder.sandbox.hugepages import collapse_resident_heap
from autograder.libc import LIBC
from autograder.worker.child import IMPORTED_MARK, serve
from autograder.worker.confine import enter_namespaces, install_syscall_filter, unshare_pid_namespace
from autograder.worker.filesystem import PrivateViewError, ViewRequest, enter_private_view, mount_own_proc
from autograder.sandbox.gradelog import log
from autograder.sandbox.pool import CallResult, SandboxError  # shared with the portable workers

MAX_CONTROL_MESSAGE = 1 << 16
REAP_SECONDS = 5.0  # how long the zygote waits for killed workers before moving on
FIRST_REAP_SECONDS = 0.5  # a killed worker that is not reaped by then is traced: sweep, then wait again
SETUP_SECONDS = 30.0  # a worker's confinement normally takes milliseconds
REPLY_SECONDS = 120.0  # the zygote's answer to one command (a spawn waits for SETUP_SECONDS)
ZYGOTE_EXIT_SECONDS = 15.0
DRAIN_READS = 64
STACK_LIMIT = 1 << 16  # bytes of a timed-out worker's stack dump that are read


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
    lease: int | None = None  # a locked file descriptor: this grading owns the user

    @property
    def scratch_bytes(self) -> int:
        """Size of a worker's private scratch (a tmpfs, when the private view holds)."""
        return 4 * self.max_file_bytes

    @classmethod
    def for_user(cls, user: str, memory_mb: int, cpu_seconds: int, max_processes: int, max_file_mb: int, output_limit_kb: int) -> "SandboxPolicy":
        """Switch to a sandbox user only when grading as root; locally the student's own
        user runs the worker. As root, the grading leases ``user`` (or, when another
        grading on this machine holds it, a free numbered sibling), because the end of a
        grading kills every process of its user."""
        uid = gid = lease = None
        if os.geteuid() == 0:
            user, lease = lease_user(user)
            try:
                entry = pwd.getpwnam(user)
            except KeyError:
                os.close(lease)
                raise SandboxError(f"sandbox user {user!r} does not exist: run setup.sh (as root) first") from None
            uid, gid = entry.pw_uid, entry.pw_gid
        return cls(uid, gid, memory_mb << 20, cpu_seconds, max_processes, max_file_mb << 20, output_limit_kb << 10, lease)


    @classmethod
    def from_config(cls, sandbox: SandboxSpec, user: str | None = None) -> "SandboxPolicy":
        """The limits of grading.yaml. The user may be overridden: a regrade slot passes
        one, and ``GRADER_SANDBOX_USER`` serves local simulations run side by side."""
        chosen = user or os.environ.get(SANDBOX_USER_ENV) or sandbox.user
        return cls.for_user(chosen, sandbox.memory_mb, sandbox.cpu_seconds, sandbox.max_processes, sandbox.max_file_mb, sandbox.output_limit_kb)


SANDBOX_USER_ENV = "GRADER_SANDBOX_USER"
SIBLINGS = 8  # setup.sh creates USER, USER1 .. USER7
LEASE_DIR = "/run/lock" if os.path.isdir("/run/lock") else "/tmp"
LEASE_WAIT_SECONDS = 300.0  # for a free sandbox user, when more gradings run here than users exist
LEASE_POLL_SECONDS = 0.2


def lease_user(preferred: str, wait_seconds: float = LEASE_WAIT_SECONDS) -> tuple[str, int]:
    """Lock a sandbox user for this grading: ``preferred`` if free, else the first free
    sibling that exists; when every one is held by another grading on this machine, try
    again until ``wait_seconds`` have passed, then give up (a bounded wait, never a hang)."""
    candidates = [preferred] + [f"{preferred}{i}" for i in range(1, SIBLINGS)]
    deadline = time.monotonic() + wait_seconds
    while True:
        for name in candidates:
            if name != preferred:
                try:
                    pwd.getpwnam(name)
                except KeyError:
                    continue
            fd = os.open(os.path.join(LEASE_DIR, f"autograder-sandbox-{name}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return name, fd
            except BlockingIOError:
                os.close(fd)
        if time.monotonic() >= deadline:
            raise SandboxError(f"every sandbox user ({preferred} and its numbered siblings) stayed busy with other gradings for {wait_seconds:g} s")
        time.sleep(LEASE_POLL_SECONDS)


def _vm_size() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _read_small(path: str) -> bytes | None:
    """A /proc file's first page, or None if the process is gone (binary: scans are hot)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        return os.read(fd, 8192)
    except OSError:
        return None
    finally:
        os.close(fd)


def _status_field(status: bytes, name: bytes) -> bytes:
    """The first word of ``name:`` in a /proc status text (b"" if absent)."""
    start = status.find(b"\n" + name + b":")
    if start < 0:
        return b""
    words = status[start + len(name) + 2 : status.find(b"\n", start + 1)].split()
    return words[0] if words else b""


def _has_live_thread(pid: str) -> bool:
    """A zombie leader may head threads that still run (its main thread exited alone):
    such a process is alive, and SIGKILL to its pid ends them all."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return False
    for task in tasks:
        status = _read_small(f"/proc/{pid}/task/{task}/status")
        if status is not None and _status_field(status, b"State") not in (b"Z", b"X"):
            return True
    return False


def _pids_of_uid(uid: int) -> list[int]:
    """Live processes whose real uid is ``uid``: not zombies, unless a zombie leader still
    has a running thread."""
    pids = []
    wanted = str(uid).encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        status = _read_small(f"/proc/{entry}/status")
        if status is None or _status_field(status, b"Uid") != wanted:
            continue
        if _status_field(status, b"State") not in (b"Z", b"X") or _has_live_thread(entry):
            pids.append(int(entry))
    return pids


def kill_user_processes(uid: int) -> None:
    """SIGKILL every process of the sandbox user, repeatedly, until none is left."""
    for _ in range(200):
        pids = _pids_of_uid(uid)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.002)


SYSV_IPC = (("shm", "shmid"), ("sem", "semid"), ("msg", "msqid"))
IPC_RMID = 0


SHARED_TEMP_FOLDERS = ("/dev/shm", "/tmp", "/var/tmp")  # world-writable: what a worker may leave


def remove_user_leftovers(uid: int) -> None:
    """Remove the SysV IPC objects (of this IPC namespace) and the files in the shared
    temporary folders that ``uid`` owns or created: where the kernel refused workers
    their own IPC namespace or mount namespace, what a worker left there must reach
    neither a worker of another kind nor the next submission."""
    for kind, id_column in SYSV_IPC:
        try:
            with open(f"/proc/sysvipc/{kind}", encoding="ascii") as table:
                header = table.readline().split()
                rows = [dict(zip(header, line.split())) for line in table]
        except OSError:
            continue
        for row in rows:
            if str(uid) not in (row.get("uid"), row.get("cuid")) or not row.get(id_column, "").isdigit():
                continue
            ident = int(row[id_column])
            if kind == "shm":
                LIBC.shmctl(ident, IPC_RMID, None)
            elif kind == "sem":
                LIBC.semctl(ident, 0, IPC_RMID)
            else:
                LIBC.msgctl(ident, IPC_RMID, None)
    for folder in SHARED_TEMP_FOLDERS:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.stat(follow_symlinks=False).st_uid != uid:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    os.unlink(entry.path)
            except OSError:
                continue


def _close_fds(keep: set[int]) -> None:
    for fd in map(int, os.listdir("/proc/self/fd")):
        if fd not in keep and fd > 2:
            try:
                os.close(fd)
            except OSError:
                pass


def _describe_exit(status: int | None) -> str:
    if status is None:
        return "ended"
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        hints = {
            signal.SIGKILL: " (out of memory, or killed)",
            signal.SIGXCPU: " (CPU time limit exceeded)",
            signal.SIGXFSZ: " (file size limit exceeded)",
            signal.SIGSEGV: " (segmentation fault)",
        }
        return f"was killed by signal {signal.Signals(sig).name}{hints.get(sig, '')}"
    return f"exited with status {os.WEXITSTATUS(status)} before returning a result"


# ------------------------------------------------------------------ worker side

def _worker(policy: SandboxPolicy, job: dict, req_r: int, resp_w: int, out_w: int, setup_w: int, stack_w: int) -> None:
    """In the forked worker: isolate, limit, drop privileges, report, serve. Never returns."""
    code = 0
    try:
        os.setsid()
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(out_w, 1)
        os.dup2(out_w, 2)
        _close_fds({0, 1, 2, req_r, resp_w, setup_w, stack_w})
        limits = {
            resource.RLIMIT_AS: _vm_size() + policy.memory_bytes,
            resource.RLIMIT_CPU: policy.cpu_seconds,
            resource.RLIMIT_FSIZE: policy.max_file_bytes,
            resource.RLIMIT_CORE: 0,
            resource.RLIMIT_NOFILE: 256,
        }
        if policy.uid is not None:
            limits[resource.RLIMIT_NPROC] = policy.max_processes
        try:
            # If memory runs out, the kernel should pick the submission, not the grader.
            with open("/proc/self/oom_score_adj", "w", encoding="ascii") as oom:
                oom.write("1000")
        except OSError:
            pass
        for which, value in limits.items():
            resource.setrlimit(which, (value, value))
        scratch = job["scratch"]
        refused = _confine(policy, job)
        os.chdir(scratch)
        os.environ.clear()
        os.environ.update({"HOME": scratch, "TMPDIR": scratch, "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"})
        os.write(setup_w, json.dumps({"refused": refused}).encode())
        os.close(setup_w)
        sys.stdout = open(1, "w", buffering=1, closefd=False)
        sys.stderr = open(2, "w", buffering=1, closefd=False)
        sys.stdin = open(0, "r", closefd=False)
        serve(req_r, resp_w, job["submission"], tuple(job["keep_prefixes"]), stack_w)
    except PrivateViewError as exc:
        code = 71
        try:
            os.write(setup_w, json.dumps({"fatal": str(exc)}).encode())
        except OSError:
            pass
    except BaseException:  # anything escaping the loop is reported as a crash by the harness
        code = 70
    finally:
        os._exit(code)


def _confine(policy: SandboxPolicy, job: dict) -> list[str]:
    """As root: private filesystem view, IPC, network and PID namespaces; always: the
    system-call filter; then drop to the sandbox user. Returns what the kernel refused."""
    refused: list[str] = []
    if policy.uid is not None and policy.gid is not None:
        view = ViewRequest(job["submission"], job["scratch"], tuple(job["keep_prefixes"]), policy.uid, policy.gid, policy.scratch_bytes)
        problem = enter_private_view(view)
        if problem is not None:
            refused.append(problem)
        refused += enter_namespaces()
        if problem is None:
            pid_problem = _enter_pid_namespace()
        else:  # mounting a /proc of its own outside a mount namespace would replace the host's
            pid_problem = "PID namespace not used: it needs the worker's own mount namespace for its /proc"
        if pid_problem is not None:
            refused.append(pid_problem)
    problem = install_syscall_filter()
    if problem is not None:
        refused.append(problem)
    if policy.uid is not None and policy.gid is not None:
        os.setgroups([])
        os.setgid(policy.gid)
        os.setuid(policy.uid)
    return refused


def _enter_pid_namespace() -> str | None:
    """Fork into a new PID namespace: the child goes on as the worker (the namespace's
    first process, with a /proc of its own); this process stays behind as its supervisor
    and never returns. None when the worker is in its namespace, else why not."""
    problem = unshare_pid_namespace()
    if problem is not None:
        return problem
    child = os.fork()
    if child != 0:
        _supervise(child)
    mount_own_proc()
    return None


def _supervise(child: int) -> NoReturn:
    """Outside the worker's PID namespace, holding none of its pipes (so a dead worker still
    shows EOF): wait for it and end the same way, so that the zygote reads the worker's own
    exit (a signal, a status) from this process's."""
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.closerange(3, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
    status = 0
    while True:
        try:
            _, status = os.waitpid(child, 0)
            break
        except InterruptedError:
            continue
        except ChildProcessError:
            break
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
    os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 70)


# ------------------------------------------------------------------ zygote side

def _kill_sessions(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def reap(pid: int, deadline: float) -> tuple[bool, int | None]:
    """Wait for child ``pid`` until ``deadline`` (never longer): (reaped, status).

    A child can stay unreapable for as long as another process traces it (its zombie
    is reported to the tracer first), so no wait of the harness ever blocks."""
    while True:
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return True, None
        if done:
            return True, status
        if time.monotonic() >= deadline:
            return False, None
        time.sleep(0.002)


@dataclass
class _ZygoteState:
    """The zygote's own bookkeeping: live workers (with their scratch folders) and
    children killed but not reaped yet."""

    policy: SandboxPolicy
    children: dict[int, str]
    strays: set[int]
    spawned: int = 0

    def sweep(self) -> None:
        for pid in list(self.strays):
            if reap(pid, 0.0)[0]:
                self.strays.discard(pid)

    def end(self, pids: list[int]) -> dict[int, int | None]:
        """Kill ``pids`` with their sessions and everything of the sandbox user (tracers
        included), then reap them within REAP_SECONDS; their scratch folders go too."""
        _kill_sessions(pids)
        statuses: dict[int, int | None] = {pid: None for pid in pids}
        # Reaped first (a killed worker is gone within milliseconds), so the sweep of the
        # user's processes below usually takes one scan of /proc instead of one every few
        # milliseconds while the worker exits. A traced worker cannot be reaped before its
        # tracer dies: the sweep kills the tracer, and the second wait reaps it.
        waiting = [pid for pid in pids if pid in self.children]

        def reap_within(seconds: float) -> None:
            deadline = time.monotonic() + seconds
            for pid in list(waiting):
                reaped, statuses[pid] = reap(pid, deadline)
                if reaped:
                    waiting.remove(pid)

        reap_within(FIRST_REAP_SECONDS)
        if self.policy.uid is not None:
            kill_user_processes(self.policy.uid)
        reap_within(REAP_SECONDS)
        for pid in pids:
            if pid in waiting:
                self.strays.add(pid)
            if pid in self.children:
                shutil.rmtree(self.children.pop(pid), ignore_errors=True)
        return statuses

    def make_scratch(self, root: str) -> str:
        """A scratch folder for one worker only, owned by the sandbox user."""
        self.spawned += 1
        path = os.path.join(root, f"worker-{self.spawned}")
        os.mkdir(path, 0o700)
        if self.policy.uid is not None and self.policy.gid is not None:
            os.chown(path, self.policy.uid, self.policy.gid)
        return path


def _read_setup(fd: int, deadline: float) -> dict:
    """The worker's report on its confinement, written before any submitted code runs."""
    data = bytearray()
    while len(data) < MAX_CONTROL_MESSAGE:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            break
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
    try:
        report = json.loads(bytes(data))
    except ValueError:
        return {}
    return report if isinstance(report, dict) else {}


def _serve_zygote(policy: SandboxPolicy, control: socket.socket) -> None:
    """The zygote's loop: spawn a worker, finish one, or finish them all."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    state = _ZygoteState(policy, {}, set())
    while True:
        try:
            data = control.recv(MAX_CONTROL_MESSAGE)
        except OSError:
            return
        if not data:
            return
        state.sweep()
        command = json.loads(data)
        op = command["op"]
        if op == "spawn":
            scratch = state.make_scratch(command["scratch_root"])
            job = dict(command, scratch=scratch)
            req_r, req_w = os.pipe()
            resp_r, resp_w = os.pipe()
            out_r, out_w = os.pipe()
            setup_r, setup_w = os.pipe()
            stack_r, stack_w = os.pipe()
            pid = os.fork()
            if pid == 0:
                control.close()
                for fd in (req_w, resp_r, out_r, setup_r, stack_r):
                    os.close(fd)
                _worker(policy, job, req_r, resp_w, out_w, setup_w, stack_w)
            for fd in (req_r, resp_w, out_w, setup_w, stack_w):
                os.close(fd)
            state.children[pid] = scratch
            report = _read_setup(setup_r, time.monotonic() + SETUP_SECONDS)
            os.close(setup_r)
            reply = {"pid": pid, "refused": report.get("refused", []), "fatal": report.get("fatal")}
            socket.send_fds(control, [json.dumps(reply).encode()], [req_w, resp_r, out_r, stack_r])
            for fd in (req_w, resp_r, out_r, stack_r):
                os.close(fd)
        elif op == "finish":
            pid = int(command["pid"])
            control.send(json.dumps({"status": state.end([pid]).get(pid)}).encode())
        elif op == "finish_all":
            state.end(sorted(state.children))
            if policy.uid is not None:
                remove_user_leftovers(policy.uid)
            control.send(b"{}")


@dataclass
class WorkerHandle:
    """The trusted ends of one worker's pipes."""

    pid: int
    requests: int
    answers: int
    output: int
    stack: int | None = None  # where the worker's stack goes just before a timeout
    not_after: float | None = None  # time.monotonic() past which no probe runs (the budget)

    def close(self) -> None:
        for fd in (self.requests, self.answers, self.output, self.stack):
            if fd is None:
                continue
            try:
                os.close(fd)
            except OSError:
                pass

    def alive(self) -> bool:
        """A worker that died between probes shows EOF on its answer pipe."""
        ready, _, _ = select.select([self.answers], [], [], 0)
        return not ready

    def call(self, payload: bytes, timeout: float, output_limit: int) -> CallResult:
        """Send one request and collect its answer, both within ``timeout`` seconds.

        The request is written without blocking (the trusted end is non-blocking): a
        worker that shrinks its pipe and stops reading must not stall the harness before
        the probe's deadline even started."""
        started = time.monotonic()
        deadline = started + timeout
        if self.not_after is not None and self.not_after < deadline:
            deadline = self.not_after
        pending = memoryview(wire.frame(payload))
        answer = bytearray()
        output = bytearray()
        expected: int | None = None
        fds = [self.answers, self.output]
        while True:
            if expected is not None and len(answer) >= expected:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                what = "did not read its request" if pending else "did not finish"
                limit = f"{timeout:g} s" if deadline - started >= timeout else "the grading's time budget"
                return self._result("timeout", answer, output, f"{what} within {limit}", output_limit, self._stack())
            ready, writable, _ = select.select(fds, [self.requests] if pending else [], [], remaining)
            if writable:
                try:
                    pending = pending[os.write(self.requests, pending):]
                except BlockingIOError:
                    pass
                except OSError:  # the worker is gone (EPIPE)
                    return self._result("crashed", answer, output, "could not receive the request", output_limit)
            for fd in ready:
                chunk = os.read(fd, 1 << 16)
                if fd == self.output:
                    if not chunk:
                        fds = [self.answers]
                    _keep(output, chunk, output_limit)
                    continue
                if not chunk:
                    return self._result("crashed", answer, output, "", output_limit)
                answer += chunk
                body = answer[len(IMPORTED_MARK):] if answer.startswith(IMPORTED_MARK) else answer
                if expected is None and len(body) >= wire.FRAME_HEADER:
                    size = wire.frame_length(body)
                    if size > wire.MAX_MESSAGE_BYTES:
                        return self._result("oversized", answer, output, "sent more data than allowed", output_limit)
                    expected = len(answer) - len(body) + wire.FRAME_HEADER + size
        if pending:
            return self._result("oversized", answer, output, "answered before reading its whole request", output_limit)
        if expected is not None and len(answer) > expected:
            return self._result("oversized", answer, output, "wrote unexpected data on the answer channel", output_limit)
        self._drain(output, output_limit)
        return self._result("answered", answer, output, "", output_limit)

    def _drain(self, output: bytearray, limit: int) -> None:
        """Output already written when the answer came; bounded, since a process the
        submission forked may keep writing."""
        for _ in range(DRAIN_READS):
            ready, _, _ = select.select([self.output], [], [], 0)
            if not ready:
                return
            chunk = os.read(self.output, 1 << 16)
            if not chunk:
                return
            _keep(output, chunk, limit)

    def _stack(self) -> str:
        """What the worker's watchdog wrote shortly before the deadline (its stack), bounded."""
        if self.stack is None:
            return ""
        data = bytearray()
        while len(data) < STACK_LIMIT:
            try:
                chunk = os.read(self.stack, STACK_LIMIT)
            except (BlockingIOError, OSError):
                break
            if not chunk:
                break
            data += chunk
        return bytes(data[:STACK_LIMIT]).decode("utf-8", errors="replace")

    @staticmethod
    def _result(status: str, answer: bytearray, output: bytearray, detail: str, limit: int, stack: str = "") -> CallResult:
        phase = "probe" if answer.startswith(IMPORTED_MARK) else "import"
        body = bytes(answer[len(IMPORTED_MARK):] if phase == "probe" else answer)
        text = output[:limit].decode("utf-8", errors="replace")
        if len(output) > limit:
            text += "\n[... output truncated ...]"
        return CallResult(status, phase, detail, text, wire.split_frame(body) if status == "answered" else b"", stack)


def _keep(output: bytearray, chunk: bytes, limit: int) -> None:
    """Keep at most ``limit`` bytes of output, plus one to know that more came."""
    if len(output) < limit + 1:
        output += chunk[: limit + 1 - len(output)]


class Zygote:
    """Handle on the zygote process, owned by one grader (one or many submissions)."""

    def __init__(self, pid: int, control: socket.socket, policy: SandboxPolicy) -> None:
        self.pid = pid
        self._control = control
        self.policy = policy
        self._logged: set[str] = set()
        self.not_after: float | None = None
        # Workers run as one sandbox user, which sees its own processes in /proc whatever
        # the namespaces: workers of different kinds must never run side by side.
        self.exclusive_kinds = True

    def set_deadline(self, not_after: float | None) -> None:
        """No probe of a worker spawned from now on runs past ``not_after`` (monotonic):
        the time budget of the submission being graded."""
        self.not_after = not_after

    @classmethod
    def start(cls, policy: SandboxPolicy, huge_pages: bool = False) -> "Zygote":
        """Fork now: call this before loading any expected value or hidden fixture.
        ``huge_pages``: make each worker's fork and exit cheaper, for a zygote that will
        fork many (see hugepages.py)."""
        import torch

        from autograder.worker.warmup import warm_up

        torch.set_num_threads(1)
        warm_up()
        parent_end, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                parent_end.close()
                devnull = os.open(os.devnull, os.O_RDWR)
                for fd in (0, 1, 2):
                    os.dup2(devnull, fd)
                _close_fds({0, 1, 2, child_end.fileno()})
                # Everything loaded so far is permanent: keep the collector from walking
                # (and so copying) those pages in every forked worker.
                gc.collect()
                gc.freeze()
                if huge_pages:
                    collapse_resident_heap()
                _serve_zygote(policy, child_end)
            except BaseException:  # the zygote must never fall back into the caller's code
                code = 70
            finally:
                os._exit(code)
        child_end.close()
        return cls(pid, parent_end, policy)

    def _exchange(self, command: dict, fds: int = 0) -> tuple[dict, list[int]]:
        """One command and its reply, within REPLY_SECONDS. A zygote that does not answer
        in time is out of step for good: it is killed, and the grading fails loudly."""
        try:
            self._control.settimeout(REPLY_SECONDS)
            self._control.send(json.dumps(command).encode())
            data, received, _, _ = socket.recv_fds(self._control, MAX_CONTROL_MESSAGE, max(fds, 1))
        except OSError as exc:
            self._kill()
            raise SandboxError(f"the worker supervisor stopped answering: {exc or type(exc).__name__}") from None
        if not data:
            raise SandboxError("the worker supervisor stopped unexpectedly")
        return json.loads(data), received

    def _ask(self, command: dict) -> dict:
        reply, stray = self._exchange(command)
        for fd in stray:
            os.close(fd)
        return reply

    def _kill(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def spawn(self, submission: str, scratch_root: str, keep_prefixes: tuple[str, ...]) -> WorkerHandle:
        """A new worker for ``submission``; its own scratch folder is made in ``scratch_root``."""
        command = {"op": "spawn", "submission": submission, "scratch_root": scratch_root, "keep_prefixes": list(keep_prefixes)}
        reply, fds = self._exchange(command, 4)
        if len(fds) != 4:
            for fd in fds:
                os.close(fd)
            raise SandboxError("the worker supervisor did not start a worker")
        handle = WorkerHandle(int(reply["pid"]), *fds, not_after=self.not_after)
        os.set_blocking(handle.requests, False)
        os.set_blocking(fds[3], False)
        if reply.get("fatal"):
            self.finish(handle)
            raise SandboxError(f"the worker could not be confined: {reply['fatal']}")
        self._log_refusals([str(r) for r in reply.get("refused", [])])
        return handle

    def _log_refusals(self, refused: list[str]) -> None:
        """Say once per grading, in its log, which protection the kernel refused."""
        for reason in refused:
            if reason not in self._logged:
                self._logged.add(reason)
                log(f"sandbox: {reason}; the other protections still hold")

    def finish(self, worker: WorkerHandle) -> str:
        """Kill one worker (with everything of the sandbox user) and say how it had ended."""
        worker.close()
        return _describe_exit(self._ask({"op": "finish", "pid": worker.pid}).get("status"))

    def finish_all(self) -> None:
        """Kill every worker and everything the sandbox user started."""
        self._ask({"op": "finish_all"})

    def close(self) -> None:
        try:
            self.finish_all()  # the zygote sweeps the sandbox user's processes
            swept = True
        except SandboxError:
            swept = False
        self._control.close()
        if not reap(self.pid, time.monotonic() + ZYGOTE_EXIT_SECONDS)[0]:
            self._kill()
            reap(self.pid, time.monotonic() + ZYGOTE_EXIT_SECONDS)
        if not swept and self.policy.uid is not None:
            kill_user_processes(self.policy.uid)
            remove_user_leftovers(self.policy.uid)
        if self.policy.lease is not None:
            os.close(self.policy.lease)  # the user is free for another grading
