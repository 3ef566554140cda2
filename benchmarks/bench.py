"""Benchmark (run by hand, not in CI): the kit's performance targets, measured in one run.

    python3 benchmarks/bench.py [--n 100] [--loop-n 100]

1. baseline: ``python3 -c "import torch, numpy, pytest, yaml"`` (CPU time, peak memory)
2. one ``run_autograder`` of the reference, as Gradescope runs it (from the built zip):
   CPU time of the whole process tree and its peak memory (sum of PSS and of RSS over
   every process of the tree, sampled every 5 ms)
3. a per-submission loop: ``run_autograder`` once per submission, one at a time (``--jobs``)
4. ``regrade`` of the same synthetic class (reference, corpus bugs and styles, cycled),
   ``--regrade-runs`` times, each after its share of the loop (the figures use their mean)
and prints the ratios against the targets (CPU <= 2x baseline, memory <= 600 MiB,
regrade CPU per submission <= 1/15 of one run_autograder, regrade throughput >= 15x the
loop's), and whether regrade and the loop agree.

Both sides of a ratio grade the same submissions: the class holds styles whose own code
loops in Python over thousands of rows (seconds each), so a loop over a prefix of the
class would compare another workload. ``--loop-n`` grades an evenly spread sample in the
loop instead of all, and the regrade figures are then taken over that sample too (its
results' own ``execution_time``). The regrade's memory is sampled every 0.2 s, not every
5 ms: reading every process's page tables that often slows what is timed."""
from __future__ import annotations

import argparse
import json
import os
import queue
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from autograder.course.build import build_autograder_zip  # noqa: E402
from autograder.paths import KitLayout  # noqa: E402
from harness_tests.corpus import entries, materialise, part_scores  # noqa: E402
from harness_tests.gradescope_sim import gradescope_env, install, simulate  # noqa: E402


@dataclass
class Measure:
    wall: float
    cpu: float
    peak_pss_mib: float
    peak_rss_mib: float


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _tree(root_pid: int) -> list[int]:
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
                parents[int(entry)] = int(fields[1])
            except (OSError, IndexError, ValueError):
                continue
    tree, frontier = {root_pid}, [root_pid]
    while frontier:
        pid = frontier.pop()
        for child, parent in parents.items():
            if parent == pid and child not in tree:
                tree.add(child)
                frontier.append(child)
    return sorted(tree)


def _memory(pids: list[int]) -> tuple[float, float]:
    pss = rss = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as rollup:
                for line in rollup:
                    if line.startswith("Pss:"):
                        pss += int(line.split()[1])
                    elif line.startswith("Rss:"):
                        rss += int(line.split()[1])
        except OSError:
            continue
    return pss / 1024, rss / 1024


