"""Helpers for the regrade tests: small exports built from the corpus, the real
``python -m autograder`` command, and the process tree it leaves behind."""
from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from harness_tests.corpus import LAYOUT, copy_project, entries, materialise

KIT_ITEMS = ("autograder", "assignment", "tests", "fixtures", "student_template", "reference", "grading.yaml", "pytest.ini")
SLOW_IMPORT = "import time; time.sleep(0.5)  # a slow but correct submission\n"


def copy_kit(target: Path, extra: tuple[str, ...] = ()) -> Path:
    """A copy of the kit's files (and ``extra`` ones): KitLayout derives every path from the
    package's folder, so ``python -m autograder`` run in ``target`` uses ``target``'s files."""
    target.mkdir(parents=True)
    return copy_project(target, KIT_ITEMS + extra)


def reference(target: Path, slow: bool = False) -> Path:
    shutil.copytree(LAYOUT.reference_dir, target)
    if slow:  # the sleep goes after the module docstring, before any import
        for path in target.glob("q*_solution.py"):
            text = path.read_text(encoding="utf-8")
            end = text.index('"""', 3) + 3 if text.startswith('"""') else 0
            path.write_text(text[:end] + "\n" + SLOW_IMPORT + text[end:], encoding="utf-8")
    return target


def bug(name: str, target: Path) -> Path:
    entry = next(e for e in entries("bugs") if e.name == name)
    return materialise(entry, target)


def style(index: int, target: Path) -> Path:
    return materialise(entries("styles")[index], target)


def zip_folder(folder: Path, archive: Path) -> Path:
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(folder.rglob("*")):
            zf.write(path, path.relative_to(folder.parent))
    return archive


def cli(*args: str, cwd: Path = LAYOUT.root, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "autograder", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def start(*args: str, cwd: Path = LAYOUT.root) -> subprocess.Popen[str]:
    """The command in its own session and process group, as a terminal would run it."""
    return subprocess.Popen(
        [sys.executable, "-m", "autograder", *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )


PERSON_COLUMNS = ("name", "email", "sid")


def grade_rows(out: Path) -> list[dict[str, str]]:
    """Every line of grades.csv: one per submitter (a group submission has several)."""
    with (out / "grades.csv").open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def grades(out: Path) -> dict[str, dict[str, str]]:
    """grades.csv by submission (a group's first submitter's line); the lines of one
    submission must agree on everything but who the submitter is."""
    found: dict[str, dict[str, str]] = {}
    for row in grade_rows(out):
        first = found.setdefault(row["submission_id"], row)
        grade = {k: v for k, v in row.items() if k not in PERSON_COLUMNS}
        assert grade == {k: v for k, v in first.items() if k not in PERSON_COLUMNS}, (first, row)
    return found


@dataclass(frozen=True)
class Proc:
    pid: int
    started: int  # start time in clock ticks: tells a pid apart from a reused one


def _stat(pid: int) -> tuple[int, int] | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[1]), int(fields[19])


def descendants(root: int) -> set[Proc]:
    """Every live process below ``root`` (workers included: they stay the zygote's children)."""
    parents: dict[int, tuple[int, int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            stat = _stat(int(name))
            if stat is not None:
                parents[int(name)] = stat
    found, frontier = set(), [root]
    while frontier:
        pid = frontier.pop()
        for child, (parent, started) in parents.items():
            if parent == pid and Proc(child, started) not in found:
                found.add(Proc(child, started))
                frontier.append(child)
    return found


def alive(procs: set[Proc]) -> set[Proc]:
    return {p for p in procs if (_stat(p.pid) or (0, -1))[1] == p.started}


def sandboxed(procs: set[Proc]) -> set[Proc]:
    """The processes among ``procs`` that run as another user than ours (sandboxed workers)."""
    found = set()
    for proc in procs:
        try:
            with open(f"/proc/{proc.pid}/status", encoding="ascii", errors="replace") as handle:
                uid = next(int(line.split()[1]) for line in handle if line.startswith("Uid:"))
        except (OSError, StopIteration, ValueError):
            continue
        if uid != os.getuid():
            found.add(proc)
    return found
