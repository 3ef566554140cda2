"""Why an upload lacks the solution files, in words a student can act on: the most
common causes are an archive uploaded as it is (``homework.zip`` inside the upload, or a
``.tar.gz``/``.rar`` Gradescope does not unpack) and the files sitting folders deep
(``homework/code/solution.py``). Only the upload's own names are read (no link is
followed), and an archive is opened only to list what it holds, within bounds."""
from __future__ import annotations

import os
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".gz", ".rar", ".7z")
IGNORED_FOLDERS = ("__MACOSX", ".")
MAX_LISTED_ARCHIVE_BYTES = 32 << 20  # larger zips are named, not opened
MAX_ARCHIVE_ENTRIES = 10_000
MAX_WALKED = 5_000  # names looked at in one upload


@dataclass(frozen=True)
class Archive:
    """An archive in the upload; ``holds`` the wanted files it lists (None: not listed)."""

    path: str  # relative to the upload, with "/"
    holds: tuple[str, ...] | None


@dataclass(frozen=True)
class UploadScan:
    archives: tuple[Archive, ...]
    deep: dict[str, tuple[str, ...]]  # wanted file name -> folders (two or more levels down) holding it


def _is_archive(name: str) -> bool:
    return name.lower().endswith(ARCHIVE_SUFFIXES)


def _zip_holds(path: Path, wanted: set[str]) -> tuple[str, ...] | None:
    """The wanted file names a zip lists, read through a descriptor that refuses links."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0))
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        try:
            if os.fstat(handle.fileno()).st_size > MAX_LISTED_ARCHIVE_BYTES:
                return None
            with zipfile.ZipFile(handle) as archive:
                infos = archive.infolist()
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, OSError, ValueError):
            return None
    if len(infos) > MAX_ARCHIVE_ENTRIES:
        return None
    return tuple(sorted({info.filename.replace("\\", "/").rsplit("/", 1)[-1] for info in infos} & wanted))


def scan(root: Path, names: tuple[str, ...]) -> UploadScan:
    """Archives anywhere in the upload, and the wanted files found two or more folders down."""
    wanted = set(names)
    archives: list[Archive] = []
    deep: dict[str, list[str]] = {}
    walked = 0
    for folder, subfolders, files in os.walk(root, followlinks=False):
        subfolders[:] = sorted(d for d in subfolders if not d.startswith(IGNORED_FOLDERS))
        relative = Path(folder).relative_to(root).as_posix()
        depth = 0 if relative == "." else relative.count("/") + 1
        for name in sorted(files):
            walked += 1
            if walked > MAX_WALKED:
                break
            path = Path(folder) / name
            if path.is_symlink():
                continue
            shown = name if depth == 0 else f"{relative}/{name}"
            if _is_archive(name):
                archives.append(Archive(shown, _zip_holds(path, wanted) if name.lower().endswith(".zip") else None))
            elif name in wanted and depth >= 2:
                deep.setdefault(name, []).append(relative + "/")
        if walked > MAX_WALKED:
            break
    return UploadScan(tuple(archives), {k: tuple(v) for k, v in deep.items()})


def explain_missing(found: UploadScan, name: str, all_names: tuple[str, ...]) -> str:
    """What to say after "``name`` not found in your submission" (empty: nothing to add)."""
    files = ", ".join(all_names)
    if found.deep.get(name):
        where = " and ".join(found.deep[name][:3])
        return (f": it is in {where}, a folder inside a folder; the grader looks only at the top of your upload and one "
                f"folder down: upload the files themselves ({files}), not the folder that holds them")
    if found.archives:
        holding = [a for a in found.archives if a.holds and name in a.holds]
        shown = holding[0] if holding else found.archives[0]
        inside = f" with {name} inside" if holding else ""
        return (f": your upload holds {shown.path}, an archive{inside}; the grader does not unpack archives: "
                f"upload the files themselves ({files}), not an archive of them")
    return ""
