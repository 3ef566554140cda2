"""A Gradescope "Export Submissions" (zip or folder) as a list of submissions.

An export holds one folder per submission and a ``submission_metadata.yml`` (Ruby-
flavoured YAML: symbol keys, tagged values). A plain folder of submission folders is
accepted too. Anything else (the kit itself, one submission, an empty folder, a broken
zip or metadata file) is refused with an ExportError naming what is wrong, before
anything is graded."""
from __future__ import annotations

import json
import os
import re
import shutil
import zipfile
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import yaml

from autograder.regrade.fingerprint import file_fingerprint

METADATA = "submission_metadata.yml"
IGNORED_PREFIXES = (".", "__MACOSX")
KIT_MARKERS = ("grading.yaml", "autograder/__init__.py", "run_autograder")
UNPACKED = "export"
UNPACKED_FROM = "export.source.json"


class ExportError(ValueError):
    """The export cannot be used; the message is one line naming the file and the problem."""


@dataclass(frozen=True)
class Student:
    name: str = ""
    email: str = ""
    sid: str = ""


@dataclass(frozen=True)
class Record:
    """What the metadata says about one submission folder."""

    students: tuple[Student, ...] = ()  # a group submission has several
    export_score: float | None = None  # the score Gradescope holds now (":score:")
    created_at: datetime | None = None  # when it was submitted (":created_at:"), time-zone aware


@dataclass(frozen=True)
class ExportEntry:
    key: str
    folder: Path
    students: tuple[Student, ...] = field(default_factory=tuple)
    export_score: float | None = None  # the score Gradescope holds now (":score:")
    created_at: datetime | None = None  # when it was submitted, time-zone aware


@dataclass(frozen=True)
class Export:
    root: Path
    entries: tuple[ExportEntry, ...]
    unlisted: tuple[str, ...]  # folders the metadata does not mention (graded, no names)
    has_metadata: bool


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