def measure(command: list[str], env: dict[str, str] | None = None, every: float = 0.005) -> Measure:
    """Run ``command``; its whole tree's CPU time (rusage of waited descendants) and
    peak memory (sampled ``every`` seconds)."""
    cpu0 = _children_cpu()
    started = time.monotonic()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak = [0.0, 0.0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            pss, rss = _memory(_tree(proc.pid))
            peak[0], peak[1] = max(peak[0], pss), max(peak[1], rss)
            time.sleep(every)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    proc.wait()
    stop.set()
    sampler.join()
    return Measure(time.monotonic() - started, _children_cpu() - cpu0, peak[0], peak[1])


def synthetic_class(n: int, where: Path) -> list[Path]:
    pool = [("reference", None)] + [(e.key, e) for e in entries("bugs") + entries("styles")]
    folders = []
    for i in range(n):
        name, entry = pool[i % len(pool)]
        target = where / f"submission_{i:03d}"
        if entry is None:
            shutil.copytree(KitLayout.here().reference_dir, target)
        else:
            materialise(entry, target)
        folders.append(target)
    return folders


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100, help="submissions in the synthetic class")
    parser.add_argument("--loop-n", type=int, default=None, help="how many of them the run_autograder loop grades (default: all)")
    parser.add_argument("--jobs", type=int, default=1, help="parallel run_autograder calls in the loop (default 1: the target compares with a one-at-a-time loop)")
    parser.add_argument("--regrade-runs", type=int, default=3, help="regrades of the class, interleaved with the loop; the figures use their mean")
    parser.add_argument("--regrade-jobs", type=int, default=None, help="regrade --jobs (default: regrade's own default)")
    args = parser.parse_args()
    loop_n = min(args.loop_n or args.n, args.n)
    work = Path(tempfile.mkdtemp(prefix="hw3-bench-"))
    try:
        baseline = measure([sys.executable, "-c", "import torch, numpy, pytest, yaml"])
        zip_path = build_autograder_zip(KitLayout.here(), work / "dist")
        one_root = work / "one"
        install(zip_path, KitLayout.here().reference_dir, one_root)
        single = measure(["bash", str(one_root / "source" / "run_autograder")], env=gradescope_env(one_root))
        score = json.loads((one_root / "results" / "results.json").read_text())["score"]

        klass = synthetic_class(args.n, work / "class")
        sample = [klass[round(i * args.n / loop_n)] for i in range(loop_n)]  # evenly spread
        loop_results: dict[str, dict] = {}

        users = queue.Queue()
        for slot in range(args.jobs):
            users.put("hw3sandbox" if slot == 0 else f"hw3sandbox{slot}")

        def one(folder: Path) -> None:
            user = users.get()  # concurrent runs need distinct sandbox users
            try:
                loop_results[folder.name] = simulate(zip_path, folder, work / "loop" / folder.name, sandbox_user=user).results()
            finally:
                users.put(user)

        # The machine's speed drifts by a third over minutes here: the loop runs in as many
        # chunks as there are regrades, each regrade right after its chunk, so that both
        # sides of a ratio sample the same stretches of time.
        loop_wall = loop_cpu = 0.0
        runs: list[tuple[Measure, Path]] = []
        for run in range(args.regrade_runs):
            chunk = sample[run * len(sample) // args.regrade_runs:(run + 1) * len(sample) // args.regrade_runs]
            cpu0, started = _children_cpu(), time.monotonic()
            with ThreadPoolExecutor(max_workers=args.jobs) as pool:
                list(pool.map(one, chunk))
            loop_wall += time.monotonic() - started
            loop_cpu += _children_cpu() - cpu0
            out = work / f"regrade-{run}"
            regrade_cmd = [sys.executable, "-m", "autograder", "regrade", str(work / "class"), "--out", str(out)]
            if args.regrade_jobs:
                regrade_cmd += ["--jobs", str(args.regrade_jobs)]
            runs.append((measure(regrade_cmd, every=0.2), out))
        # Their mean, as the loop's figures add up every stretch.
        regrade = Measure(*(sum(getattr(m, f) for m, _ in runs) / len(runs) for f in ("wall", "cpu", "peak_pss_mib", "peak_rss_mib")))
        out = runs[-1][1]
        seconds = {f.name: float(json.loads((out / "results" / f"{f.name}.json").read_text())["execution_time"]) for f in klass}
        differ = {
            f"{name} (regrade run {run + 1})": (part_scores(result), part_scores(json.loads((run_out / "results" / f"{name}.json").read_text())))
            for run, (_, run_out) in enumerate(runs)
            for name, result in loop_results.items()
            if part_scores(json.loads((run_out / "results" / f"{name}.json").read_text())) != part_scores(result)
        }
        agree = not differ
        # The regrade's share of the sample: its CPU and wall time in proportion to the
        # time its slots spent on those submissions (all of it when the loop grades all).
        share = sum(seconds[f.name] for f in sample) / sum(seconds.values())
        regrade_cpu_sample = regrade.cpu * share
        regrade_wall_sample = regrade.wall * share
        print(f"{'measurement':44} {'wall s':>8} {'CPU s':>8} {'peak PSS MiB':>13} {'peak RSS MiB':>13}")
        rows = [("baseline: import torch, numpy, pytest, yaml", baseline), (f"one run_autograder (reference, {score:g}/36)", single)]
        rows += [(f"regrade of {args.n} submissions, run {i + 1}", m) for i, (m, _) in enumerate(runs)]
        rows += [(f"regrade of {args.n} submissions, mean", regrade)]
        for label, m in rows:
            print(f"{label:44} {m.wall:8.2f} {m.cpu:8.2f} {m.peak_pss_mib:13.0f} {m.peak_rss_mib:13.0f}")
        print(f"{f'run_autograder loop, {loop_n} submissions, {args.jobs} at a time':44} {loop_wall:8.2f} {loop_cpu:8.2f}")
        if loop_n < args.n:
            print(f"{f'regrade, its share for those {loop_n} ({share:.0%})':44} {regrade_wall_sample:8.2f} {regrade_cpu_sample:8.2f}")
        print()
        print(f"CPU time of one run_autograder / baseline: {single.cpu / baseline.cpu:.2f}x (target <= 2x)")
        print(f"peak memory of one run_autograder: {single.peak_pss_mib:.0f} MiB PSS, {single.peak_rss_mib:.0f} MiB RSS summed over the tree (target <= 600 MiB)")
        per_submission = regrade_cpu_sample / loop_n
        per_run = loop_cpu / loop_n
        print(f"regrade CPU per submission: {per_submission:.3f} s = 1/{per_run / per_submission:.1f} of a run_autograder of the same submissions "
              f"({per_run:.2f} s each) (target <= 1/15); 1/{single.cpu / per_submission:.1f} of the reference's {single.cpu:.2f} s")
        print(f"throughput on the same submissions: loop {loop_n / loop_wall:.2f}/s, regrade {loop_n / regrade_wall_sample:.2f}/s: "
              f"{loop_wall / regrade_wall_sample:.1f}x (target >= 15x)")
        print(f"regrade and the loop give the same per-part scores for all {loop_n}: {agree}")
        for name, (single_scores, batch_scores) in sorted(differ.items()):
            print(f"  {name}: run_autograder {single_scores} vs regrade {batch_scores}")
        return 0 if agree else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
