"""``fixtures verify``: the frozen files match their hashes, and the reference passes
every graded test through the real worker path."""
from __future__ import annotations

from autograder.config import GradingConfig
from autograder.fixture_store import FILES, FixtureError, FixtureStore, sha256
from autograder.paths import KitLayout


def verify(config: GradingConfig, layout: KitLayout) -> list[str]:
    from autograder.grading import grade_folder

    problems = []
    try:
        store = FixtureStore(layout.fixtures_dir)
    except FixtureError as exc:
        return [str(exc)]
    for name in FILES.values():
        path = layout.fixtures_dir / name
        if not path.exists():
            problems.append(f"{path}: missing")
        elif sha256(path) != store.manifest.get("files", {}).get(name):
            problems.append(f"{path}: sha256 differs from the manifest")
    if problems:
        return problems
    summary = grade_folder(layout, layout.reference_dir, None)
    for outcome in summary.outcomes:
        if outcome.status != "passed":
            problems.append(f"reference fails {outcome.number}: {outcome.output.splitlines()[0] if outcome.output else ''}")
    if not summary.outcomes:
        problems.append(f"grading the reference failed: {summary.table}")
    return problems
