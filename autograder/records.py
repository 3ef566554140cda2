"""Typed records that cross between the trusted harness and the worker."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

@dataclass(frozen=True)
class ProbeRequest:
    """One call into the submission: which probe, on which modules, with which inputs."""

    probe: str
    modules: tuple[str, ...]
    params: dict[str, Any]
    inputs: dict[str, torch.Tensor]
    seed: int
    timeout: float
    substitutes: dict[str, str] = field(default_factory=dict)
    # A worker that was sent a non-visible probe never serves a visible one, so nothing
    # of a non-visible test's inputs can reach a visible test's output.
    visible: bool = True


@dataclass(frozen=True)
class Observation:
    """What the worker reported, already validated: plain tensors and JSON values only."""

    status: str  # ok | error | import_error | missing | timeout | crashed | protocol
    message: str = ""
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)
    output: str = ""
    phase: str = "probe"

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass(frozen=True)
class TestOutcome:
    """One graded test's result, as results.json and the table report it."""

    number: str
    name: str
    part: str
    score: float
    max_score: float
    status: str  # "passed" | "failed"
    output: str
    visibility: str
    tags: tuple[str, ...] = ()
