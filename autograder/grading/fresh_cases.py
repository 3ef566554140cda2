"""Visible cases drawn afresh for every submission, on the trusted side.

A visible test shows what a student needs to fix the code: the expected value at the
worst element. On frozen inputs that is an oracle: a submission that returns what earlier
feedback showed, plus a spike where it knows nothing yet, learns one more element per
upload, and the table then works in any other student's upload. So where the non-visible
fixtures are present (Gradescope, the course repository, a bulk regrade), a visible test
does not run on the kit's frozen case: its recipe runs again, with a seed derived from
the course's secret and the submission's own bytes, and the reference computes its
expected values and hints in float64, as ``fixtures generate`` does. What a message shows
is then true of that submission's inputs only. The same bytes give the same inputs, so a
regrade repeats the grade. The student kit (no secret, no reference) keeps its frozen
cases. The reference is imported here, in the trusted process, only after the zygote
forked: no worker ever holds it."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from autograder.grading.compare import Hint
from autograder.config import GradingConfig
from autograder.grading.fixture_store import Case, FixtureError, FixtureStore
from autograder.grading.recipes import CaseSpec, Reference, kept_hints, load_cases, load_reference, run_recipe, stored

SALT_LABEL = "visible-case"


def fresh_seed(salt: str, name: str) -> int:
    """The seed of case ``name`` for the submission behind ``salt`` (secret + digest)."""
    digest = hashlib.sha256(f"{salt}/{SALT_LABEL}/{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


@dataclass
class CaseSource:
    """Where a test's case comes from: frozen (hidden cases, and everything in the kit) or
    drawn for the submission (visible cases where the course's secret is present)."""

    store: FixtureStore
    config: GradingConfig
    reference_dir: Path
    _specs: dict[str, CaseSpec] | None = None
    _reference: Reference | None = None
    _drawn: dict[tuple[str, str], Case] = field(default_factory=dict)

    @property
    def fresh(self) -> bool:
        """True where visible cases are drawn per submission (the secret is present)."""
        return self.store.private

    def case(self, name: str, salt: str) -> Case:
        meta = self.store.meta(name)
        if meta.get("visibility") != "visible" or not self.fresh:
            return self.store.case(name)
        key = (name, salt)
        if key not in self._drawn:
            if self._drawn and next(iter(self._drawn))[1] != salt:
                self._drawn.clear()  # a new submission: the previous one's cases are done
            self._drawn[key] = self._draw(name, salt)
        return self._drawn[key]

    def _draw(self, name: str, salt: str) -> Case:
        spec = self._recipes().get(name)
        if spec is None:
            raise FixtureError(f"no recipe named {name!r} in the assignment's cases.py (the fixtures name it)")
        data = run_recipe(spec, self._reference_modules(), fresh_seed(salt, name))
        test = self.config.test(spec.test)
        hints = {key: Hint(value, text) for key, (value, text) in kept_hints(data, test.judged_tolerance).items()}
        return Case(
            name,
            {k: stored(v) for k, v in data.inputs.items()},
            {k: stored(v) for k, v in data.expected.items()},
            hints,
        )

    def _recipes(self) -> dict[str, CaseSpec]:
        if self._specs is None:
            self._specs = {spec.name: spec for spec in load_cases()}
        return self._specs

    def _reference_modules(self) -> Reference:
        if self._reference is None:
            self._reference = load_reference(self.reference_dir, self.config.modules)
        return self._reference
