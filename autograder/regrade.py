"""``python -m autograder regrade EXPORT --out DIR``: a whole class at once.

EXPORT is a Gradescope "Export Submissions" zip or its unpacked folder (one folder per
submission and a ``submission_metadata.yml``), or simply a folder of submission folders.
Writes ``DIR/results/<submission>.json``, ``DIR/grades.csv`` and prints a summary.
Finished submissions are kept, so an interrupted regrade resumes where it stopped."""
from __future__ import annotations

import collections
import csv
import json
import os
import shutil
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from autograder.batch import GradeJob, JobResult, grade_many
from autograder.config import GradingConfig, load_config
from autograder.paths import KitLayout
from autograder.report import first_line

METADATA = "submission_metadata.yml"


@dataclass(frozen=True)
class Student:
    name: str = ""
    email: str = ""
    sid: str = ""


@dataclass(frozen=True)
class ExportEntry:
    key: str
    folder: Path
    students: tuple[Student, ...] = field(default_factory=tuple)


class _LenientLoader(yaml.SafeLoader):
    """Safe YAML that turns Ruby-specific tags (Gradescope's exports have some) into plain data."""


def _plain(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node)


_LenientLoader.add_multi_constructor("!", _plain)
_LenientLoader.add_multi_constructor("tag:", _plain)


def _key(mapping: Any, name: str) -> Any:
    """Gradescope writes Ruby symbols (``:name``); accept ``name`` too."""
    if not isinstance(mapping, dict):
        return None
    return mapping.get(f":{name}", mapping.get(name))


def read_metadata(root: Path) -> dict[str, tuple[Student, ...]]:
    path = root / METADATA
    if not path.is_file():
        return {}
    try:
        data = yaml.load(path.read_text(encoding="utf-8", errors="replace"), Loader=_LenientLoader)
    except yaml.YAMLError as exc:
        print(f"warning: {path}: unreadable metadata ({exc}); continuing without student names", file=sys.stderr)
        return {}
    students: dict[str, tuple[Student, ...]] = {}
    for key, record in (data or {}).items() if isinstance(data, dict) else []:
        submitters = _key(record, "submitters") or []
        people = []
        for person in submitters if isinstance(submitters, list) else []:
            people.append(Student(str(_key(person, "name") or ""), str(_key(person, "email") or ""), str(_key(person, "sid") or "")))
        students[str(key)] = tuple(people)
    return students


def _safe_extract(archive: Path, target: Path) -> None:
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            destination = (target / info.filename).resolve()
            if not str(destination).startswith(str(target.resolve()) + os.sep) and destination != target.resolve():
                raise ValueError(f"{archive}: entry {info.filename!r} would escape the extraction folder")
        zf.extractall(target)


def export_root(export: Path, out: Path) -> Path:
    """The folder holding the submission folders (unzipping the export if needed)."""
    if not export.exists():
        raise FileNotFoundError(f"{export}: export not found")
    if export.is_file():
        target = out / "export"
        if not target.exists():
            tmp = out / "export.partial"
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            _safe_extract(export, tmp)
            tmp.rename(target)
        export = target
    for candidate in [export, *sorted(p for p in export.iterdir() if p.is_dir())]:
        if (candidate / METADATA).is_file():
            return candidate
    children = [p for p in export.iterdir() if p.is_dir() and not p.name.startswith((".", "__MACOSX"))]
    if len(children) == 1 and not any(children[0].glob("*.py")) and any(p.is_dir() for p in children[0].iterdir()):
        return children[0]
    return export


def discover(root: Path) -> list[ExportEntry]:
    students = read_metadata(root)
    entries = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "__MACOSX"))):
        entries.append(ExportEntry(folder.name, folder, students.get(folder.name, ())))
    return entries


def _complete(path: Path, config: GradingConfig) -> bool:
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return False
    return isinstance(results, dict) and len(results.get("tests", [])) == len(config.tests())


