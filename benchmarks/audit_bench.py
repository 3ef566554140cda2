"""Time the mutation audit (``python -m autograder audit``), by hand, not in CI.

Prints the wall time of the whole audit, the CPU it took (the audit process and every
process it waited for: grading slots, their zygotes and workers, the differential
checks), that CPU per mutant, and the load average before and after: the machine may be
shared, and the figures mean little without it. The target is the whole HW3 audit in at
most 20 minutes on 2 cores.

    python3 benchmarks/audit_bench.py [--part P ...] [--jobs N]
"""
from __future__ import annotations

import argparse
import csv
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_SECONDS = 20 * 60


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3]) if Path("/proc/loadavg").exists() else "n/a"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", nargs="+", default=None)
    parser.add_argument("--jobs", type=int, default=None)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="audit-bench-") as tmp:
        out = Path(tmp) / "audit"
        command = [sys.executable, "-m", "autograder", "audit", "--out", str(out)]
        command += ["--part", *args.part] if args.part else []
        command += ["--jobs", str(args.jobs)] if args.jobs else []
        load_before = _load()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.monotonic()
        run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        wall = time.monotonic() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        load_after = _load()
        if not (out / "audit.csv").exists():
            print(run.stdout + run.stderr, file=sys.stderr)
            return 2
        with (out / "audit.csv").open(encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    statuses = Counter(r["status"] for r in rows)
    parts = Counter(r["part"] for r in rows)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(run.stdout.strip().splitlines()[-1] if run.stdout.strip() else "(no summary)")
    print(f"mutants per part: {', '.join(f'{p} {n}' for p, n in sorted(parts.items()))}")
    print(f"status: {', '.join(f'{s} {n}' for s, n in sorted(statuses.items()))}")
    print(f"wall time: {wall:.1f} s (target <= {TARGET_SECONDS} s for the whole HW3 audit: {'met' if wall <= TARGET_SECONDS else 'missed'})")
    print(f"CPU: {cpu:.1f} s over {len(rows)} mutants + the reference = {cpu / max(1, len(rows)):.2f} s per mutant")
    print(f"cores: {cores}; load average before {load_before}, after {load_after}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
