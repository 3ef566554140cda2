"""The trusted side of a probe: send inputs to a fresh worker, get validated plain
tensors back, and turn every way a worker can fail into an Observation."""
from __future__ import annotations

import builtins
import hashlib
import json
import os
import re
import site
import sys
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from autograder import wire
from autograder.paths import KitLayout
from autograder.records import Observation, ProbeRequest
from autograder.grading.submission import StagedSubmission
from autograder.text import clean_json, clean_text

if TYPE_CHECKING:  # the sandbox needs Linux; a local grading may use portable workers instead
    from autograder.sandbox.zygote import WorkerHandle, Zygote


def interpreter_prefixes() -> tuple[str, ...]:
    """Where the interpreter and its packages live: kept importable in the worker."""
    prefixes = {sys.prefix, sys.base_prefix, sys.exec_prefix, *site.getsitepackages()}
    return tuple(sorted(p for p in prefixes if p))


def substitute_source(name: str) -> str | None:
    """Correct code for a graded callee, read only when a caller's test needs it.

    The student kit ships without these files (they would be solutions): locally the
    student's own callee is used instead."""
    path = KitLayout.here().substitutes_dir / f"{name}.py"
    return path.read_text(encoding="utf-8") if path.is_file() else None


class PayloadCache:
    """Encoded requests by content, least recently used first out, within a byte budget:
    a regrade reuses the fixture-based ones, while per-submission inputs pass through."""

    def __init__(self, budget_bytes: int = 64 << 20) -> None:
        self.budget = budget_bytes
        self._entries: OrderedDict[tuple, tuple[bytes, tuple[str, ...]]] = OrderedDict()
        self._bytes = 0

    def get(self, key: tuple) -> tuple[bytes, tuple[str, ...]] | None:
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def put(self, key: tuple, entry: tuple[bytes, tuple[str, ...]]) -> None:
        self._entries[key] = entry
        self._bytes += len(entry[0])
        while self._bytes > self.budget and len(self._entries) > 1:
            _, (old, _) = self._entries.popitem(last=False)
            self._bytes -= len(old)


