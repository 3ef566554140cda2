"""How much of a regrade's CPU no harness can save (run by hand, not in CI):

    python3 benchmarks/probe_floor.py [--n 100] [--loop-cpu SECONDS]

Regrades bench.py's synthetic class with every probe timed inside its worker (the CPU
time of the probe function: the student's code, and the model building and autograd a
test needs around it), and prints the total per probe kind. That total, plus the import
of torch that every grading pays once, is the CPU a regrade of this class spends
whatever the harness does. With ``--loop-cpu`` (bench.py's "run_autograder loop" CPU
for the same class), it says which per-submission ratio that floor allows.

The timing travels in an extra key of the worker's answer header, added by patching
the worker's code in this process before the regrade forks it: a measurement aid only.
"""
from __future__ import annotations

import argparse
import collections
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from autograder import wire  # noqa: E402
from autograder.paths import KitLayout  # noqa: E402
from autograder.regrade.command import regrade_export  # noqa: E402
from autograder.worker import child  # noqa: E402
from benchmarks.bench import synthetic_class  # noqa: E402

TIMING_KEY = "bench_probe_cpu"


def _timed_probes(log: Path) -> None:
    """Workers time each probe and report it in their answer; slots append it to ``log``."""
    table = child.table
    last: dict[str, str] = {}

    class Timed(dict):
        def __getitem__(self, kind: str):
            probe = dict.__getitem__(self, kind)

            def timed(modules, params, inputs):
                started = time.process_time()
                try:
                    return probe(modules, params, inputs)
                finally:
                    name = params.get("function") or params.get("module", "")
                    last["timing"] = f"{kind}:{name}:{time.process_time() - started:.6f}"

            return timed

    child.table = lambda: Timed(table())
    answer = child._answer

    def answer_with_timing(fd, header, tensors=None):
        answer(fd, {**header, TIMING_KEY: last.pop("timing", "")}, tensors)

    child._answer = answer_with_timing
    decode = wire.decode

    def decode_and_log(data):
        tensors, header = decode(data)
        if isinstance(header, dict) and header.get(TIMING_KEY):
            with log.open("a", encoding="utf-8") as handle:
                handle.write(header[TIMING_KEY] + "\n")
        return tensors, header

    wire.decode = decode_and_log


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100, help="submissions in the synthetic class")
    parser.add_argument("--loop-cpu", type=float, default=None, help="bench.py's run_autograder loop CPU seconds for the same class")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="hw3-floor-"))
    try:
        synthetic_class(args.n, work / "class")
        log = work / "probes.log"
        _timed_probes(log)
        code = regrade_export(KitLayout.here(), work / "class", work / "out")
        totals: collections.Counter[str] = collections.Counter()
        counts: collections.Counter[str] = collections.Counter()
        for line in log.read_text(encoding="utf-8").splitlines():
            kind, name, seconds = line.rsplit(":", 2)
            totals[f"{kind}:{name}"] += float(seconds)
            counts[f"{kind}:{name}"] += 1
        print(f"\n{'probe':48} {'count':>6} {'CPU s':>8}")
        for key, seconds in totals.most_common():
            print(f"{key:48} {counts[key]:6d} {seconds:8.2f}")
        probes = sum(totals.values())
        print(f"{'all probes':48} {sum(counts.values()):6d} {probes:8.2f}")
        if args.loop_cpu:
            target = args.loop_cpu / 15
            print(f"a regrade at 1/15 of the loop's CPU may spend {target:.1f} s; the probes alone take {probes:.1f} s, "
                  f"leaving {target - probes:.1f} s for importing torch once and for every other step of {args.n} gradings")
        return code
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
