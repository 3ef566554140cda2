"""Fingerprints of what decides a grade, so a re-run of a regrade reuses a result only
when nothing that could change it has changed: the submission's files, and the kit's
grading.yaml, tests, fixtures, support modules, assignment code and harness source."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

from autograder.paths import KitLayout

SKIPPED_NAMES = frozenset({"__pycache__", ".pytest_cache"})


def _hash_tree(digest: "hashlib._Hash", root: Path, label: str) -> None:
    """Names and contents of every file below ``root`` (links by their target), in a
    fixed order; a missing root hashes as missing."""
    if not root.exists() and not root.is_symlink():
        digest.update(f"{label}: missing\0".encode())
        return
    if root.is_file() or root.is_symlink():
        paths = [root]
    else:
        paths = []
        for folder, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if d not in SKIPPED_NAMES)
            paths.extend(Path(folder) / name for name in sorted(files) if not name.endswith(".pyc"))
    for path in paths:
        relative = path.relative_to(root).as_posix() if path != root else path.name
        digest.update(f"{label}/{relative}\0".encode("utf-8", errors="surrogateescape"))
        if path.is_symlink():
            digest.update(b"link:" + os.readlink(path).encode("utf-8", errors="surrogateescape"))
        else:
            try:
                with path.open("rb") as handle:
                    for block in iter(lambda: handle.read(1 << 20), b""):
                        digest.update(block)
            except OSError as exc:
                digest.update(f"unreadable: {exc.strerror}".encode())
        digest.update(b"\0")


def kit_fingerprint(layout: KitLayout) -> str:
    """Everything of the kit that decides a grade (the harness version is its source)."""
    digest = hashlib.sha256()
    for label, path in (
        ("grading.yaml", layout.config_file),
        ("pytest.ini", layout.pytest_ini),
        ("tests", layout.tests_dir),
        ("fixtures", layout.fixtures_dir),
        ("student_template", layout.template_dir),
        ("autograder", layout.root / "autograder"),
        ("assignment", layout.assignment_dir),
    ):
        _hash_tree(digest, path, label)
    return digest.hexdigest()


def submission_fingerprint(kit: str, folder: Path) -> str:
    """The kit's fingerprint combined with the hashes of every file the student uploaded."""
    digest = hashlib.sha256(kit.encode())
    _hash_tree(digest, folder, "submission")
    return digest.hexdigest()


def file_fingerprint(path: Path) -> str:
    """The hash of one file (an export zip)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
