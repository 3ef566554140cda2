"""What every kind of worker pool offers the grading run: the sandbox's zygote and the portable
workers both implement it, and both import it from here, below them."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

# Same variable as sandbox.SANDBOX_USER_ENV: local simulations pick another sandbox user.
SANDBOX_USER_ENV = "GRADER_SANDBOX_USER"


@dataclass(frozen=True)
class CallResult:
    """What the harness saw of one probe: how it ended and the bytes of the answer."""

    status: str  # "answered" | "timeout" | "crashed" | "oversized"
    phase: str  # "import" while the modules were being imported, then "probe"
    detail: str
    output: str
    answer: bytes
    stack: str = ""  # a timed-out worker's own stack, as its watchdog wrote it before the deadline


class SandboxError(RuntimeError):
    """The sandbox itself cannot work (missing user, dead zygote): a harness failure."""


class WorkerChannel(Protocol):
    """The trusted end of one worker process."""

    def alive(self) -> bool: ...

    def call(self, payload: bytes, timeout: float, output_limit: int) -> CallResult: ...

    def close(self) -> None: ...


class WorkerPool(Protocol):
    """What SubmissionRunner and the plugin use of the zygote (or its portable stand-in)."""

    policy: Any  # .uid, .gid (None when no sandbox user is used) and .output_limit

    def spawn(self, submission: str, scratch: str, keep_prefixes: tuple[str, ...]) -> Any: ...

    def finish(self, worker: Any) -> str: ...

    def finish_all(self) -> None: ...

    def close(self) -> None: ...
