"""``python -m autograder calibrate``: how each tolerance of grading.yaml sits between
correct styles and known mistakes.

For every comparison a test makes, the *tolerance ratio* is the worst element's
deviation in units of the allowed one (``atol + rtol * |expected|``): 1 is the pass
line. Correct alternative styles (``harness_tests/submissions/styles``, graded through
the real worker path) should stay below 0.1; the outputs of known mistakes stored with
the fixtures (the hints) should be above 10."""
from __future__ import annotations

import math
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from autograder.compare import tolerance_ratio
from autograder.config import GradingConfig, load_config
from autograder.fixture_store import FixtureStore
from autograder.grading import run_pytest
from autograder.paths import KitLayout
from autograder.plugin import GradingHandle
from autograder.sandbox import SandboxPolicy, Zygote

STYLES = Path("harness_tests") / "submissions" / "styles"
STYLE_LIMIT = 0.1
MISTAKE_LIMIT = 10.0


@dataclass
class TestCalibration:
    number: str
    rtol: float
    atol: float
    style_ratio: float = 0.0
    worst_style: str = ""
    mistake_ratio: float = math.inf
    closest_mistake: str = ""
    comparisons: int = 0

    @property
    def ok(self) -> bool:
        return self.style_ratio <= STYLE_LIMIT and self.mistake_ratio >= MISTAKE_LIMIT


@dataclass
class CalibrationReport:
    tests: dict[str, TestCalibration] = field(default_factory=dict)

    def table(self) -> str:
        lines = [f"{'test':7} {'rtol':>8} {'atol':>8} {'styles max':>11} {'mistakes min':>13}  worst style / closest mistake"]
        for t in self.tests.values():
            mistakes = "-" if math.isinf(t.mistake_ratio) else f"{t.mistake_ratio:.3g}"
            flag = "" if t.ok else "   <-- outside [0.1, 10]"
            lines.append(f"{t.number:7} {t.rtol:8.1e} {t.atol:8.1e} {t.style_ratio:11.3g} {mistakes:>13}  {t.worst_style} / {t.closest_mistake}{flag}")
        return "\n".join(lines)


def _styles(layout: KitLayout, root: Path) -> dict[str, Path]:
    """Every style over a copy of the reference, as complete submission folders in ``root``."""
    folders = {"reference": layout.reference_dir}
    for style in sorted((layout.root / STYLES).iterdir()):
        if not style.is_dir():
            continue
        target = root / style.name
        shutil.copytree(layout.reference_dir, target)
        for item in style.glob("*.py"):
            shutil.copyfile(item, target / item.name)
        folders[style.name] = target
    return folders


def calibrate(layout: KitLayout, config: GradingConfig | None = None) -> CalibrationReport:
    config = config or load_config(layout.config_file)
    report = CalibrationReport()
    for spec in config.tests():
        if spec.tolerance is not None:
            report.tests[spec.number] = TestCalibration(spec.number, spec.tolerance.rtol, spec.tolerance.atol)
    def record(style: str, number: str, key: str, ratio: float) -> None:
        entry = report.tests.get(number)
        if entry is None:
            return
        entry.comparisons += 1
        if ratio > entry.style_ratio:
            entry.style_ratio, entry.worst_style = ratio, f"{style} ({key})"

    workdir = Path(tempfile.mkdtemp(prefix="autograder-calibrate-"))
    zygote = Zygote.start(SandboxPolicy.from_config(config.sandbox))
    try:
        handle = GradingHandle(zygote, submissions=_styles(layout, workdir), on_done=lambda done: None, recorder=record)
        run_pytest(layout, config, handle)
    finally:
        zygote.close()
        shutil.rmtree(workdir, ignore_errors=True)
    store = FixtureStore(layout.fixtures_dir)
    for case_name, meta in store.manifest["cases"].items():
        entry = report.tests.get(meta["test"])
        if entry is None or not meta.get("hints"):
            continue
        case = store.case(case_name)
        spec = config.test(meta["test"])
        assert spec.tolerance is not None
        for key, hint in case.hints.items():
            target = case.expected[key.split(":", 1)[0]]
            ratio = tolerance_ratio(hint.output.to(target.dtype), target, spec.tolerance)
            if ratio < entry.mistake_ratio:
                entry.mistake_ratio, entry.closest_mistake = ratio, f"{case_name}:{key}"
    return report
