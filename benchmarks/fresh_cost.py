"""Benchmark (by hand, not in CI): what drawing the visible cases afresh costs a grading.

    python3 benchmarks/fresh_cost.py [--n 20]

On Gradescope and in a regrade every visible test runs on inputs drawn for the submission:
the case recipes run again and the reference computes the expected values in float64, in
the trusted process. This times exactly that step (``CaseSource.case`` for every visible
case), for ``--n`` submissions of distinct bytes: the first one pays for importing the
reference and the recipes, the others only for drawing. It prints CPU and wall per
submission, and the CPU as a share of one ``run_autograder`` of the reference (measured
here, the same way ``bench.py`` measures it), so the figure can be read against the
grading it is part of."""
from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from autograder.config import load_config  # noqa: E402
from autograder.grading.fixture_store import FixtureStore  # noqa: E402
from autograder.grading.fresh_cases import CaseSource  # noqa: E402
from autograder.paths import KitLayout  # noqa: E402


def _visible_cases(store: FixtureStore) -> list[str]:
    cases = store.manifest.get("cases", {})
    return [name for name in cases if store.meta(name).get("visibility") == "visible"]


def _draw_all(source: CaseSource, names: list[str], salt: str) -> tuple[float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    for name in names:
        source.case(name, salt)
    return time.process_time() - cpu, time.perf_counter() - wall


def _run_autograder_cpu() -> float:
    """CPU of one Gradescope run of the reference, from the built zip (bench.py's method)."""
    from bench import measure  # benchmarks/ is on sys.path when run as a script
    from autograder.course.build import build_autograder_zip
    from harness_tests.gradescope_sim import gradescope_env, install

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        zip_path = build_autograder_zip(KitLayout.here(), base / "dist")
        root = base / "gs"
        install(zip_path, KitLayout.here().reference_dir, root)
        return measure(["bash", str(root / "source" / "run_autograder")], env=gradescope_env(root)).cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20, help="submissions of distinct bytes")
    parser.add_argument("--skip-run", action="store_true", help="do not time a run_autograder for the share")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)  # as the trusted process grades (autograder/sandbox/zygote.py)
    layout = KitLayout.here()
    store = FixtureStore(layout.fixtures_dir)
    if not store.private:
        print("the non-visible fixtures are missing: visible cases are frozen here (the student kit)")
        return 2
    source = CaseSource(store, load_config(layout.config_file), layout.reference_dir)
    names = _visible_cases(store)
    figures = [_draw_all(source, names, hashlib.sha256(f"submission {i}".encode()).hexdigest()) for i in range(args.n)]
    first_cpu, first_wall = figures[0]
    rest = figures[1:] or figures
    cpu = sum(c for c, _ in rest) / len(rest)
    wall = sum(w for _, w in rest) / len(rest)
    print(f"{len(names)} visible cases drawn per submission, {args.n} submissions")
    print(f"per submission: {', '.join(f'{c:.3f}' for c, _ in figures)} s CPU")
    print(f"first submission (imports the reference and recipes): {first_cpu:.3f} s CPU, {first_wall:.3f} s wall")
    print(f"each further submission: {cpu:.3f} s CPU, {wall:.3f} s wall")
    if not args.skip_run:
        total = _run_autograder_cpu()
        print(f"one run_autograder of the reference: {total:.2f} s CPU; drawing is {first_cpu / total:.1%} of it "
              f"(a regrade slot pays {cpu / total:.1%} of that per further submission)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
