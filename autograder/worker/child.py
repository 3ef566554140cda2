"""The body of a worker process: serve probes for one submission module.

Runs after the zygote forked and dropped privileges; its only channel back is a pipe
that carries data-only messages, one per request."""
from __future__ import annotations

import faulthandler
import importlib
import os
import random
import sys
import traceback
from types import ModuleType

import numpy as np
import torch

from autograder import wire
from autograder.worker.probes import table, watch_calls

IMPORTED_MARK = b"I"


NO_DEBUGGER = (
    "a debugger was started (breakpoint() or pdb.set_trace()), but the tests run your code in a separate "
    "process without a terminal: remove it, and debug by running your function yourself (print() output is shown here)"
)


def _no_debugger(*args: object, **kwargs: object) -> None:
    """``breakpoint()`` in the worker: there is no terminal to debug in, say so."""
    raise RuntimeError(NO_DEBUGGER)


def _student_traceback(exc: BaseException, submission_dir: str) -> str:
    """The exception with only the frames in the student's files: the harness's frames
    would teach nothing and its files are unreadable here anyway. A frame repeated in a
    row (a debugger's trace function re-enters the frame it stopped in) is shown once."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.startswith(submission_dir)]
    unique = [f for i, f in enumerate(frames) if i == 0 or (f.filename, f.lineno, f.name) != (frames[i - 1].filename, frames[i - 1].lineno, frames[i - 1].name)]
    lines = [f'  File "{os.path.basename(f.filename)}", line {f.lineno}, in {f.name}\n    {f.line or ""}' for f in unique[-4:]]
    head = f"{type(exc).__name__}: {exc}"
    if type(exc).__name__ == "BdbQuit":
        head = f"BdbQuit: {NO_DEBUGGER}"
    return "\n".join([head[:2000]] + lines)


def _isolate_imports(submission_dir: str, keep_prefixes: tuple[str, ...]) -> None:
    """Only the submission folder and the interpreter's own library stay importable."""
    sys.path[:] = [submission_dir] + [p for p in sys.path if p and p.startswith(keep_prefixes)]
    importlib.invalidate_caches()


# Of a probe's timeout, when the watchdog writes the worker's stack (the harness kills the
# worker at the timeout itself and reads it then): enough margin for a busy machine.
STACK_AT = 0.9


def serve(requests: int, answers: int, submission_dir: str, keep_prefixes: tuple[str, ...], stack: int | None = None) -> None:
    """Answer requests until the harness closes the pipe. Each request is framed as its
    sequence number, its timeout (ms) and its payload; with ``stack``, a watchdog thread
    writes the worker's Python stack there shortly before the timeout, so that a timeout
    can say where the student's code was."""
    table()  # the assignment's probe code is imported now, before the path is narrowed
    _isolate_imports(submission_dir, keep_prefixes)
    sys.breakpointhook = _no_debugger
    owner = os.getpid()
    while True:
        try:
            frame = wire.read_frame(requests)
        except EOFError:
            return
        timeout = int.from_bytes(frame[8:16], "big") / 1000.0
        if stack is not None and timeout > 0:
            faulthandler.dump_traceback_later(timeout * STACK_AT, repeat=False, file=stack)
        try:
            run_job(frame[16:], answers, submission_dir, int.from_bytes(frame[:8], "big"), owner)
        finally:
            if stack is not None:
                faulthandler.cancel_dump_traceback_later()


def run_job(payload: bytes, response_fd: int, submission_dir: str, sequence: int, owner: int) -> None:
    """Decode the request, import the modules, run the probe and write one answer.

    A process the student's code forked returns here too: it must not answer (nor
    read the next request), so anything but the worker itself (``owner``) leaves at once."""
    inputs, request = wire.decode(payload)
    seed = int(request["seed"])
    modules: dict[str, ModuleType] = {}
    try:
        for name in request["modules"]:
            modules[name] = importlib.import_module(name)
    except BaseException as exc:  # the student's import may raise anything, SystemExit included
        _leave_unless(owner)
        _answer(response_fd, {"status": "import_error", "message": _student_traceback(exc, submission_dir), "seq": sequence})
        return
    _leave_unless(owner)
    os.write(response_fd, IMPORTED_MARK)
    # The CPU generator only: torch.manual_seed also queues a lazy CUDA seeding with a
    # formatted stack on every call (about a millisecond, and a list that grows per probe).
    torch.random.default_generator.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed % (2**32))
    params = request["params"]
    called: set[str] = set()
    try:
        with watch_calls(modules.get(str(params.get("module", ""))), list(params.get("watch", [])), called):
            tensors, values = table()[request["probe"]](modules, params, inputs)
        values["called"] = sorted(called)
    except BaseException as exc:  # a probe fails with whatever the student's code raised
        _leave_unless(owner)
        _answer(response_fd, {"status": "error", "message": _student_traceback(exc, submission_dir), "seq": sequence, "values": {"called": sorted(called)}})
        return
    _leave_unless(owner)
    _answer(response_fd, {"status": "ok", "values": values, "seq": sequence}, tensors)


def _leave_unless(owner: int) -> None:
    if os.getpid() != owner:
        os._exit(0)


def _answer(fd: int, header: dict, tensors: dict[str, torch.Tensor] | None = None) -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # a student may have replaced or closed the stream
            pass
    try:
        payload = wire.encode(tensors or {}, header)
    except Exception as exc:  # e.g. a tensor subclass that refuses to be copied
        payload = wire.encode({}, {"status": "error", "message": f"could not send results: {type(exc).__name__}: {exc}", "seq": header.get("seq")})
    wire.write_frame(fd, payload)
