"""How the tiny assignment's cases are drawn and what the reference makes of them."""
from __future__ import annotations

import torch

from autograder.grading.recipes import CaseData, CaseSpec, Reference, normal, with_grads


def softplus_case(ref: Reference, g: torch.Generator, batch: int, dim: int, scale: float) -> CaseData:
    x = normal(g, (batch, dim), scale)
    cot = normal(g, (batch, dim))
    data = CaseData(inputs={"x": x, "cot": cot})
    out, grads = with_grads(ref.tiny_solution.softplus, data.inputs, ["x"], cot)
    data.expected = {"out": out, **grads}
    data.hints = {"out:relu": (x.double().clamp_min(0), "softplus is smooth: log(1 + exp(x)), not max(x, 0).")}
    return data


CASES = (
    CaseSpec("softplus_basic", "1.1", lambda r, g: softplus_case(r, g, 4, 5, 3.0)),
    CaseSpec("softplus_wide", "1.2", lambda r, g: softplus_case(r, g, 8, 16, 80.0)),
)
