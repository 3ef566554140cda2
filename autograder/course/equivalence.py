"""Is a mutant really different from the reference? A differential check, run in its own
process (``python -m autograder.course.equivalence JOB.json``): mutants are code, and a mutant
that hangs or crashes must cost its own verdict only.

For every test of the mutant's part, the assignment's case recipes run again from fresh
seeds with the mutant as "the reference", and every expected value and gradient they
compute is compared with the reference's own at the test's tolerance: random inputs, and
whatever edge inputs the recipes draw (huge magnitudes, zero vectors). Random functions,
which no recipe calls, are compared by the assignment's statistical checks
(``CHECKS`` in ``assignment/audit/checks.py``; a subpackage, so that it is no case recipe and
changing it leaves the fixtures current: estimates with standard errors, judged at
``Z_SCORE`` of them). A mutant differs when any comparison fails or it raises where the
reference does not."""
from __future__ import annotations

import hashlib
import importlib
import json
import math
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from autograder.grading.compare import tolerance_ratio
from autograder.config import GradingConfig, Tolerance, load_config
from autograder.paths import ASSIGNMENT_PACKAGE, KitLayout
from autograder.grading.recipes import CaseSpec, Reference, load_cases, load_reference, run_recipe

SEEDS_PER_RECIPE = 3
Z_SCORE = 7.0  # as the statistical tests: a correct twin differs with probability below 1e-11
MUTANT_SECONDS = 120  # one mutant's whole check


@dataclass(frozen=True)
class Estimate:
    """A value a check computed, and its standard error (0 for an exact value)."""

    value: torch.Tensor
    error: torch.Tensor | float = 0.0


@dataclass(frozen=True)
class Check:
    """An assignment's differential check of one part: ``run(modules, seed)`` gives named
    estimates; two implementations agree when every estimate does."""

    part: str
    name: str
    run: Callable[[Reference, int], dict[str, Estimate]]
    tolerance: Tolerance


@dataclass(frozen=True)
class Verdict:
    mutant: str
    equivalent: bool
    detail: str  # the first difference found, or what was compared


class _Timeout(Exception):
    pass


def load_checks() -> tuple[Check, ...]:
    """``CHECKS`` of ``assignment/audit/checks.py``, or none when the assignment has no such module."""
    try:
        module = importlib.import_module(f"{ASSIGNMENT_PACKAGE}.audit.checks")
    except ModuleNotFoundError as exc:
        if exc.name != f"{ASSIGNMENT_PACKAGE}.audit.checks":
            raise
        return ()
    return tuple(getattr(module, "CHECKS", ()))


def audit_seed(name: str, index: int) -> int:
    """Fresh seeds: not the frozen fixtures' nor any submission's."""
    return int.from_bytes(hashlib.sha256(f"audit/{name}/{index}".encode()).digest()[:4], "big")


def _compare_recipe(spec: CaseSpec, reference: Reference, mutant: Reference, seed: int, tolerance: Tolerance) -> str:
    """'' when the mutant's expected values match the reference's, else what differs."""
    expected = run_recipe(spec, reference, seed).expected
    try:
        got = run_recipe(spec, mutant, seed).expected
    except Exception as exc:  # the mutant's own failure is a difference
        return f"{spec.name}: raises {type(exc).__name__}: {' '.join(str(exc).split())[:120]}"
    for key, value in expected.items():
        if key not in got:
            return f"{spec.name}: no {key}"
        ratio = tolerance_ratio(got[key].detach(), value.detach(), tolerance)
        if ratio > 1.0:
            return f"{spec.name}: {key} off by {ratio:.3g} tolerances"
    return ""


def _close(a: Estimate, b: Estimate, tolerance: Tolerance) -> float:
    """How many allowed deviations apart two estimates are (inf for another shape)."""
    x, y = a.value.detach().double().reshape(-1), b.value.detach().double().reshape(-1)
    if x.shape != y.shape:
        return math.inf
    if not bool(torch.isfinite(x).all()) or not bool(torch.isfinite(y).all()):
        return 0.0 if bool((x == y).all()) else math.inf
    if x.numel() == 0:
        return 0.0
    ea, eb = (torch.as_tensor(e.error, dtype=torch.float64).reshape(-1) for e in (a, b))
    allowed = Z_SCORE * (ea**2 + eb**2).sqrt() + tolerance.atol + tolerance.rtol * y.abs()
    return float(((x - y).abs() / allowed).max())


def _compare_check(check: Check, reference: Reference, mutant: Reference, seed: int) -> str:
    expected = check.run(reference, seed)
    try:
        got = check.run(mutant, seed)
    except Exception as exc:
        return f"{check.name}: raises {type(exc).__name__}: {' '.join(str(exc).split())[:120]}"
    for key, value in expected.items():
        if key not in got:
            return f"{check.name}: no {key}"
        ratio = _close(got[key], value, check.tolerance)
        if ratio > 1.0:
            return f"{check.name}: {key} off by {ratio:.3g} allowed deviations"
    return ""


def compare(config: GradingConfig, reference: Reference, mutant: Reference, part: str, specs: tuple[CaseSpec, ...], checks: tuple[Check, ...]) -> tuple[bool, str]:
    """(equivalent, detail) for a mutant of ``part``."""
    compared = 0
    for spec in specs:
        if config.test(spec.test).part != part:
            continue
        tolerance = config.test(spec.test).judged_tolerance
        for index in range(SEEDS_PER_RECIPE):
            difference = _compare_recipe(spec, reference, mutant, audit_seed(spec.name, index), tolerance)
            compared += 1
            if difference:
                return False, difference
    for check in checks:
        if check.part != part:
            continue
        difference = _compare_check(check, reference, mutant, audit_seed(check.name, 0))
        compared += 1
        if difference:
            return False, difference
    if not compared:
        return True, "nothing to compare: no recipe or check of this part"
    return True, f"no difference in {compared} comparison(s)"


def _alarm(signum: int, frame: object) -> None:
    raise _Timeout()


def run_job(job: dict) -> list[Verdict]:
    """Every mutant of a job file: ``{"root": ..., "mutants": [{"id", "part", "folder"}]}``."""
    layout = KitLayout(Path(job["root"]))
    config = load_config(layout.config_file)
    torch.set_num_threads(1)
    reference = load_reference(layout.reference_dir, config.modules)
    specs, checks = load_cases(), load_checks()
    verdicts = []
    signal.signal(signal.SIGALRM, _alarm)
    for item in job["mutants"]:
        signal.alarm(MUTANT_SECONDS)
        try:
            mutant = load_reference(Path(item["folder"]), config.modules)
            equivalent, detail = compare(config, reference, mutant, item["part"], specs, checks)
        except _Timeout:
            equivalent, detail = False, f"the check took over {MUTANT_SECONDS} s"
        except Exception as exc:  # importing the mutant failed: it differs
            equivalent, detail = False, f"raises {type(exc).__name__}: {' '.join(str(exc).split())[:120]}"
        finally:
            signal.alarm(0)
        verdicts.append(Verdict(item["id"], equivalent, detail))
    return verdicts


def main(argv: list[str]) -> int:
    job = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    sys.path.insert(0, job["root"])  # the project's assignment package, as the grading sees it
    verdicts = run_job(job)
    Path(argv[1]).write_text(json.dumps([v.__dict__ for v in verdicts]), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
