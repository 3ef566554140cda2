"""setup.sh creates the sandbox users that grading.yaml names: renaming ``sandbox.user``
renames the users Gradescope's image gets (a hard-coded name would leave the renamed one
missing, and every Gradescope run would then fail before grading). Checked with
``--dry-run``, which installs nothing and creates no one, on a copy of the project."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from autograder.config import load_config
from autograder.sandbox.zygote import SIBLINGS
from autograder.sandbox.users import sandbox_users
from harness_tests.corpus import LAYOUT

RENAMED = "renamedbox"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    shutil.copytree(LAYOUT.root / "autograder", root / "autograder", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("setup.sh", "requirements.txt", "grading.yaml"):
        shutil.copy2(LAYOUT.root / name, root / name)
    return root


def dry_run(project: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "GRADER_"))}
    return subprocess.run(["bash", str(project / "setup.sh"), "--dry-run"], cwd="/", env={**clean, **env}, capture_output=True, text=True, timeout=120)


def users_of(proc: subprocess.CompletedProcess[str]) -> list[str]:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    prefix = "setup.sh: would create sandbox user "
    return [line[len(prefix):] for line in proc.stdout.splitlines() if line.startswith(prefix)]


def test_setup_creates_the_users_grading_yaml_names(project: Path) -> None:
    configured = load_config(LAYOUT.config_file).sandbox.user
    assert users_of(dry_run(project)) == [configured] + [f"{configured}{i}" for i in range(1, SIBLINGS)]


def test_a_renamed_sandbox_user_is_the_one_setup_creates(project: Path) -> None:
    config = project / "grading.yaml"
    configured = load_config(config).sandbox.user
    text = config.read_text(encoding="utf-8")
    assert f"user: {configured}" in text
    config.write_text(text.replace(f"user: {configured}", f"user: {RENAMED}", 1), encoding="utf-8")
    users = users_of(dry_run(project))
    assert users == sandbox_users(load_config(config), {}), "setup.sh and the grading would disagree on the users"
    assert users[0] == RENAMED and len(users) == SIBLINGS and not [u for u in users if u.startswith(configured)], users
    # The overrides a local simulation uses, as the grading itself honours them.
    assert users_of(dry_run(project, GRADER_SANDBOX_USER="simbox", GRADER_SANDBOX_SLOTS="2")) == ["simbox", "simbox1"]


def test_a_bad_user_name_stops_setup_with_the_key(project: Path) -> None:
    config = project / "grading.yaml"
    configured = load_config(config).sandbox.user
    config.write_text(config.read_text(encoding="utf-8").replace(f"user: {configured}", 'user: "Bad Name"', 1), encoding="utf-8")
    proc = dry_run(project)
    assert proc.returncode != 0 and "sandbox.user" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert "would create" not in proc.stdout


def test_unknown_options_are_refused(project: Path) -> None:
    proc = subprocess.run(["bash", str(project / "setup.sh"), "--frobnicate"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "--dry-run" in proc.stderr, proc.stderr
