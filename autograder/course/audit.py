"""``python -m autograder audit``: the test suite audits itself with mutants of the reference.

Every first-order mutant of a graded function (``autograder/course/mutate.py``) becomes a
submission folder: the reference with that one function changed. The mutants are graded
together through the bulk regrade's path (``batch.grade_many``: imports shared, one
queue-fed slot per core, sandboxed workers, visible cases drawn afresh per submission's
bytes, visible and non-visible tests), then each is classified:

- ``killed``: it loses points in its own part, and only there;
- ``killed_elsewhere``: it costs another part (one bug must cost one part: a fairness bug);
- ``equivalent``: full marks, and the differential check (``autograder/course/equivalence.py``,
  in processes of its own) finds no difference from the reference beyond the part's
  tolerance, in values or gradients;
- ``survived``: full marks although it differs.

The reference itself is graded alongside, as a control: below full marks, nothing else
means anything."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from autograder.grading import preflight
from autograder.regrade.batch import GradeJob, JobResult, grade_many
from autograder.config import GradingConfig, load_config
from autograder.course.mutate import Mutant, mutants_of
from autograder.paths import KitLayout
from autograder.regrade.report import part_scores

CONTROL = "reference"
SCORE_EPSILON = 1e-6
STATUSES = ("killed", "killed_elsewhere", "equivalent", "survived")
EQUIVALENCE_SECONDS = 1800  # one checking process, all its mutants


class AuditError(ValueError):
    """The audit cannot mean anything (an unknown part, the reference below full marks)."""


@dataclass(frozen=True)
class Record:
    """One mutant's verdict."""

    mutant: Mutant
    status: str
    visible: bool | None  # killed: does a visible test kill it (None otherwise)
    failed_tests: tuple[str, ...]
    lost: dict[str, float]  # points lost, by part
    detail: str  # the differential check's finding
    no_difference: bool = False  # the differential check found none (whatever the status)

    @property
    def part(self) -> str:
        return self.mutant.part


@dataclass(frozen=True)
class AuditRun:
    records: list[Record]
    seconds: float
    cpu_seconds: float  # this process and every child it waited for


def generate(layout: KitLayout, config: GradingConfig, parts: list[str] | None = None) -> list[Mutant]:
    """Every mutant of every graded function of the chosen parts (all by default)."""
    known = {p.number for p in config.parts}
    unknown = sorted(set(parts or ()) - known)
    if unknown:
        raise AuditError(f"no part {', '.join(unknown)} in {layout.config_file.name} (--part); parts: {', '.join(sorted(known))}")
    found: list[Mutant] = []
    for part in config.parts:
        if parts and part.number not in parts:
            continue
        path = layout.reference_dir / f"{part.module}.py"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: the reference of part {part.number} not found")
        source = path.read_text(encoding="utf-8")
        for function in part.functions:
            found.extend(mutants_of(source, function, part.number, part.module))
    return found


