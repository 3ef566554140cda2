"""Which worker processes a grading gets, and what both kinds share.

On Gradescope (and whenever the grader runs as root on Linux with the sandbox user
present) the submission runs in the full sandbox of ``sandbox/zygote.py``: a zygote forked
before any expected value is loaded, workers that drop to the sandbox user. A student
grading their own code on their own machine is not an attack, and there the full
sandbox often cannot work: no root (a laptop), root without the sandbox user (Colab,
a container), or no ``fork`` / ``AF_UNIX SOCK_SEQPACKET`` / ``/proc`` (macOS,
Windows). There the graded code runs in ``sandbox/portable.py``'s workers instead: still a
separate process per worker, with the same data-only messages, timeouts and crash
handling, and the grading says so in one line. On Gradescope the downgrade is never
taken: a missing sandbox user there stays a grader error."""
from __future__ import annotations

import importlib.util
import os
import socket
from dataclasses import dataclass

from autograder.config import SandboxSpec
from autograder.sandbox.pool import SANDBOX_USER_ENV, WorkerPool

# What the full sandbox needs of the platform, beyond root and the sandbox user.
SANDBOX_MODULES = ("fcntl", "pwd", "resource")


@dataclass(frozen=True)
class WorkerMode:
    """The kind of workers chosen, and why (for the one line a local grading prints)."""

    sandboxed: bool
    reason: str = ""

    @property
    def line(self) -> str:
        if self.sandboxed:
            return ""
        return (
            f"local mode: {self.reason}, so your code runs in a plain separate process of your own user "
            "(same tests, same verdicts; the Gradescope sandbox is not used)"
        )


def missing_platform_features() -> list[str]:
    """What of fork, AF_UNIX SOCK_SEQPACKET, /proc and the POSIX modules this system lacks."""
    missing = [name for name in SANDBOX_MODULES if importlib.util.find_spec(name) is None]
    if not hasattr(os, "fork"):
        missing.append("os.fork")
    if not (hasattr(socket, "AF_UNIX") and hasattr(socket, "SOCK_SEQPACKET") and hasattr(socket, "send_fds")):
        missing.append("AF_UNIX SOCK_SEQPACKET sockets")
    else:
        try:
            pair = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        except OSError:  # macOS defines the constant but has no such sockets
            missing.append("AF_UNIX SOCK_SEQPACKET sockets")
        else:
            for end in pair:
                end.close()
    if not os.path.isfile("/proc/self/status"):
        missing.append("/proc")
    return missing


def choose_mode(sandbox: SandboxSpec, user: str | None = None, required: bool = False) -> WorkerMode:
    """The full sandbox when it is required (Gradescope) or can work; otherwise local mode."""
    if required:
        return WorkerMode(True)
    missing = missing_platform_features()
    if missing:
        listed = missing[0] if len(missing) == 1 else f"{', '.join(missing[:-1])} and {missing[-1]}"
        return WorkerMode(False, f"this system lacks {listed}")
    if os.geteuid() != 0:
        return WorkerMode(False, "not running as root, so there is no sandbox user to switch to")
    import pwd

    name = user or os.environ.get(SANDBOX_USER_ENV) or sandbox.user
    try:
        pwd.getpwnam(name)
    except KeyError:
        return WorkerMode(False, f"running as root without the sandbox user {name!r} (Gradescope's image has it)")
    return WorkerMode(True)


def start_workers(sandbox: SandboxSpec, user: str | None = None, required: bool = False) -> tuple[WorkerPool, WorkerMode]:
    """Start the workers' supervisor. Call before loading any expected value: the zygote
    forks here, with nothing secret in its memory."""
    mode = choose_mode(sandbox, user, required)
    if mode.sandboxed:
        from autograder.sandbox.zygote import SandboxPolicy, Zygote

        return Zygote.start(SandboxPolicy.from_config(sandbox, user)), mode
    from autograder.sandbox.portable import PortablePool

    return PortablePool.start(sandbox), mode
