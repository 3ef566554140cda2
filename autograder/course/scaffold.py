"""``python -m autograder new NAME [--out DIR]``: a new assignment's project, complete and
working from its first day: a copy of this engine and Gradescope's entry points, and an
example homework of two functions (4 points each) with every file the engine reads
(rubric, reference, template, case recipes, a probe kind, tests, the kit's texts). Its
``fixtures generate``, ``fixtures verify``, ``grade`` (reference 8/8, template 0/8) and
``build`` work at once; then the instructor replaces the example with the homework."""
from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from autograder.paths import KitLayout
from autograder.course.scaffold_files import FILES

# What a project needs from this one, as is: the engine and the scripts around it.
ENGINE = ("autograder", "conftest.py", "setup.sh", "run_autograder", "requirements.txt")
NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,39}")


class ScaffoldError(ValueError):
    """A name or target the user can fix (one line)."""


@dataclass(frozen=True)
class Scaffold:
    """What ``new`` fills in: the name as given, and the identifiers made from it."""

    title: str

    @property
    def ident(self) -> str:
        return self.title.lower().replace("-", "_")

    @property
    def module(self) -> str:
        return f"{self.ident}_solution"

    @property
    def tests_module(self) -> str:
        return f"test_{self.ident}"

    @property
    def user(self) -> str:
        """A system user name (at most 32 characters, with room for a slot's digit)."""
        return f"{self.ident[:22]}sandbox"

    def fill(self, text: str) -> str:
        for key, value in (("__TITLE__", self.title), ("__MODULE__", self.module), ("__USER__", self.user), ("__TESTS__", self.tests_module)):
            text = text.replace(key, value)
        return text


def scaffold(name: str, out: Path, engine: KitLayout | None = None) -> list[Path]:
    """Write the project into ``out`` (new, or an empty folder); the files written."""
    if not NAME.fullmatch(name):
        raise ScaffoldError(f"{name!r}: an assignment name starts with a letter and holds letters, digits, '-' and '_' (40 at most)")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ScaffoldError(f"{out}: already exists and is not an empty folder; choose another --out")
    source = (engine or KitLayout.here()).root
    missing = [item for item in ENGINE if not (source / item).exists()]
    if missing:
        raise ScaffoldError(f"{source}: the engine's {', '.join(missing)} not found (run `new` from the course's project)")
    spec = Scaffold(name)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for item in ENGINE:
        if (source / item).is_dir():
            shutil.copytree(source / item, out / item, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source / item, out / item)
        written.append(out / item)
    for relative, text in FILES.items():
        path = out / spec.fill(relative)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(spec.fill(text), encoding="utf-8")
        written.append(path)
    return written


def next_steps(out: Path) -> str:
    return (f"next: cd {out} && python3 -m autograder fixtures generate && python3 -m autograder fixtures verify "
            "&& python3 -m autograder grade && python3 -m autograder build --out dist")