def parse_score(value: Any) -> float | None:
    """A metadata score: a number, or Ruby's BigDecimal dump ``"18:0.36e2"`` (precision:value)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip()
    for candidate in (text, text.rsplit(":", 1)[-1]):
        try:
            return float(candidate)
        except ValueError:
            continue
    return None


_TIME = re.compile(
    r"(\d{4})-(\d\d?)-(\d\d?)(?:[Tt]|[ \t]+)(\d\d?):(\d\d)(?::(\d\d)(?:\.(\d+))?)?"
    r"(?:[ \t]*(Z|UTC|[-+]\d\d?(?::?\d\d)?))?"
)


def _zone(text: str | None) -> timezone:
    """A time without a zone is taken as UTC (Gradescope always writes one)."""
    if text is None or text in ("Z", "UTC"):
        return timezone.utc
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    hours, minutes = (digits, "0") if len(digits) <= 2 else (digits[:-2], digits[-2:])
    return timezone(sign * timedelta(hours=int(hours), minutes=int(minutes)))


def parse_time(value: Any) -> datetime | None:
    """A metadata time, time-zone aware: a YAML timestamp (``2023-12-02 02:52:07.938335000 Z``,
    ``... -05:00``), the same as a quoted string, or Ruby's tagged ``TimeWithZone`` mapping
    (its ``utc`` field: its ``time`` is the local wall time marked Z, off by the zone).
    None when it is none of these."""
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
    if isinstance(value, dict):
        return parse_time(value.get("utc", value.get(":utc")))
    if not isinstance(value, str):
        return None
    match = _TIME.fullmatch(value.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        return datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second or "0"),
            int((fraction or "0")[:6].ljust(6, "0")), tzinfo=_zone(zone),
        )
    except ValueError:  # day 31 of a 30-day month, hour 25, a zone beyond 24 h
        return None


def parse_due(text: str) -> datetime:
    """``regrade --due``: a date, a time and its zone (``2026-04-15 23:00 -05:00``). A time
    without a zone is refused: it would be late or not depending on where the regrade runs."""
    match = _TIME.fullmatch(text.strip())
    due = parse_time(text)
    if match is None or match.group(8) is None or due is None:
        raise ExportError(f"--due {text!r}: expected a date, a time and its zone, like '2026-04-15 23:00 -05:00' or '2026-04-15T23:00Z'")
    return due


def _one_line(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"{where}{problem}"


def read_metadata(root: Path) -> tuple[dict[str, Record], bool]:
    """What the metadata says per submission folder, and whether a metadata file exists."""
    path = root / METADATA
    if not path.is_file():
        return {}, False
    try:
        data = yaml.load(path.read_text(encoding="utf-8", errors="replace"), Loader=_LenientLoader)
    except yaml.YAMLError as exc:
        raise ExportError(f"{path}: unreadable metadata at {_one_line(exc)}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ExportError(f"{path}: unreadable metadata: expected a mapping of submission folders, got {type(data).__name__}")
    records: dict[str, Record] = {}
    for key, record in data.items():
        submitters = _key(record, "submitters") or []
        people = tuple(
            Student(str(_key(p, "name") or ""), str(_key(p, "email") or ""), str(_key(p, "sid") or ""))
            for p in (submitters if isinstance(submitters, list) else [])
        )
        records[str(key)] = Record(people, parse_score(_key(record, "score")), parse_time(_key(record, "created_at")))
    return records, True


def _extract(archive: Path, target: Path) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                destination = (target / info.filename).resolve()
                if not str(destination).startswith(str(target.resolve()) + os.sep) and destination != target.resolve():
                    raise ExportError(f"{archive}: entry {info.filename!r} would escape the extraction folder")
            zf.extractall(target)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
        raise ExportError(f"{archive}: not a readable zip file ({exc})") from None


def unpack(archive: Path, out: Path) -> Path:
    """``out/export``, unpacked from ``archive`` unless it already holds this very zip.
    A failed unpacking leaves the previous one (and nothing partial) in place."""
    target = out / UNPACKED
    stamp = out / UNPACKED_FROM
    fingerprint = file_fingerprint(archive)
    try:
        known = json.loads(stamp.read_text(encoding="utf-8")).get("sha256")
    except (OSError, json.JSONDecodeError, AttributeError):
        known = None
    if known == fingerprint and target.is_dir():
        return target
    partial = out / f"{UNPACKED}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        _extract(archive, partial)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    stamp.unlink(missing_ok=True)
    old = out / f"{UNPACKED}.old"
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    partial.rename(target)
    shutil.rmtree(old, ignore_errors=True)
    stamp.write_text(json.dumps({"zip": str(archive.resolve()), "sha256": fingerprint}) + "\n", encoding="utf-8")
    return target


def _folders(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(IGNORED_PREFIXES))


def _has_python(folder: Path) -> bool:
    return any(True for _ in folder.rglob("*.py"))


def find_root(folder: Path) -> Path:
    """The folder holding the submission folders: ``folder`` or its only subfolder."""
    for candidate in [folder, *_folders(folder)]:
        if (candidate / METADATA).is_file():
            return candidate
    children = _folders(folder)
    if len(children) == 1 and not any(children[0].glob("*.py")) and _folders(children[0]):
        return children[0]
    return folder


def check_out_folder(export: Path, out: Path) -> None:
    """``--out`` inside a folder export would be graded as a submission next time."""
    if export.is_dir():
        inside = out.resolve()
        root = export.resolve()
        if inside == root or root in inside.parents:
            raise ExportError(f"{out}: --out must not be inside the export {export}; choose a folder elsewhere")


def open_export(export: Path, out: Path) -> Export:
    """The export's submissions; raises ExportError for anything that is not an export."""
    if not export.exists():
        raise ExportError(f"{export}: export not found")
    check_out_folder(export, out)
    if export.is_file():
        if not zipfile.is_zipfile(export):
            raise ExportError(f"{export}: not a readable zip file (nor a folder)")
        created = not out.exists()
        out.mkdir(parents=True, exist_ok=True)
        try:
            export = unpack(export, out)
        except BaseException:
            if created:
                shutil.rmtree(out, ignore_errors=True)  # nothing of a failed unpacking is left
            raise
    root = find_root(export)
    for marker in KIT_MARKERS:
        if (root / marker).exists():
            raise ExportError(f"{root}: this is the autograding kit ({marker}), not an export of submissions")
    records, has_metadata = read_metadata(root)
    folders = _folders(root)
    if not folders:
        raise ExportError(f"{root}: not an export: no submission folders in it")
    if not has_metadata:
        if any(root.glob("*.py")):
            raise ExportError(f"{root}: not an export: it holds .py files itself (one submission? use `python -m autograder grade`)")
        if not any(_has_python(f) for f in folders):
            raise ExportError(f"{root}: not an export: none of its folders holds a .py file")
    unlisted = tuple(f.name for f in folders if has_metadata and f.name not in records)
    blank = Record()
    entries = tuple(
        ExportEntry(f.name, f, r.students, r.export_score, r.created_at) for f in folders for r in [records.get(f.name, blank)]
    )
    return Export(root, entries, unlisted, has_metadata)