def part_scores(config: GradingConfig, results: dict) -> dict[str, float]:
    scores = {part.number: 0.0 for part in config.parts}
    for test in results.get("tests", []):
        part = ".".join(str(test.get("number", "")).split(".")[:2])
        if part in scores:
            scores[part] += float(test.get("score", 0.0))
    return scores


def _errors(results: dict) -> str:
    notes = []
    if results.get("output"):
        notes.append(first_line(str(results["output"])))
    missing = sorted({first_line(t["output"]).split(": ", 1)[-1] for t in results.get("tests", []) if "not found in your submission" in t.get("output", "")})
    notes.extend(missing)
    return "; ".join(notes)


def write_csv(path: Path, config: GradingConfig, entries: list[ExportEntry], results: dict[str, dict]) -> None:
    parts = [p.number for p in config.parts]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["submission_id", "names", "emails", "sids", *parts, "total", "errors"])
        for entry in entries:
            result = results[entry.key]
            scores = part_scores(config, result)
            writer.writerow([
                entry.key,
                "; ".join(s.name for s in entry.students),
                "; ".join(s.email for s in entry.students),
                "; ".join(s.sid for s in entry.students),
                *[f"{scores[p]:g}" for p in parts],
                f"{sum(scores.values()):g}",
                _errors(result),
            ])


def summary(config: GradingConfig, results: list[dict]) -> str:
    lines = [f"{len(results)} submission(s)", f"{'part':6}{'mean':>8}  distribution (score: count)   most common failure"]
    for part in config.parts:
        scores = [part_scores(config, r)[part.number] for r in results]
        counts = collections.Counter(scores)
        failures: collections.Counter[str] = collections.Counter()
        for r in results:
            failures.update({
                first_line(t["output"]).split(": ", 1)[-1][:90]
                for t in r.get("tests", [])
                if str(t.get("number", "")).startswith(part.number + ".") and t.get("status") != "passed"
            })
        common = failures.most_common(1)[0] if failures else ("", 0)
        dist = " ".join(f"{s:g}:{c}" for s, c in sorted(counts.items(), reverse=True))
        mean = sum(scores) / len(scores) if scores else 0.0
        lines.append(f"{part.number:6}{mean:8.2f}  {dist:28} {f'({common[1]}x) {common[0]}' if common[1] else ''}")
    totals = [sum(part_scores(config, r).values()) for r in results]
    if totals:
        lines.append(f"total mean {sum(totals) / len(totals):.2f}/{config.total_points:g}")
    return "\n".join(lines)


def regrade_export(layout: KitLayout, export: Path, out: Path, jobs: int | None = None, force: bool = False) -> int:
    config = load_config(layout.config_file)
    out.mkdir(parents=True, exist_ok=True)
    root = export_root(export, out)
    entries = discover(root)
    if not entries:
        print(f"{root}: no submission folders found", file=sys.stderr)
        return 1
    results_dir = out / "results"
    todo = [
        GradeJob(e.key, e.folder, results_dir / f"{e.key}.json")
        for e in entries
        if force or not _complete(results_dir / f"{e.key}.json", config)
    ]
    workers = jobs or config.sandbox.slots_per_core * (os.cpu_count() or 1)
    from tqdm import tqdm

    with tqdm(total=len(entries), initial=len(entries) - len(todo), unit="submission", file=sys.stderr, disable=None) as bar:
        def done(result: JobResult) -> None:
            bar.update(1)

        grade_many(layout, config, todo, workers=min(workers, max(1, len(todo))), on_done=done)
    results = {e.key: json.loads((results_dir / f"{e.key}.json").read_text(encoding="utf-8")) for e in entries}
    write_csv(out / "grades.csv", config, entries, results)
    print(summary(config, list(results.values())))
    print(f"wrote {out / 'grades.csv'} and {len(entries)} results in {results_dir}")
    return 0
