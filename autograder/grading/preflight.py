"""Before anything is graded: the fixtures this kit needs are there, intact, made by this
torch and from this kit's own recipes, reference and rubric.

Grading with a broken kit produces grades that look real: with the hidden fixtures
missing a bulk regrade once wrote an empty gradebook and exited 0, and with them corrupt
it gave a correct student 0. So ``grade``, ``regrade`` and ``run_autograder`` refuse to
start on a kit that fails these checks, in one line, before they write anything. What
a checkout needs depends on what it is: the course's repository and Gradescope's
unzipped autograder hold the reference (they draw visible cases per submission) and so
need everything; the student kit holds the visible fixtures only, and accepts any torch
of its requirements' range."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from autograder.config import GradingConfig
from autograder.grading.fixture_store import FILES, MANIFEST, FixtureError, FixtureStore, fingerprint, sha256, rubric_digests
from autograder.paths import KitLayout

REGENERATE = "run `python -m autograder fixtures generate`"


class PreflightError(RuntimeError):
    """The kit cannot grade: ``problems`` says why, one line each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        super().__init__(problems[0] + more if problems else "preflight failed")


@dataclass(frozen=True)
class KitKind:
    """The course's own kit (repository or Gradescope's zip: it holds the reference) or
    the student kit."""

    course: bool

    @classmethod
    def of(cls, layout: KitLayout) -> "KitKind":
        return cls(layout.reference_dir.is_dir())

    @property
    def needed_files(self) -> tuple[str, ...]:
        return tuple(FILES) if self.course else ("visible",)


def _base(version: object) -> str:
    return str(version).split("+", 1)[0]


def file_problems(store: FixtureStore, layout: KitLayout, kind: KitKind) -> list[str]:
    """Each fixture file this kit needs is present and matches the manifest's hash."""
    problems = []
    for visibility in kind.needed_files:
        name = FILES[visibility]
        path = layout.fixtures_dir / name
        if not path.is_file():
            why = " (the course's kit needs the non-visible fixtures too)" if visibility == "hidden" else ""
            problems.append(f"{path}: missing{why}: {REGENERATE}")
        elif sha256(path) != store.manifest.get("files", {}).get(name):
            problems.append(f"{path}: sha256 differs from {MANIFEST} (corrupt or edited): {REGENERATE}")
    return problems


def stale_problems(config: GradingConfig, layout: KitLayout, recorded: object, kind: KitKind) -> list[str]:
    """The fixtures were made from this kit's recipes, reference and rubric. The student kit
    holds neither recipes nor reference: there only the rubric (tolerances, visibility) is
    compared."""
    if not isinstance(recorded, dict):
        return [f"{layout.fixtures_dir / MANIFEST} records no fingerprint of what made the fixtures: {REGENERATE}"]
    current = fingerprint(config, layout) if kind.course else {"tests": rubric_digests(config)}
    problems = []
    if kind.course:
        if recorded.get("recipes") != current["recipes"]:
            problems.append(f"fixtures are stale: the case recipes (assignment/*.py, autograder/grading/recipes.py, autograder/course/fixturegen.py) changed since they were generated: {REGENERATE}")
        if recorded.get("reference") != current["reference"]:
            problems.append(f"fixtures are stale: reference/ changed since they were generated: {REGENERATE}")
    old_tests = recorded.get("tests") if isinstance(recorded.get("tests"), dict) else {}
    for number, digest in current["tests"].items():  # type: ignore[union-attr]
        if number not in old_tests:
            problems.append(f"test {number} is new since the fixtures were generated: add its cases to the recipes if it needs any, then {REGENERATE}")
        elif old_tests[number] != digest:
            problems.append(f"test {number} changed its tolerance or visibility since the fixtures were generated: {REGENERATE}")
    for number in sorted(set(old_tests) - set(current["tests"])):  # type: ignore[arg-type]
        problems.append(f"test {number} was removed from grading.yaml since the fixtures were generated: {REGENERATE}")
    return problems


def torch_problems(store: FixtureStore, kind: KitKind) -> list[str]:
    """The course's kit grades with the torch that made its fixtures (setup.sh pins it)."""
    made = _base(store.manifest.get("torch_version", ""))
    if kind.course and made != _base(torch.__version__):
        return [f"the fixtures were made with torch {made}, this is torch {torch.__version__}: run setup.sh (it installs {made}) or {REGENERATE}"]
    return []


def check(config: GradingConfig, layout: KitLayout) -> list[str]:
    """Every problem, cheapest first (milliseconds: hashes and a fingerprint)."""
    kind = KitKind.of(layout)
    try:
        store = FixtureStore(layout.fixtures_dir)
    except FixtureError as exc:
        return [str(exc)]
    problems = file_problems(store, layout, kind)
    if problems:
        return problems
    return torch_problems(store, kind) + stale_problems(config, layout, store.manifest.get("fingerprint"), kind)


def require(config: GradingConfig, layout: KitLayout) -> None:
    """Raise PreflightError when the kit cannot grade."""
    problems = check(config, layout)
    if problems:
        raise PreflightError(problems)