class SubmissionRunner:
    """Runs probes against one staged submission through the zygote."""

    def __init__(self, zygote: Zygote, staged: StagedSubmission, payload_cache: "PayloadCache | None" = None) -> None:
        self.zygote = zygote
        self.staged = staged
        self._prefixes = interpreter_prefixes()
        # A module whose import failed, by worker kind: what an import in a non-visible or
        # substituted worker raised may hold what that worker was sent (hidden inputs, a
        # correct callee), so it is never replayed to a probe of another kind.
        self._module_failures: dict[tuple[tuple[str, ...], str], Observation] = {}
        # Workers by kind: a worker that was sent a non-visible probe never serves a visible
        # one again (a visible worker is promoted, since the tests of a submission run
        # visible first: most submissions need one worker), and one holding substituted
        # (correct) callees serves only the probes that ask.
        self._workers: dict[tuple[str, ...], WorkerHandle] = {}
        self._sequence = 0
        # Requests do not depend on the submission: a bulk regrade encodes each once.
        self._payloads = payload_cache if payload_cache is not None else PayloadCache()

    def close(self) -> None:
        """End every worker and everything the submission started."""
        for worker in self._workers.values():
            worker.close()
        self._workers.clear()
        self.zygote.finish_all()

    def run(self, request: ProbeRequest) -> Observation:
        for module in request.modules:
            if module in self.staged.problems:
                return Observation(status="missing", message=self.staged.problems[module], phase="import")
        payload, substituted = self._payload(request)
        key = ("visible" if request.visible else "private",) + (("substituted",) if substituted else ())
        for module in request.modules:
            failure = self._module_failure(key, module)
            if failure is not None:
                return failure
        observation, fresh, where = self._attempt(payload, key, request.timeout)
        # A module whose own top level was running when its import timed out is charged
        # at once, and every later probe of it fails with the same message: one timeout.
        own_hang = (observation.status == "timeout" and observation.phase == "import" and where is not None
                    and where.function == "<module>" and where.file in {f"{m}.py" for m in request.modules})
        if not fresh and not own_hang and (observation.status in ("crashed", "protocol") or (observation.phase == "import" and observation.status == "timeout")):
            # A reused worker that died (or answered out of step) may have been killed by
            # something an earlier probe left behind, before or while this probe ran: try
            # once on a fresh worker, so only a probe that fails there too is charged.
            observation, fresh, where = self._attempt(payload, key, request.timeout)
        if substituted and not observation.ok:
            observation = redact(observation)
        if observation.phase == "import" and not observation.ok and (fresh or own_hang):
            for module in request.modules:
                self._module_failures[(key, module)] = observation
        elif observation.phase == "import" and not observation.ok:
            observation = Observation(observation.status, observation.message, output=observation.output, phase="probe")
        return observation

    def _module_failure(self, key: tuple[str, ...], module: str) -> Observation | None:
        """How ``module`` already failed to import for a probe of kind ``key``: in a worker
        of that kind, or in a visible worker (what a visible worker saw may be shown to
        any test; what a non-visible or substituted one saw, only to its own kind)."""
        return self._module_failures.get((key, module)) or self._module_failures.get((("visible",), module))

    def _attempt(self, payload: bytes, key: tuple[str, ...], timeout: float) -> tuple[Observation, bool, Frame | None]:
        """One probe on the worker for ``key`` (spawned if needed); says whether it was
        fresh, and where the student's code was if it timed out."""
        worker = self._workers.get(key)
        visible_kind = ("visible",) + key[1:]
        if worker is None and key[0] == "private" and visible_kind in self._workers:
            # Everything the visible probes of this worker will ever show is already out:
            # it may now see non-visible inputs, and serves no visible probe again.
            worker = self._workers[key] = self._workers.pop(visible_kind)
        fresh = False
        if worker is None or not worker.alive():
            if worker is not None:
                self.zygote.finish(worker)
            if self.zygote.exclusive_kinds and any(other != key for other in self._workers):
                # Workers of one sandbox user can always reach each other (/proc/PID/cmdline,
                # and /tmp, IPC and loopback where namespaces are refused): one of another
                # kind (holding non-visible inputs or a correct callee) ends, with
                # everything of the user, before this one starts.
                self.close()
            worker = self.zygote.spawn(str(self.staged.submission), str(self.staged.scratch), self._prefixes)
            self._workers[key] = worker
            fresh = True
        self._sequence += 1
        head = self._sequence.to_bytes(8, "big") + int(timeout * 1000).to_bytes(8, "big")
        raw = worker.call(head + payload, timeout, self.zygote.policy.output_limit)
        detail = raw.detail
        if raw.status != "answered":
            del self._workers[key]
            ended = self.zygote.finish(worker)
            detail = detail or ended
        where = student_frame(raw.stack, str(self.staged.submission)) if raw.status == "timeout" else None
        if where is not None:
            detail += f"; your code was at {where.text()}"
        observation = self._interpret(raw.status, raw.phase, detail, raw.output, raw.answer, self._sequence)
        if observation.status == "protocol" and key in self._workers:
            # An answer out of step (or forged) means the channel cannot be trusted any more.
            self.zygote.finish(self._workers.pop(key))
        return observation, fresh, where

    def _payload(self, request: ProbeRequest) -> tuple[bytes, tuple[str, ...]]:
        digest = hashlib.sha256()
        for name, tensor in sorted(request.inputs.items()):
            digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}:".encode())
            digest.update(tensor.detach().contiguous().numpy().reshape(-1).view("u1"))  # no copy
        cache_key = (
            request.probe,
            request.modules,
            json.dumps(request.params, sort_keys=True),
            request.seed,
            tuple(sorted(request.substitutes.items())),
            digest.hexdigest(),
        )
        cached = self._payloads.get(cache_key)
        if cached is None:
            params = dict(request.params)
            sources = {attr: substitute_source(src) for attr, src in request.substitutes.items()}
            params["substitutes"] = {attr: src for attr, src in sources.items() if src is not None}
            header: dict[str, Any] = {"probe": request.probe, "modules": list(request.modules), "params": params, "seed": request.seed}
            cached = (wire.encode(request.inputs, header), tuple(sorted(params["substitutes"])))
            self._payloads.put(cache_key, cached)
        return cached

    @staticmethod
    def _interpret(status: str, phase: str, detail: str, output: str, answer: bytes, sequence: int) -> Observation:
        """The worker's answer as an Observation; all of its text is cleaned here, once."""
        output = clean_text(output)
        if status == "timeout":
            where = "while importing your module" if phase == "import" else "while running"
            return Observation("timeout", f"timed out {where}: {detail}", output=output, phase=phase)
        if status in ("crashed", "oversized"):
            where = "while importing your module" if phase == "import" else "while running"
            return Observation("crashed" if status == "crashed" else "protocol", f"the worker process {detail} {where}", output=output, phase=phase)
        try:
            tensors, header = wire.decode(answer)
        except wire.WireError as exc:
            return Observation("protocol", f"the worker's answer was not valid ({exc})", output=output, phase=phase)
        header = clean_json(header)
        kind = header.get("status")
        message = header.get("message", "")
        values = header.get("values", {})
        if kind not in ("ok", "error", "import_error") or not isinstance(message, str) or not isinstance(values, dict):
            return Observation("protocol", "the worker's answer was not valid (bad header)", output=output, phase=phase)
        if header.get("seq") != sequence:
            return Observation("protocol", "the worker's answer did not belong to this probe (a forked process of your code answered?)", output=output, phase=phase)
        if kind == "import_error":
            return Observation("import_error", message, output=output, phase="import")
        return Observation(kind, message, tensors=tensors, values=verified_descriptions(values, tensors), output=output, phase=phase)


