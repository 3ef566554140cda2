"""Shared helpers for tests that grade whole submissions: build submission folders
from the corpus and read per-part scores out of results.json."""
from __future__ import annotations

import ast
import shutil
from dataclasses import dataclass
from pathlib import Path

import yaml

from autograder.regrade import command as regrade
from autograder.config import load_config
from autograder.paths import KitLayout

LAYOUT = KitLayout.here()
CONFIG = load_config(LAYOUT.config_file)
CORPUS = Path(__file__).resolve().parent / "submissions"
SOLUTION_FILES = tuple(f"{module}.py" for module in CONFIG.modules)
PARTS = tuple(part.number for part in CONFIG.parts)
# HW3's counts, from grading.yaml (never literals): a rubric change moves them, not the tests.
FULL_MARKS = CONFIG.total_points
WORTH = {part.number: part.points for part in CONFIG.parts}
TEST_COUNT = len(CONFIG.tests())


def marks(points: float) -> str:
    """Points as grades.csv and the tables write them (36, 3.5)."""
    return f"{points:g}"


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


# ---------------------------------------------------------------- what an attack's honest code deserves


def _definitions(source: str) -> dict[str, ast.AST]:
    """Top-level functions and classes' methods of a module, by qualified name."""
    found: dict[str, ast.AST] = {}
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found[node.name] = node
        elif isinstance(node, ast.ClassDef):
            found.update({f"{node.name}.{n.name}": n for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))})
    return found


def with_stub(source: str, template: str, qualname: str) -> str:
    """``source`` with ``qualname``'s definition replaced by the template's (whose graded
    body raises NotImplementedError), lines kept as they are."""
    ours, theirs = _definitions(source).get(qualname), _definitions(template).get(qualname)
    if ours is None or theirs is None:
        raise KeyError(f"{qualname} is not defined in both the module and its template")
    lines, stub = source.splitlines(keepends=True), template.splitlines(keepends=True)
    start = min([ours.lineno] + [d.lineno for d in ours.decorator_list]) - 1
    stub_start = min([theirs.lineno] + [d.lineno for d in theirs.decorator_list]) - 1
    return "".join(lines[:start] + stub[stub_start : theirs.end_lineno] + lines[ours.end_lineno :])


def _module_of(qualname: str) -> str:
    name = qualname.split(".")[0]
    for part in CONFIG.parts:
        if any(f == qualname or f.split(".")[0] == name for f in part.functions):
            return part.module
    raise KeyError(f"{qualname} is not a graded function of grading.yaml")


def honest_submission(honest: dict, target: Path) -> Path:
    """The submission an attack hides behind (its meta.yaml ``honest``), as a folder:
    the reference, with ``template`` modules taken from the template, ``files`` from
    corpus entries (``bugs/<name>``), and the ``stubs`` functions left unimplemented."""
    unknown = set(honest) - {"template", "files", "stubs"}
    if unknown:
        raise ValueError(f"honest: unknown keys {sorted(unknown)}")
    target.mkdir(parents=True)
    texts = {name: (LAYOUT.reference_dir / name).read_text(encoding="utf-8") for name in SOLUTION_FILES}
    for name in honest.get("template", []):
        texts[name] = (LAYOUT.template_dir / name).read_text(encoding="utf-8")
    for name, entry in (honest.get("files") or {}).items():
        texts[name] = (CORPUS / entry / name).read_text(encoding="utf-8")
    for qualname in honest.get("stubs", []):
        name = f"{_module_of(qualname)}.py"
        texts[name] = with_stub(texts[name], (LAYOUT.template_dir / name).read_text(encoding="utf-8"), qualname)
    for name, text in texts.items():
        (target / name).write_text(text, encoding="utf-8")
    return target


def honest_key(honest: dict) -> str:
    """One name per distinct honest submission (attacks often share one)."""
    return yaml.safe_dump({k: sorted(v) if isinstance(v, list) else v for k, v in sorted(honest.items())}, sort_keys=True)


def copy_project(target: Path, names: "tuple[str, ...] | list[str]", source: Path | None = None) -> Path:
    """``names`` (files and folders of the project, or of ``source``) copied into ``target``,
    without caches: a project of its own, since every path derives from the package's folder."""
    origin = source or LAYOUT.root
    target.mkdir(parents=True, exist_ok=True)
    for name in names:
        item = origin / name
        if item.is_dir():
            shutil.copytree(item, target / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(item, target / name)
    return target
