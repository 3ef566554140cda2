"""A local-mode worker process: ``python -m autograder.worker.portable_main``.

Started by ``autograder/sandbox/portable.py`` with three pipes. Its first request (a frame on
stdin) says which submission to serve; it then imports torch, says it is ready and
serves probes with the zygote workers' own loop (``child.serve``). Before any student
code runs, the request and answer channels move to private descriptors: the
student's ``print`` (and any C-level write to fd 1 or 2) lands in the output pipe,
and reading stdin gets end-of-file instead of the next request."""
from __future__ import annotations

import json
import os
import site
import sys
import traceback

READY_MARK = b"R"  # written once, when torch is imported and requests are read


def _private_channels() -> tuple[int, int]:
    """Move requests off fd 0 and answers off fd 1; stdin becomes empty, stdout joins stderr."""
    requests, answers = os.dup(0), os.dup(1)
    if sys.platform == "win32":
        import msvcrt

        for fd in (requests, answers):
            msvcrt.setmode(fd, os.O_BINARY)
    empty = os.open(os.devnull, os.O_RDONLY)
    os.dup2(empty, 0)
    os.close(empty)
    os.dup2(2, 1)
    sys.stdin = open(0, "r", closefd=False)
    sys.stdout = open(1, "w", buffering=1, closefd=False, encoding="utf-8", errors="replace")
    sys.stderr = open(2, "w", buffering=1, closefd=False, encoding="utf-8", errors="replace")
    return requests, answers


def _limit(cpu_seconds: int, max_file_bytes: int) -> None:
    """The sandbox's CPU, file-size and core limits where the OS has them (not on Windows)."""
    try:
        import resource
    except ImportError:
        return
    for which, value in ((resource.RLIMIT_CPU, cpu_seconds), (resource.RLIMIT_FSIZE, max_file_bytes), (resource.RLIMIT_CORE, 0)):
        try:
            resource.setrlimit(which, (value, value))
        except (ValueError, OSError):  # e.g. a hard limit already lower
            pass


def main() -> int:
    requests, answers = _private_channels()
    from autograder import wire

    job = json.loads(wire.read_frame(requests))
    _limit(int(job["cpu_seconds"]), int(job["max_file_bytes"]))
    import torch

    from autograder.worker.child import serve
    from autograder.worker.warmup import warm_up

    torch.set_num_threads(1)  # as in the zygote: the same summation order, the same values
    # As in the zygote, torch's lazy set-up happens now, not in the first probe's time
    # (and what it prints, e.g. cpuinfo's warnings without /proc, is not the student's output).
    warm_up()
    os.chdir(job["scratch"])
    # Packages installed with ``pip install --user`` stay importable, as for the student.
    keep = tuple(job["keep_prefixes"]) + tuple(p for p in [site.getusersitepackages()] if p and os.path.isdir(p))
    stack = os.open(job["stack_file"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0), 0o600)
    os.write(answers, READY_MARK)
    serve(requests, answers, job["submission"], keep, stack)
    return 0


if __name__ == "__main__":
    try:
        code = main()
    except BaseException:  # the harness reports the crash; the traceback is its detail
        traceback.print_exc()
        code = 70
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)
