"""A grading run is not changed by the pytest plugins installed on the machine: a TA's
environment may hold plugins that reorder, deselect or reseed tests."""
from __future__ import annotations

from pathlib import Path

import pytest

from autograder.config import load_config
from autograder.grading.run import run_suites
from autograder.sandbox.mode import start_workers
from harness_tests.corpus import LAYOUT
from harness_tests.regrade_helpers import reference

DESELECT_ALL = '''
def pytest_collection_modifyitems(session, config, items):
    config.hook.pytest_deselected(items=list(items))
    items.clear()
'''


def _install_plugin(site: Path) -> None:
    """A distribution with a ``pytest11`` entry point, as pip would leave it."""
    site.mkdir()
    (site / "deselect_all_plugin.py").write_text(DESELECT_ALL, encoding="utf-8")
    info = site / "deselect_all-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: deselect-all\nVersion: 1.0\n", encoding="utf-8")
    (info / "entry_points.txt").write_text("[pytest11]\ndeselect_all = deselect_all_plugin\n", encoding="utf-8")


def test_an_installed_plugin_is_not_loaded_into_a_grading_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    _install_plugin(site)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    import importlib.metadata

    assert any(ep.name == "deselect_all" for ep in importlib.metadata.entry_points(group="pytest11"))  # pytest would load it
    config = load_config(LAYOUT.config_file)
    pool, _ = start_workers(config.sandbox)
    try:
        handle, output, _ = run_suites(LAYOUT, config, reference(tmp_path / "upload"), pool)
    finally:
        pool.close()
    assert len(handle.outcomes) == len(config.tests()), output[-2000:]
    assert all(o.score == o.max_score for o in handle.outcomes.values()), output[-2000:]
