"""Which of the zygote's mappings a bulk regrade collapses into huge pages: resident,
private, writable, anonymous (or the heap), aligned to 2 MiB; and that asking is harmless."""
from __future__ import annotations

from autograder.sandbox.hugepages import _candidates, collapse_resident_heap


def test_huge_page_candidates_are_resident_private_anonymous_ranges() -> None:
    smaps = (
        "00400000-00600000 r-xp 00000000 08:01 1 /usr/bin/python3\nRss: 2048 kB\n"
        "01000000-01a00000 rw-p 00000000 00:00 0 [heap]\nRss: 9000 kB\n"
        "7f0000100000-7f0000900000 rw-p 00000000 00:00 0 \nRss: 8000 kB\n"
        "7f0001000000-7f0002000000 rw-p 00000000 00:00 0 \nRss: 100 kB\n"
        "7f0003000000-7f0003400000 rw-s 00000000 00:01 5 /dev/shm/x\nRss: 4096 kB\n"
    )
    two_mib = 2 << 20
    assert _candidates(smaps) == [(0x1000000, 0xA00000 // two_mib * two_mib), (0x7F0000200000, 0x600000)]


def test_collapsing_is_best_effort() -> None:
    assert collapse_resident_heap() >= 0  # 0 where the kernel refuses; never an error
