"""Every tolerance of grading.yaml sits between the correct styles (ratio <= 0.1) and
the known mistakes stored with the fixtures (ratio >= 10), measured through the real
worker path: the calibration is re-checked on every run, not just written down once."""
from __future__ import annotations

import math

from autograder.course.calibrate import MISTAKE_LIMIT, STYLE_LIMIT, calibrate
from harness_tests.corpus import LAYOUT


def test_tolerances_are_calibrated() -> None:
    report = calibrate(LAYOUT)
    assert report.tests, "no toleranced test was measured"
    for entry in report.tests.values():
        assert entry.comparisons > 0, f"{entry.number}: the styles made no comparison under this tolerance"
        assert entry.style_ratio <= STYLE_LIMIT, f"{entry.number}: a correct style uses {entry.style_ratio:.3g} of the tolerance ({entry.worst_style})"
        assert math.isinf(entry.mistake_ratio) or entry.mistake_ratio >= MISTAKE_LIMIT, (
            f"{entry.number}: a known mistake is only {entry.mistake_ratio:.3g}x the tolerance ({entry.closest_mistake})"
        )
    assert sum(not math.isinf(e.mistake_ratio) for e in report.tests.values()) >= 15
