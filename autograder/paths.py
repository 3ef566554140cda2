"""Every path of the kit, derived from one root so nothing is hard-coded."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# The assignment's own code (case recipes, probe kinds, correct callees, the kit's texts):
# a package beside ``autograder/``, so the engine never names a homework.
ASSIGNMENT_PACKAGE = "assignment"
# The correct styles calibration grades beside the reference, one folder each (instructors' only).
STYLES_FOLDER = Path("harness_tests") / "submissions" / "styles"


@dataclass(frozen=True)
class KitLayout:
    """Where the harness finds its own files: the project checkout, the unzipped
    autograder (``/autograder/source``) or the student kit share this layout."""

    root: Path

    @classmethod
    def here(cls) -> "KitLayout":
        return cls(Path(__file__).resolve().parent.parent)

    @property
    def config_file(self) -> Path:
        return self.root / "grading.yaml"

    @property
    def tests_dir(self) -> Path:
        return self.root / "tests"

    @property
    def fixtures_dir(self) -> Path:
        return self.root / "fixtures"

    @property
    def reference_dir(self) -> Path:
        return self.root / "reference"

    @property
    def template_dir(self) -> Path:
        return self.root / "student_template"

    @property
    def assignment_dir(self) -> Path:
        return self.root / ASSIGNMENT_PACKAGE

    @property
    def substitutes_dir(self) -> Path:
        """Correct callees, one file each, named for the callee (never in the student kit)."""
        return self.assignment_dir / "substitutes"

    @property
    def kit_texts_dir(self) -> Path:
        """The student kit's README.md and requirements.txt."""
        return self.assignment_dir / "kit"

    @property
    def styles_dir(self) -> Path:
        return self.root / STYLES_FOLDER

    @property
    def pytest_ini(self) -> Path:
        return self.root / "pytest.ini"

    def default_submission(self) -> Path:
        """The reference in the project, the student's own files in the kit."""
        return self.reference_dir if self.reference_dir.is_dir() else self.root


@dataclass(frozen=True)
class GradescopeLayout:
    """Gradescope's folders, all below ``AUTOGRADER_ROOT`` (default ``/autograder``)."""

    root: Path

    @classmethod
    def from_env(cls, environ: "os._Environ[str] | dict[str, str] | None" = None) -> "GradescopeLayout":
        env = os.environ if environ is None else environ
        return cls(Path(env.get("AUTOGRADER_ROOT", "/autograder")))

    @property
    def source(self) -> Path:
        return self.root / "source"

    @property
    def submission(self) -> Path:
        return self.root / "submission"

    @property
    def results_dir(self) -> Path:
        return self.root / "results"

    @property
    def results_file(self) -> Path:
        return self.results_dir / "results.json"

    @property
    def metadata_file(self) -> Path:
        return self.root / "submission_metadata.json"
