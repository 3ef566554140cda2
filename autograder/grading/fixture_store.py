"""Frozen fixtures on the trusted side: read, hash-checked, never sent whole to a worker."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from autograder.grading.compare import Hint
from autograder.config import GradingConfig
from autograder.paths import KitLayout

MANIFEST = "manifest.json"
FILES = {"visible": "visible.safetensors", "hidden": "hidden.safetensors"}


class FixtureError(RuntimeError):
    """Missing or corrupted fixtures: the message names the file."""


class HiddenFixturesUnavailable(FixtureError):
    """The student kit has no hidden fixtures: those tests run on Gradescope only."""


@dataclass(frozen=True)
class Case:
    name: str
    inputs: dict[str, torch.Tensor]
    expected: dict[str, torch.Tensor]
    hints: dict[str, Hint]

    def hint_list(self, prefix: str) -> list[Hint]:
        """Hints registered for one expected output, e.g. ``out`` or ``grad.mu``."""
        return [h for key, h in sorted(self.hints.items()) if key.split(":", 1)[0] == prefix]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def recipe_files(layout: KitLayout) -> list[Path]:
    """What the cases are made by: the recipe machinery and the assignment's own modules
    (recipes, the models they build), not its correct callees or the kit's texts."""
    engine = Path(__file__).resolve().parent.parent
    return [engine / "course" / "fixturegen.py", engine / "grading" / "recipes.py", *sorted(layout.assignment_dir.glob("*.py"))]


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()


def rubric_digests(config: GradingConfig) -> dict[str, str]:
    """Per test, what decides where its cases go and which hints are kept: its visibility
    and tolerance."""
    return {
        t.number: _digest(json.dumps({"hidden": t.hidden, "tolerance": None if t.tolerance is None else [t.tolerance.rtol, t.tolerance.atol]}).encode())
        for t in config.tests()
    }


def fingerprint(config: GradingConfig, layout: KitLayout) -> dict[str, object]:
    """Everything the fixtures are made from: the case recipes, the reference's source and,
    per test, its visibility and tolerance. ``fixtures verify``, ``build`` and every
    grading's preflight refuse fixtures whose record differs."""
    reference = sorted(layout.reference_dir.glob("*.py"))
    return {
        "recipes": _digest(*(path.read_bytes() for path in recipe_files(layout))),
        "reference": _digest(*(p.name.encode() + b"\0" + p.read_bytes() for p in reference)),
        "tests": rubric_digests(config),
    }


class FixtureStore:
    """Lazy, verified access to the fixture files of one kit."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        path = directory / MANIFEST
        try:
            self.manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FixtureError(f"{path}: fixture manifest not found (run `python -m autograder fixtures generate`)") from None
        except json.JSONDecodeError as exc:
            raise FixtureError(f"{path}: invalid JSON: {exc}") from None
        self._loaded: dict[str, dict[str, torch.Tensor]] = {}
        self._cases: dict[str, Case] = {}

    def _file(self, visibility: str) -> dict[str, torch.Tensor]:
        if visibility not in self._loaded:
            name = FILES[visibility]
            path = self.directory / name
            if not path.exists():
                if visibility == "hidden":
                    raise HiddenFixturesUnavailable(f"{path}: hidden fixtures are not part of the student kit")
                raise FixtureError(f"{path}: fixture file not found")
            expected_hash = self.manifest.get("files", {}).get(name)
            if sha256(path) != expected_hash:
                raise FixtureError(f"{path}: sha256 does not match {MANIFEST}; regenerate or restore the fixtures")
            self._loaded[visibility] = load_file(str(path))
        return self._loaded[visibility]

    def meta(self, name: str) -> dict[str, Any]:
        """The manifest's record of one case (its test, visibility, seed, hints)."""
        meta = self.manifest.get("cases", {}).get(name)
        if not isinstance(meta, dict):
            raise FixtureError(f"{self.directory / MANIFEST}: no case named {name!r}")
        return meta

    def case(self, name: str) -> Case:
        """One case's frozen tensors, assembled once (a bulk regrade asks for each many times)."""
        if name not in self._cases:
            self._cases[name] = self._assemble(name)
        return self._cases[name]

    @property
    def private(self) -> bool:
        """True where the non-visible fixtures are present (Gradescope, the project), not in
        the student kit."""
        try:
            self._file("hidden")
        except HiddenFixturesUnavailable:
            return False
        return True

    def secret(self) -> str:
        """Something a student cannot know: the hash of the non-visible fixtures (empty in
        the kit, whose manifest lists the visible file only). Seeds drawn from it (the
        visible cases drawn per submission, the penalty critics) cannot be predicted by a
        submission."""
        return str(self.manifest.get("files", {}).get(FILES["hidden"], "")) if self.private else ""

    def _assemble(self, name: str) -> Case:
        meta = self.meta(name)
        tensors = self._file("hidden" if meta["visibility"] == "hidden" else "visible")
        prefix = f"{name}/"
        roles: dict[str, dict[str, torch.Tensor]] = {"in": {}, "exp": {}, "hint": {}}
        for key, value in tensors.items():
            if key.startswith(prefix):
                role, field_name = key[len(prefix):].split("/", 1)
                roles[role][field_name] = value
        hints = {k: Hint(v, meta.get("hints", {}).get(k, "")) for k, v in roles["hint"].items()}
        return Case(name, roles["in"], roles["exp"], hints)