@dataclass(frozen=True)
class Frame:
    """Where the student's code was: a file of the submission, a line, a function."""

    file: str
    line: int
    function: str

    def text(self) -> str:
        return f"{self.file}, line {self.line}, in {self.function}"


_STACK_LINE = re.compile(r'File "([^"]+)", line (\d+) in (\S+)')


def student_frame(stack: str, submission_dir: str) -> Frame | None:
    """The innermost frame in the submission's files of a worker's stack dump (the
    watchdog lists the most recent call first), or None."""
    prefix = submission_dir.rstrip(os.sep) + os.sep
    for path, line, function in _STACK_LINE.findall(stack):
        if path.startswith(prefix):
            return Frame(clean_text(os.path.basename(path))[:100], int(line), clean_text(function)[:100])
    return None


def verified_descriptions(values: dict[str, Any], tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    """The worker describes what the student returned; type, shape and dtype are taken
    from the tensors actually received, never from the worker's word."""
    checked: dict[str, Any] = {}
    for key, value in values.items():
        if not isinstance(value, dict):
            checked[key] = value
            continue
        value = dict(value)
        tensor = tensors.get(key)
        if tensor is not None:
            value.update(type="Tensor", shape=list(tensor.shape), dtype=str(tensor.dtype).replace("torch.", ""))
        elif value.get("type") == "Tensor":
            value = {"type": "nothing (no tensor was received)"}
        checked[key] = value
    for key, tensor in tensors.items():
        checked.setdefault(key, {"type": "Tensor", "shape": list(tensor.shape), "dtype": str(tensor.dtype).replace("torch.", "")})
    return checked


BUILTIN_EXCEPTIONS = frozenset(
    name for name in dir(builtins) if isinstance(getattr(builtins, name), type) and issubclass(getattr(builtins, name), BaseException)
)


def redact(observation: Observation) -> Observation:
    """A probe that carried a correct callee relays no text the submission controls: it
    could have read the callee's code and printed or raised it."""
    kinds = {"error": "raised an exception", "timeout": "timed out", "crashed": "crashed", "protocol": "returned something unreadable"}
    kind = kinds.get(observation.status, "failed")
    raised = observation.message.split(":", 1)[0].strip()
    if observation.status == "error" and raised in BUILTIN_EXCEPTIONS:
        kind = f"raised {raised}"  # a builtin's name is safe to show; its message is not
    message = (
        f"{kind} (details are not shown for this test, because it runs with the course's own implementation "
        "of the function it depends on; run the test of that part to see your error)"
    )
    return Observation(observation.status, message, phase=observation.phase)
