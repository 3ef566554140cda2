"""``python -m autograder``: grade, fixtures, build, calibrate, regrade, show.

The student kit ships without the instructor tools: a command is offered only when its
modules are present, so the kit's ``--help`` lists ``grade`` alone. Errors a user can fix
(a missing folder, a bad grading.yaml or export) are one line on stderr and exit code 2;
an interruption exits 130 without a traceback."""
from __future__ import annotations

import argparse
import importlib.util
import signal
import sys
from pathlib import Path

from autograder.config import ConfigError, load_config
from autograder.paths import STYLES_FOLDER, KitLayout
from autograder.grading.preflight import PreflightError


def _cmd_fixtures(args: argparse.Namespace, layout: KitLayout) -> int:
    from autograder.course import fixturegen
    from autograder.course.fixture_verify import check
    from autograder.grading.recipes import CoincidingMistake

    config = load_config(layout.config_file)
    if args.action == "generate":
        coinciding: list[CoincidingMistake] = []
        manifest = fixturegen.generate(config, layout, coinciding=coinciding)
        for mistake in coinciding:
            print(mistake.line())
        sizes = sum((layout.fixtures_dir / f).stat().st_size for f in manifest["files"])  # type: ignore[union-attr]
        print(f"wrote {len(manifest['cases'])} cases to {layout.fixtures_dir} ({sizes / 1024:.0f} KiB)")  # type: ignore[arg-type]
        return 0
    result = check(config, layout, styles=_styles_option(args))
    for note in result.notes:
        print(note)
    for problem in result.problems:
        print(f"FAIL {problem}")
    print("fixtures verified" if not result.problems else f"{len(result.problems)} problem(s)")
    return 0 if not result.problems else 1


def _styles_option(args: argparse.Namespace) -> Path | None:
    """``--styles DIR``: a folder of correct styles other than the project's own."""
    styles = getattr(args, "styles", None)
    if styles is None:
        return None
    path = Path(styles).resolve()
    if not path.is_dir():
        raise UsageError(f"{styles}: --styles folder not found")
    return path


def _cmd_grade(args: argparse.Namespace, layout: KitLayout) -> int:
    submission = Path(args.dir) if args.dir else layout.default_submission()
    if submission.is_file():
        names = ", ".join(f"{m}.py" for m in load_config(layout.config_file).modules)
        raise UsageError(f"{submission}: a file, not a folder: give the folder that holds {names} "
                         f"(for instance `grade {submission.parent or '.'}`)")
    if not submission.is_dir():
        raise UsageError(f"{submission}: submission folder not found")
    load_config(layout.config_file)  # a broken grading.yaml is the user's error, not a grade
    from autograder.grading.run import grade_folder

    from autograder.grading.report import explain

    summary = grade_folder(layout, submission, Path(args.results) if args.results else None)
    if summary.mode:
        print(summary.mode)
    if args.explain and summary.outcomes:
        print(explain(summary.outcomes))
        print()
    print(summary.table)
    return 0 if summary.outcomes else 1


def _cmd_audit(args: argparse.Namespace, layout: KitLayout) -> int:
    """Exit 1 when a mutant survives or costs another part than its own."""
    from autograder.course.audit import run_audit
    from autograder.course.audit_report import summary, write_all

    out = Path(args.out)
    run = run_audit(layout, out, args.part, args.jobs)
    csv_path, md_path = write_all(out, load_config(layout.config_file), run.records)
    print(f"{summary(run.records)}; {run.seconds:.0f} s, {run.cpu_seconds / max(1, len(run.records)):.2f} s CPU per mutant; wrote {csv_path} and {md_path}")
    return 1 if any(r.status in ("killed_elsewhere", "survived") for r in run.records) else 0


class UsageError(ValueError):
    """Bad input the user can fix: printed as one line, exit code 2."""