def _materialise(layout: KitLayout, config: GradingConfig, folder: Path, mutant: Mutant | None) -> Path:
    """A submission folder: the reference's modules, one of them mutated."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for module in (*config.modules, *config.support_modules):
        source = layout.reference_dir / f"{module}.py"
        if source.is_file():
            shutil.copyfile(source, folder / source.name)
    if mutant is not None:
        (folder / f"{mutant.module}.py").write_text(mutant.source, encoding="utf-8")
    return folder


def _failed(results: dict) -> tuple[str, ...]:
    return tuple(
        str(t.get("number")) for t in results.get("tests", []) if float(t.get("score", 0.0)) < float(t.get("max_score", 0.0)) - SCORE_EPSILON
    )


def _lost(config: GradingConfig, results: dict) -> dict[str, float]:
    scores = part_scores(config, results)
    return {p.number: round(p.points - scores.get(p.number, 0.0), 6) for p in config.parts if scores.get(p.number, 0.0) < p.points - SCORE_EPSILON}


def classify(config: GradingConfig, mutant: Mutant, results: dict, equivalent: bool | None, detail: str) -> Record:
    """The verdict of one graded mutant (``equivalent`` is the differential check's, None
    when it was not run)."""
    failed = _failed(results)
    lost = _lost(config, results)
    same = bool(equivalent)
    if set(lost) - {mutant.part}:
        return Record(mutant, "killed_elsewhere", None, failed, lost, detail, same)
    if lost:
        own = [n for n in failed if config.test(n).part == mutant.part]
        visible = any(not config.test(n).hidden for n in own)
        return Record(mutant, "killed", visible, failed, lost, detail, same)
    return Record(mutant, "equivalent" if same else "survived", None, failed, lost, detail, same)


def _equivalence(layout: KitLayout, folders: dict[str, tuple[Mutant, Path]], work: Path, jobs: int) -> dict[str, tuple[bool, str]]:
    """The differential check of these mutants, in ``jobs`` processes of its own."""
    items = [{"id": key, "part": mutant.part, "folder": str(folder)} for key, (mutant, folder) in folders.items()]
    if not items:
        return {}
    chunks = [items[i::jobs] for i in range(max(1, min(jobs, len(items))))]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(layout.root), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    running = []
    for index, chunk in enumerate(chunks):
        job, answer = work / f"equivalence-{index}.json", work / f"equivalence-{index}.out.json"
        job.write_text(json.dumps({"root": str(layout.root), "mutants": chunk}), encoding="utf-8")
        answer.unlink(missing_ok=True)
        process = subprocess.Popen(
            [sys.executable, "-m", "autograder.course.equivalence", str(job), str(answer)],
            cwd=layout.root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
        )
        running.append((process, chunk, answer))
    verdicts: dict[str, tuple[bool, str]] = {}
    for process, chunk, answer in running:
        try:
            _, stderr = process.communicate(timeout=EQUIVALENCE_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            stderr = f"the check took over {EQUIVALENCE_SECONDS} s"
        try:
            answers = json.loads(answer.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            reason = " ".join((stderr or "").strip().splitlines()[-1:]) or f"exit status {process.returncode}"
            answers = [{"mutant": item["id"], "equivalent": False, "detail": f"the check failed: {reason}"[:200]} for item in chunk]
        for item in answers:
            verdicts[item["mutant"]] = (bool(item["equivalent"]), str(item["detail"]))
    return verdicts


def _cpu_seconds() -> float:
    own, children = os.times()[:2], os.times()[2:4]
    return sum(own) + sum(children)


def run_audit(layout: KitLayout, out: Path, parts: list[str] | None = None, jobs: int | None = None) -> AuditRun:
    """Generate, grade and classify the mutants; the records, in generation order."""
    started, cpu_started = time.monotonic(), _cpu_seconds()
    config = load_config(layout.config_file)
    preflight.require(config, layout)
    mutants = generate(layout, config, parts)
    slots = jobs or config.sandbox.slots_per_core * max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))
    out.mkdir(parents=True, exist_ok=True)
    work = out / "mutants"
    results_dir = out / "results"
    folders = {m.id: (m, _materialise(layout, config, work / m.id, m)) for m in mutants}
    control = _materialise(layout, config, work / CONTROL, None)
    grade_jobs = [GradeJob(CONTROL, control, results_dir / f"{CONTROL}.json")]
    grade_jobs += [GradeJob(key, folder, results_dir / f"{key}.json") for key, (_, folder) in folders.items()]
    graded: dict[str, JobResult] = {r.job.key: r for r in grade_many(layout, config, grade_jobs, workers=slots)}
    reference = graded[CONTROL]
    if not reference.graded or _lost(config, reference.results):
        raise AuditError(f"the reference itself does not earn full marks ({', '.join(_failed(reference.results)) or 'not graded'}): fix that first")
    # Every mutant, not only those with full marks: a killed mutant in which the check
    # finds no difference is worth a look (a test stricter than the requirement, or a
    # float32 effect the float64 recipes cannot see).
    verdicts = _equivalence(layout, folders, work, slots)
    records = []
    for mutant in mutants:
        equivalent, detail = verdicts.get(mutant.id, (None, ""))
        records.append(classify(config, mutant, graded[mutant.id].results, equivalent, detail))
    return AuditRun(records, time.monotonic() - started, _cpu_seconds() - cpu_started)
