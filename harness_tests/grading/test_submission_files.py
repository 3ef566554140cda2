"""Finding the solution files in an upload (top level or one subfolder), saying why they
are missing (an archive uploaded as it is, files folders deep), cleaning them
(BOM, CRLF) and staging only them for the worker."""
from __future__ import annotations

import json
import os
import stat
import zipfile
from pathlib import Path


from autograder.grading.submission import BOM, MAX_SOURCE_BYTES, find_solution_files, normalise_source, stage
from autograder.regrade.triage import describe

MODULES = ("q1_solution", "q2_solution", "q3_solution")


def _put(path: Path, text: str = "X = 1\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _upload(root: Path, folder: str = "") -> Path:
    for module in MODULES:
        _put(root / folder / f"{module}.py", f"NAME = {module!r}\n")
    return root


# ------------------------------------------------------------------ find_solution_files

def test_files_at_the_top_level(tmp_path: Path) -> None:
    root = _upload(tmp_path / "sub")
    found, problems = find_solution_files(root, MODULES)
    assert problems == {}
    assert found == {m: root / f"{m}.py" for m in MODULES}


def test_files_in_exactly_one_subfolder(tmp_path: Path) -> None:
    root = _upload(tmp_path / "sub", "hw3 (final)")
    found, problems = find_solution_files(root, MODULES)
    assert problems == {}
    assert found == {m: root / "hw3 (final)" / f"{m}.py" for m in MODULES}


def test_top_level_wins_over_a_subfolder(tmp_path: Path) -> None:
    root = _upload(tmp_path / "sub")
    _upload(root, "old")
    found, problems = find_solution_files(root, MODULES)
    assert problems == {} and found["q1_solution"] == root / "q1_solution.py"


def test_copies_in_two_subfolders_are_reported(tmp_path: Path) -> None:
    root = _upload(tmp_path / "sub", "draft")
    _put(root / "final" / "q2_solution.py")
    found, problems = find_solution_files(root, MODULES)
    assert set(found) == {"q1_solution", "q3_solution"}
    message = problems["q2_solution"]
    assert "q2_solution.py" in message and "several folders" in message
    assert "draft" in message and "final" in message


def test_missing_files_are_reported_by_name(tmp_path: Path) -> None:
    root = tmp_path / "sub"
    _put(root / "q1_solution.py")
    _put(root / "notes" / "q3_solutions.py")  # a near miss is not a match
    found, problems = find_solution_files(root, MODULES)
    assert set(found) == {"q1_solution"}
    assert set(problems) == {"q2_solution", "q3_solution"}
    assert "q2_solution.py not found" in problems["q2_solution"]
    assert "q3_solution.py not found" in problems["q3_solution"]


def _zip(archive: Path, files: dict[str, str]) -> Path:
    archive.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return archive


NAMES = tuple(f"{m}.py" for m in MODULES)


def _says_upload_the_files(message: str) -> None:
    assert "upload the files themselves" in message and all(name in message for name in NAMES), message


def test_an_uploaded_zip_is_named_with_what_to_upload_instead(tmp_path: Path) -> None:
    root = tmp_path / "sub"
    _zip(root / "hw3.zip", {f"hw3/{name}": "X = 1\n" for name in NAMES})
    found, problems = find_solution_files(root, MODULES)
    assert found == {} and set(problems) == set(MODULES)
    for module in MODULES:
        message = problems[module]
        assert message.startswith(f"{module}.py not found in your submission: "), message  # triage reads this start
        assert f"your upload holds hw3.zip, an archive with {module}.py inside; the grader does not unpack archives" in message
        _says_upload_the_files(message)
    assert describe({"tests": [{"number": "1.1.1", "status": "failed", "output": problems["q1_solution"]}]}) == "missing q1_solution.py"


def test_other_archives_and_a_zip_in_a_folder_are_named(tmp_path: Path) -> None:
    root = tmp_path / "sub"
    _put(root / "hw3.tar.gz", "not really gzip")
    message = find_solution_files(root, MODULES)[1]["q2_solution"]
    assert "your upload holds hw3.tar.gz, an archive; the grader does not unpack archives" in message and "not an archive of them" in message
    _says_upload_the_files(message)
    other = tmp_path / "other"
    _zip(other / "final" / "submit.zip", {"notes.txt": "no solutions in here"})
    message = find_solution_files(other, MODULES)[1]["q3_solution"]
    assert "your upload holds final/submit.zip, an archive;" in message and "inside" not in message


def test_files_folders_deep_are_named_with_their_folder(tmp_path: Path) -> None:
    root = _upload(tmp_path / "sub", "HW3/code")
    found, problems = find_solution_files(root, MODULES)
    assert found == {} and set(problems) == set(MODULES)
    message = problems["q1_solution"]
    assert message.startswith("q1_solution.py not found in your submission: it is in HW3/code/, a folder inside a folder")
    assert "not the folder that holds them" in message
    _says_upload_the_files(message)


def test_a_plain_missing_file_says_nothing_more(tmp_path: Path) -> None:
    root = tmp_path / "sub"
    _put(root / "q1_solution.py")
    _put(root / "README.txt", "my notes")
    assert find_solution_files(root, MODULES)[1]["q2_solution"] == "q2_solution.py not found in your submission"


def test_a_linked_archive_is_not_opened(tmp_path: Path) -> None:
    """A link to a zip elsewhere on the grader: its contents are never listed to the student."""
    elsewhere = _zip(tmp_path / "grader" / "secret.zip", {name: "SECRET = 1\n" for name in NAMES})
    root = tmp_path / "sub"
    root.mkdir()
    (root / "hw3.zip").symlink_to(elsewhere)
    (root / "deep").mkdir()
    (root / "deep" / "er").symlink_to(tmp_path / "grader", target_is_directory=True)
    message = find_solution_files(root, MODULES)[1]["q1_solution"]
    assert message == "q1_solution.py not found in your submission", message


def test_macosx_metadata_is_ignored(tmp_path: Path) -> None:
    root = _upload(tmp_path / "sub", "hw3")
    for module in MODULES:
        _put(root / "__MACOSX" / f"{module}.py", "\x00\x05\x16\x07 AppleDouble")
        _put(root / "__MACOSX" / "hw3" / f"._{module}.py", "\x00\x05\x16\x07 AppleDouble")
    found, problems = find_solution_files(root, MODULES)
    assert problems == {}
    assert found == {m: root / "hw3" / f"{m}.py" for m in MODULES}


def test_macosx_alone_does_not_count(tmp_path: Path) -> None:
    root = tmp_path / "sub"
    _put(root / "__MACOSX" / "q1_solution.py")
    found, problems = find_solution_files(root, ("q1_solution",))
    assert found == {} and "not found" in problems["q1_solution"]


def test_hidden_folders_and_directories_named_like_files_are_ignored(tmp_path: Path) -> None:
    root = _upload(tmp_path / "sub", "hw3")
    _put(root / ".git" / "q1_solution.py")
    (root / "other" / "q2_solution.py").mkdir(parents=True)
    found, problems = find_solution_files(root, MODULES)
    assert problems == {} and found["q1_solution"] == root / "hw3" / "q1_solution.py"
    assert found["q2_solution"] == root / "hw3" / "q2_solution.py"


def test_missing_submission_folder(tmp_path: Path) -> None:
    found, problems = find_solution_files(tmp_path / "absent", MODULES)
    assert found == {} and set(problems) == set(MODULES)
    assert all("does not exist" in p for p in problems.values())


# ------------------------------------------------------------------ normalise_source

def test_normalise_strips_bom_and_crlf() -> None:
    raw = BOM + b"import torch\r\n\r\ndef f():\r\n    return 1\r\n"
    assert normalise_source(raw) == b"import torch\n\ndef f():\n    return 1\n"


def test_normalise_keeps_clean_sources_unchanged() -> None:
    clean = "x = 'é'\nprint(x)\n".encode("utf-8")
    assert normalise_source(clean) == clean
    assert normalise_source(b"") == b""


def test_normalise_strips_only_a_leading_bom() -> None:
    raw = b"s = '" + BOM + b"'\n"
    assert normalise_source(raw) == raw


def test_normalised_windows_source_compiles() -> None:
    raw = BOM + b"def f(x):\r\n    return (x +\r\n            1)\r\n"
    namespace: dict[str, object] = {}
    exec(compile(normalise_source(raw), "q1_solution.py", "exec"), namespace)
    assert namespace["f"](1) == 2  # type: ignore[operator]


# ------------------------------------------------------------------ stage

def test_stage_copies_only_the_solution_files(tmp_path: Path) -> None:
    root = tmp_path / "upload"
    folder = root / "hw3"
    (folder).mkdir(parents=True)
    (folder / "q1_solution.py").write_bytes(BOM + b"A = 1\r\nB = 2\r\n")
    _put(folder / "q2_solution.py", "import q1_solution\n")
    _put(folder / "q3_solution.py", "C = 3\n")
    for intruder in ("conftest.py", "torch.py", "sitecustomize.py", "pytest.ini", "numpy/__init__.py"):
        _put(folder / intruder, "raise SystemExit('should never be staged')\n")
    _put(root / "conftest.py", "raise SystemExit\n")
    staged = stage(root, MODULES, {}, None)
    try:
        files = sorted(p.relative_to(staged.submission).as_posix() for p in staged.submission.rglob("*"))
        assert files == ["q1_solution.py", "q2_solution.py", "q3_solution.py"]
        assert (staged.submission / "q1_solution.py").read_bytes() == b"A = 1\nB = 2\n"
        assert (staged.submission / "q2_solution.py").read_text() == "import q1_solution\n"
        for path in staged.submission.iterdir():
            assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
        assert staged.problems == {}
        assert set(staged.found) == set(MODULES)
        assert staged.scratch.is_dir() and list(staged.scratch.iterdir()) == []
        assert stat.S_IMODE(staged.scratch.stat().st_mode) == 0o700
        assert staged.submission.parent == staged.workdir and staged.scratch.parent == staged.workdir
        assert not staged.workdir.is_relative_to(root)
        # The upload itself is untouched.
        assert (folder / "q1_solution.py").read_bytes().startswith(BOM)
    finally:
        staged.cleanup()
    assert not staged.workdir.exists()


def test_stage_adds_support_modules_without_overriding(tmp_path: Path) -> None:
    root = _upload(tmp_path / "upload")
    _put(root / "helper.py", "STUDENT = True\n")
    support = {"helper": _put(tmp_path / "template" / "helper.py", "PROVIDED = True\n")}
    staged = stage(root, MODULES, support, None)
    try:
        assert (staged.submission / "helper.py").read_text() == "PROVIDED = True\n"
        assert stat.S_IMODE((staged.submission / "helper.py").stat().st_mode) == 0o644
    finally:
        staged.cleanup()


def test_stage_reports_missing_and_oversized_files(tmp_path: Path) -> None:
    root = tmp_path / "upload"
    _put(root / "q1_solution.py", "#" * (MAX_SOURCE_BYTES + 1))
    _put(root / "q3_solution.py")
    staged = stage(root, MODULES, {}, None)
    try:
        assert set(staged.found) == {"q3_solution"}
        assert "larger than" in staged.problems["q1_solution"]
        assert "not found" in staged.problems["q2_solution"]
        assert [p.name for p in staged.submission.iterdir()] == ["q3_solution.py"]
    finally:
        staged.cleanup()


def test_stage_does_not_follow_symlinks_out_of_the_upload(tmp_path: Path) -> None:
    secret = _put(tmp_path / "secret" / "hidden.py", "SECRET = 'expected values'\n")
    root = _upload(tmp_path / "upload")
    (root / "q1_solution.py").unlink()
    os.symlink(secret, root / "q1_solution.py")
    staged = stage(root, MODULES, {}, None)
    try:
        copied = staged.submission / "q1_solution.py"
        assert not (copied.exists() and "SECRET" in copied.read_text())
        assert "q1_solution" in staged.problems
    finally:
        staged.cleanup()


# ------------------------------------------------------------------ through grading and show

def test_grade_and_show_of_a_zip_upload_say_what_to_upload(tmp_path: Path) -> None:
    """The real commands: the student's view (``show``) of a grading of an upload that
    was hw3.zip says so for every test, and the grade table does too."""
    from harness_tests.regrade_helpers import cli

    upload = tmp_path / "upload"
    _zip(upload / "hw3.zip", {f"hw3/{name}": "X = 1\n" for name in NAMES})
    results = tmp_path / "results.json"
    graded = cli("grade", str(upload), "--results", str(results))
    assert graded.returncode == 0, graded.stderr
    assert "your upload holds hw3.zip" in graded.stdout and "total: 0/" in graded.stdout
    tests = json.loads(results.read_text(encoding="utf-8"))["tests"]
    assert tests and all("the grader does not unpack archives" in t["output"] for t in tests)
    shown = cli("show", str(results))
    assert shown.returncode == 0, shown.stderr
    visible = [t for t in tests if t.get("visibility", "visible") != "hidden"]
    assert shown.stdout.count("your upload holds hw3.zip, an archive with") == len(visible) > 0
    assert "upload the files themselves (q1_solution.py, q2_solution.py, q3_solution.py)" in shown.stdout
