"""Fixtures for the tests of the provided report code (q1_vae, q2_wgan, q3_simsiam, their samplers, resnet_cifar).

The report scripts live in ``student_template/`` and import the student's
``q*_solution`` modules by name. These fixtures import them with a controlled
``sys.path`` (the reference solutions first, or the template alone) and a clean
``sys.modules``, so that each test knows which solutions it is running, and they
restore both afterwards so that other test folders are unaffected.
"""
from __future__ import annotations

import contextlib
import importlib
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest

REPO = Path(__file__).resolve().parents[2]
REFERENCE = REPO / "reference"
TEMPLATE = REPO / "student_template"
SOLUTIONS = ("q1_solution", "q2_solution", "q3_solution")
SCRIPTS = ("kit_data", "kit_smoke", "resnet_cifar", "q1_vae", "q2_samplers", "q2_wgan", "q3_samplers", "q3_simsiam")


def _no_network(*args: object, **kwargs: object) -> None:
    """Stand-in for ``urlopen``: these tests must never reach the internet."""
    raise urllib.error.URLError("network disabled in tests")


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test runs offline, as on Gradescope and on a cluster node."""
    monkeypatch.setattr(urllib.request, "urlopen", _no_network)


@contextlib.contextmanager
def _isolated_import(monkeypatch: pytest.MonkeyPatch, *paths: Path) -> Iterator[None]:
    """Put ``paths`` first on sys.path (in that order) and forget cached copies of our modules."""
    names = SOLUTIONS + SCRIPTS
    monkeypatch.setattr(sys, "dont_write_bytecode", True)  # keep __pycache__ out of the template kit
    saved = {name: sys.modules.pop(name) for name in names if name in sys.modules}
    for path in reversed(paths):
        monkeypatch.syspath_prepend(str(path))
    try:
        yield
    finally:
        for name in names:
            sys.modules.pop(name, None)
        sys.modules.update(saved)


def _load(name: str) -> ModuleType:
    return importlib.import_module(name)


@pytest.fixture
def ref(monkeypatch: pytest.MonkeyPatch) -> Iterator[SimpleNamespace]:
    """The report scripts from ``student_template/`` running on the reference solutions."""
    with _isolated_import(monkeypatch, REFERENCE, TEMPLATE):
        ns = SimpleNamespace(**{name: _load(name) for name in SOLUTIONS + SCRIPTS})
        for name in SOLUTIONS:
            assert Path(getattr(ns, name).__file__).resolve().parent == REFERENCE, name
        for name in SCRIPTS:
            assert Path(getattr(ns, name).__file__).resolve().parent == TEMPLATE, name
        yield ns


@pytest.fixture
def template(monkeypatch: pytest.MonkeyPatch) -> Iterator[SimpleNamespace]:
    """The template folder alone on sys.path, as a student has it before solving anything."""
    with _isolated_import(monkeypatch, TEMPLATE):
        yield SimpleNamespace(load=_load, path=TEMPLATE)


def _assert_png(path: Path) -> None:
    """The file exists, is a PNG, and holds more than a header."""
    assert path.is_file(), f"{path} was not written"
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert len(data) > 1000, f"{path} is suspiciously small ({len(data)} bytes)"


@pytest.fixture
def assert_png() -> Callable[[Path], None]:
    """Check that a figure was written and is a non-trivial PNG."""
    return _assert_png
