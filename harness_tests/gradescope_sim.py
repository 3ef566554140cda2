"""Simulate Gradescope: unzip the built autograder.zip into ``T/source``, put a
submission in ``T/submission`` and run ``AUTOGRADER_ROOT=T bash T/source/run_autograder``."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from autograder.course.build import build_autograder_zip
from autograder.paths import KitLayout


@dataclass(frozen=True)
class GradescopeRun:
    root: Path
    returncode: int
    stdout: str
    stderr: str

    @property
    def results_file(self) -> Path:
        return self.root / "results" / "results.json"

    def results(self) -> dict:
        return json.loads(self.results_file.read_text(encoding="utf-8"))


def build_zip(out: Path) -> Path:
    return build_autograder_zip(KitLayout.here(), out)


def install(
    autograder_zip: Path, submission: Path, root: Path, metadata: dict | None = None, keep_symlinks: bool = False
) -> None:
    """Gradescope's folders under ``root``: the unzipped autograder in ``source/``, the
    upload in ``submission/`` (``keep_symlinks``: links stay links, as an unzip or a git
    checkout would leave them), an empty ``results/`` and the metadata file."""
    source = root / "source"
    source.mkdir(parents=True)
    with zipfile.ZipFile(autograder_zip) as archive:
        for info in archive.infolist():
            target = archive.extract(info, source)
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                os.chmod(target, mode)
    shutil.copytree(submission, root / "submission", symlinks=keep_symlinks)
    (root / "results").mkdir()
    (root / "submission_metadata.json").write_text(json.dumps(metadata or {"id": 1, "users": [{"name": "Student"}]}))


def gradescope_env(root: Path, sandbox_user: str | None = None) -> dict[str, str]:
    """The environment of ``AUTOGRADER_ROOT=root bash root/source/run_autograder``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "GRADER_"))}
    env["AUTOGRADER_ROOT"] = str(root)
    env["PYTHON"] = sys.executable
    if sandbox_user:
        env["GRADER_SANDBOX_USER"] = sandbox_user
    return env


def run_autograder(root: Path, timeout: float = 600, sandbox_user: str | None = None) -> GradescopeRun:
    proc = subprocess.run(
        ["bash", str(root / "source" / "run_autograder")], cwd="/", env=gradescope_env(root, sandbox_user),
        capture_output=True, text=True, timeout=timeout,
    )
    return GradescopeRun(root, proc.returncode, proc.stdout, proc.stderr)


def simulate(
    autograder_zip: Path,
    submission: Path,
    root: Path,
    timeout: float = 600,
    metadata: dict | None = None,
    sandbox_user: str | None = None,
    keep_symlinks: bool = False,
) -> GradescopeRun:
    """One Gradescope run of ``submission`` (a folder copied as the upload). Runs that
    overlap in time need distinct ``sandbox_user`` s (setup.sh makes hw3sandbox1..7)."""
    install(autograder_zip, submission, root, metadata, keep_symlinks)
    return run_autograder(root, timeout, sandbox_user)
