"""Shared helpers for tests that grade whole submissions: build submission folders
from the corpus and read per-part scores out of results.json."""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import yaml

from autograder import regrade
from autograder.config import load_config
from autograder.paths import KitLayout

LAYOUT = KitLayout.here()
CONFIG = load_config(LAYOUT.config_file)
CORPUS = Path(__file__).resolve().parent / "submissions"
SOLUTION_FILES = tuple(f"{module}.py" for module in CONFIG.modules)
PARTS = ("1.1", "1.2", "1.3", "1.4", "1.5", "2.1", "3.1", "3.2", "3.3")


@dataclass(frozen=True)
class Entry:
    kind: str  # "bugs" | "styles" | "attacks"
    name: str
    path: Path
    meta: dict

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.name}"


def entries(kind: str) -> list[Entry]:
    folder = CORPUS / kind
    if not folder.is_dir():
        return []
    return [
        Entry(kind, p.name, p, yaml.safe_load((p / "meta.yaml").read_text(encoding="utf-8")) or {})
        for p in sorted(folder.iterdir())
        if (p / "meta.yaml").is_file()
    ]


def materialise(entry: Entry, target: Path) -> Path:
    """The entry's modules over a copy of reference/: a complete submission folder."""
    target.mkdir(parents=True)
    for name in SOLUTION_FILES:
        shutil.copyfile(LAYOUT.reference_dir / name, target / name)
    for item in entry.path.iterdir():
        if item.name == "meta.yaml":
            continue
        if item.is_dir():
            shutil.copytree(item, target / item.name)
        else:
            shutil.copyfile(item, target / item.name)
    return target


def materialise_files(target: Path, files: dict[str, str]) -> Path:
    """Given module texts over a copy of reference/: a complete submission folder."""
    target.mkdir(parents=True)
    for name in SOLUTION_FILES:
        shutil.copyfile(LAYOUT.reference_dir / name, target / name)
    for name, text in files.items():
        (target / name).write_text(text, encoding="utf-8")
    return target


def part_scores(results: dict) -> dict[str, float]:
    return regrade.part_scores(CONFIG, results)