def _interrupt_on_sigterm() -> None:
    """SIGTERM ends the command like Ctrl-C does: cleanly, exit code 130."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


# Instructor commands and the modules each needs (absent from the student kit).
INSTRUCTOR_MODULES = {
    "fixtures": ("course.fixturegen", "course.fixture_verify"),
    "build": ("course.build",),
    "calibrate": ("course.calibrate",),
    "regrade": ("regrade.command", "regrade.batch"),
    "show": ("regrade.show",),
    "new": ("course.scaffold", "course.scaffold_files"),
    "sandbox-users": ("grading.gradescope", "sandbox.users"),  # Gradescope's side (setup.sh), not the student kit's
    "audit": ("course.audit", "course.audit_report", "course.mutate", "course.equivalence", "regrade.batch"),
}


def available(command: str) -> bool:
    """Whether the modules of ``command`` are here (the student kit has no course/ nor regrade/)."""
    return all(_present(f"autograder.{module}") for module in INSTRUCTOR_MODULES.get(command, ()))


def _present(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # its package is absent
        return False


def main(argv: list[str] | None = None) -> int:
    layout = KitLayout.here()
    parser = argparse.ArgumentParser(prog="python -m autograder", description="autograding kit")
    sub = parser.add_subparsers(dest="command", required=True)
    grade = sub.add_parser("grade", help="grade a submission folder and print a per-part table")
    default = "this folder (the student kit)" if layout.default_submission() == layout.root else "reference/"
    grade.add_argument("dir", nargs="?", default=None, help=f"submission folder (default: {default})")
    grade.add_argument("--results", default=None, help="where to write results.json")
    grade.add_argument("--explain", "--verbose", action="store_true", help="print every test's full message before the table")
    if available("fixtures"):
        fixtures = sub.add_parser("fixtures", help="generate or verify the frozen fixtures")
        fixtures.add_argument("action", choices=("generate", "verify"))
        fixtures.add_argument("--styles", default=None, metavar="DIR", help=f"verify: the correct styles to calibrate with (default: {STYLES_FOLDER.as_posix()}/)")
    if available("build"):
        build = sub.add_parser("build", help="write autograder.zip and student_kit.zip")
        build.add_argument("--out", required=True)
    if available("calibrate"):
        calibrate = sub.add_parser("calibrate", help="show how each tolerance sits between correct styles and known mistakes")
        calibrate.add_argument("--styles", default=None, metavar="DIR", help=f"the correct styles, one folder each (default: {STYLES_FOLDER.as_posix()}/); the reference always counts")
    if available("regrade"):
        regrade = sub.add_parser("regrade", help="grade every submission of a Gradescope export")
        regrade.add_argument("export")
        regrade.add_argument("--out", required=True)
        regrade.add_argument("--jobs", type=int, default=None, help="parallel graders (default: sandbox.slots_per_core per core, grading.yaml)")
        regrade.add_argument("--force", action="store_true", help="regrade every submission, even those whose results are current")
        regrade.add_argument("--only", nargs="+", metavar="ID", default=None,
                             help="regrade just these submissions: folder names, or the submission IDs Gradescope shows (236126116 for submission_236126116)")
        regrade.add_argument("--due", default=None, metavar="WHEN",
                             help="the due date with its zone ('2026-04-15 23:00 -05:00'): fills grades.csv's late column")
    if available("audit"):
        audit = sub.add_parser("audit", help="grade mutants of the reference and report what the tests let through")
        audit.add_argument("--out", default="audit", help="folder for audit.csv, audit.md and the mutants (default: ./audit)")
        audit.add_argument("--part", nargs="+", metavar="P", default=None, help="audit just these parts (for instance 1.3 2.1)")
        audit.add_argument("--jobs", type=int, default=None, help="parallel graders (default: sandbox.slots_per_core per core, grading.yaml)")
    if available("show"):
        show = sub.add_parser("show", help="render one results.json as the student sees it on Gradescope")
        show.add_argument("results")
    if available("new"):
        new = sub.add_parser("new", help="write a new assignment's project: this engine and a working two-function example")
        new.add_argument("name", help="the assignment's name (letters, digits, '-', '_'); the solution module is NAME_solution")
        new.add_argument("--out", default=None, help="the project folder to create (default: ./NAME)")
    if available("sandbox-users"):
        sub.add_parser("sandbox-users", help="print the sandbox users grading.yaml names, one a line (setup.sh creates them)")
    args = parser.parse_args(argv)
    _interrupt_on_sigterm()
    try:
        if args.command == "fixtures":
            return _cmd_fixtures(args, layout)
        if args.command == "grade":
            return _cmd_grade(args, layout)
        if args.command == "build":
            from autograder.course.build import BuildRefused, build_all

            try:
                paths = build_all(layout, Path(args.out))
            except BuildRefused as refused:
                for problem in refused.problems:
                    print(f"refused: {problem}", file=sys.stderr)
                return 1
            for path in paths:
                print(f"wrote {path}")
            return 0
        if args.command == "calibrate":
            from autograder.course.calibrate import calibrate
            from autograder.grading.fixture_store import FixtureError

            try:
                report = calibrate(layout, styles=_styles_option(args))
            except FixtureError as exc:  # missing or corrupt fixtures: the message names the file
                raise UsageError(str(exc)) from None
            print(report.table())
            return 0 if all(t.ok for t in report.tests.values()) else 1
        if args.command == "regrade":
            from autograder.regrade.command import regrade_export

            return regrade_export(layout, Path(args.export), Path(args.out), args.jobs, args.force, args.only, args.due)
        if args.command == "new":
            from autograder.course.scaffold import ScaffoldError, next_steps, scaffold

            out = Path(args.out) if args.out else Path(args.name)
            try:
                written = scaffold(args.name, out)
            except ScaffoldError as exc:
                raise UsageError(str(exc)) from None
            print(f"wrote {len(written)} files and folders to {out}")
            print(next_steps(out))
            return 0
        if args.command == "sandbox-users":
            from autograder.sandbox.users import sandbox_users

            print("\n".join(sandbox_users(load_config(layout.config_file))))
            return 0
        if args.command == "audit":
            return _cmd_audit(args, layout)
        if args.command == "show":
            from autograder.regrade.show import render_file

            print(render_file(Path(args.results)))
            return 0
    except ConfigError as exc:
        print(f"configuration error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except PreflightError as exc:
        print(f"error: the kit cannot grade: {_one_line(exc)}", file=sys.stderr)
        return 2
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 2


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())
