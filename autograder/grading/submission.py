"""Find the solution files in whatever a student uploaded and stage clean copies
where the worker can read them, and nothing else of the upload."""
from __future__ import annotations

import functools
import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from autograder.grading.upload_hints import UploadScan, explain_missing, scan

BOM = b"\xef\xbb\xbf"
MAX_SOURCE_BYTES = 1 << 20


@dataclass(frozen=True)
class StagedSubmission:
    """A private copy of the solution files plus a scratch folder for the worker."""

    workdir: Path
    submission: Path
    scratch: Path
    found: dict[str, Path] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)

    def cleanup(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)

    def digest(self) -> str:
        """What the graded files hold: seeds drawn per submission mix it in."""
        return self._digest

    @functools.cached_property
    def _digest(self) -> str:  # once per submission, not once per test
        h = hashlib.sha256()
        for module in sorted(self.found):
            h.update(module.encode() + b"\0" + (self.submission / f"{module}.py").read_bytes() + b"\0")
        return h.hexdigest()


def find_solution_files(root: Path, modules: tuple[str, ...]) -> tuple[dict[str, Path], dict[str, str]]:
    """Solution files at the top of ``root`` or inside one subfolder (as zips often have).
    A missing file's message says why when the upload shows it: an archive that was not
    unpacked, or the files folders deep."""
    found: dict[str, Path] = {}
    problems: dict[str, str] = {}
    upload: UploadScan | None = None  # looked at once, and only if a file is missing
    if not root.is_dir():
        return found, {m: f"submission folder {root} does not exist" for m in modules}
    for module in modules:
        name = f"{module}.py"
        top = root / name
        if top.is_symlink():
            problems[module] = f"{name} is a symbolic link; upload the file itself"
            continue
        if top.is_file():
            found[module] = top
            continue
        nested = sorted(
            p for p in root.glob(f"*/{name}")
            if p.is_file() and not p.is_symlink() and not p.parent.is_symlink() and not p.parent.name.startswith(("__MACOSX", "."))
        )
        if len(nested) == 1:
            found[module] = nested[0]
        elif len(nested) > 1:
            problems[module] = f"{name} found in several folders ({', '.join(str(p.parent.name) for p in nested)}); submit one copy"
        else:
            if upload is None:
                upload = scan(root, tuple(f"{m}.py" for m in modules))
            problems[module] = f"{name} not found in your submission" + explain_missing(upload, name, tuple(f"{m}.py" for m in modules))
    return found, problems


def normalise_source(data: bytes) -> bytes:
    """Accept files saved on Windows: drop a UTF-8 BOM and turn CRLF into LF."""
    if data.startswith(BOM):
        data = data[len(BOM):]
    return data.replace(b"\r\n", b"\n")


def stage(
    root: Path, modules: tuple[str, ...], support: dict[str, Path], sandbox_uid: int | None, sandbox_gid: int | None = None
) -> StagedSubmission:
    """Copy the solution files (and provided support modules) into a fresh folder that
    only this grading's sandbox user may read (group access), with a scratch folder it
    may write. Other users, other regrade slots among them, can read neither."""
    found, problems = find_solution_files(root, modules)
    workdir = Path(tempfile.mkdtemp(prefix="autograder-grade-"))
    submission = workdir / "submission"
    scratch = workdir / "scratch"
    submission.mkdir(mode=0o750)
    scratch.mkdir(mode=0o700)
    file_mode = 0o644
    if sandbox_uid is not None:
        group = sandbox_gid if sandbox_gid is not None else sandbox_uid
        for folder in (workdir, submission):
            os.chown(folder, 0, group)
        os.chmod(workdir, 0o750)
        os.chmod(submission, 0o750)
        os.chown(scratch, sandbox_uid, group)
        file_mode = 0o640
    else:
        os.chmod(workdir, 0o700)
    for module, path in list(found.items()):
        try:
            # O_NOFOLLOW: a file swapped for a link after the check is not followed either.
            # (Windows has neither it nor a need for it in local mode, but needs O_BINARY.)
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0))
        except OSError as exc:
            problems[module] = f"{path.name} could not be read ({exc.strerror})"
            del found[module]
            continue
        with os.fdopen(fd, "rb") as handle:
            data = handle.read(MAX_SOURCE_BYTES + 1)
        if len(data) > MAX_SOURCE_BYTES:
            problems[module] = f"{path.name} is larger than {MAX_SOURCE_BYTES} bytes"
            del found[module]
            continue
        target = submission / f"{module}.py"
        target.write_bytes(normalise_source(data))
        os.chmod(target, file_mode)
        if sandbox_uid is not None:
            os.chown(target, 0, sandbox_gid if sandbox_gid is not None else sandbox_uid)
    for name, path in support.items():
        target = submission / f"{name}.py"
        if not target.exists():
            shutil.copyfile(path, target)
            os.chmod(target, file_mode)
            if sandbox_uid is not None:
                os.chown(target, 0, sandbox_gid if sandbox_gid is not None else sandbox_uid)
    return StagedSubmission(workdir, submission, scratch, found, problems)
