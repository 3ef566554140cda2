"""Back the zygote's resident heap with huge pages before it forks many workers.

A fork copies one page-table entry per resident 4 KiB page, and the worker's exit frees
them again: with torch loaded that is ~45,000 entries, about 20 ms of kernel time per
worker here. Collapsed into 2 MiB pages, the same memory takes ~80 entries; a worker
that writes to a page still gets a private 4 KiB copy (the kernel splits the huge
mapping). Collapsing costs ~0.4 s once, so only a bulk regrade, which forks hundreds of
workers per zygote, asks for it. Best effort: kernels before 6.1 refuse MADV_COLLAPSE,
and grading is the same either way."""
from __future__ import annotations

import ctypes

from autograder.libc import LIBC

MADV_COLLAPSE = 25
HUGE_PAGE = 2 << 20
MIN_RESIDENT = 0.5  # sparse mappings (thread stacks, reserved arenas) would be filled in


def _candidates(smaps: str) -> list[tuple[int, int]]:
    """Aligned huge-page ranges of private writable anonymous mappings (and the heap)
    that are mostly resident already."""
    ranges: list[tuple[int, int]] = []
    current: tuple[int, int] | None = None
    for line in smaps.splitlines():
        fields = line.split()
        if fields and "-" in fields[0] and len(fields) >= 5 and not fields[0].endswith(":"):
            start, end = (int(x, 16) for x in fields[0].split("-"))
            anonymous = len(fields) == 5 or fields[5] == "[heap]"
            current = (start, end) if fields[1].startswith("rw") and fields[1].endswith("p") and anonymous else None
        elif current is not None and fields[:1] == ["Rss:"]:
            start, end = current
            if int(fields[1]) * 1024 >= MIN_RESIDENT * (end - start):
                low, high = -(-start // HUGE_PAGE) * HUGE_PAGE, end // HUGE_PAGE * HUGE_PAGE
                if high > low:
                    ranges.append((low, high - low))
            current = None
    return ranges


def collapse_resident_heap() -> int:
    """How many ranges the kernel collapsed (0 where it cannot)."""
    try:
        with open("/proc/self/smaps", encoding="ascii", errors="replace") as smaps:
            ranges = _candidates(smaps.read())
        madvise = LIBC.madvise
    except (OSError, AttributeError):
        return 0
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    return sum(1 for start, length in ranges if madvise(start, length, MADV_COLLAPSE) == 0)
