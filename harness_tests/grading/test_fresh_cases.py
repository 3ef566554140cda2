"""Visible cases drawn per submission (autograder/grading/fresh_cases.py): where the course's
secret is present, every visible case is drawn afresh from its recipe for each
submission's bytes, with the reference's expected values; the same bytes get the same
case; hidden cases and the student kit's cases stay frozen; and drawing one changes no
random stream of the grading."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from autograder.config import load_config
from autograder.grading.fixture_store import FILES, MANIFEST, FixtureStore
from autograder.grading.fresh_cases import CaseSource, fresh_seed
from autograder.paths import KitLayout
from autograder.grading.recipes import load_cases, load_reference, stored

LAYOUT = KitLayout.here()
CONFIG = load_config(LAYOUT.config_file)
STORE = FixtureStore(LAYOUT.fixtures_dir)
VISIBLE = sorted(name for name, meta in STORE.manifest["cases"].items() if meta["visibility"] == "visible")
HIDDEN = sorted(name for name, meta in STORE.manifest["cases"].items() if meta["visibility"] != "visible")


def _source(fixtures: Path = LAYOUT.fixtures_dir, reference: Path = LAYOUT.reference_dir) -> CaseSource:
    return CaseSource(FixtureStore(fixtures), CONFIG, reference)


def _drawn(tensor: torch.Tensor) -> bool:
    """Inputs that a draw changes (not the constants a recipe fixes, e.g. a row count)."""
    return tensor.is_floating_point() and tensor.numel() > 1 and bool(tensor.std() > 0)


@pytest.mark.parametrize("name", VISIBLE)
def test_each_submission_gets_inputs_of_its_own(name: str) -> None:
    source = _source()
    first, second, frozen = source.case(name, "secret/digest-a"), source.case(name, "secret/digest-b"), STORE.case(name)
    assert set(first.inputs) == set(second.inputs) == set(frozen.inputs)
    drawn = [key for key, value in frozen.inputs.items() if _drawn(value)]
    assert drawn, name
    for key in drawn:
        assert not torch.equal(first.inputs[key], second.inputs[key]), f"{name}/{key}: two submissions got the same inputs"
        assert not torch.equal(first.inputs[key], frozen.inputs[key]), f"{name}/{key}: a submission got the kit's inputs"
    for key, value in first.expected.items():
        assert value.dtype == frozen.expected[key].dtype and value.shape == frozen.expected[key].shape, f"{name}/{key}"


@pytest.mark.parametrize("name", VISIBLE)
def test_the_same_bytes_get_the_same_case(name: str) -> None:
    once, again = _source().case(name, "secret/digest"), _source().case(name, "secret/digest")
    for role in ("inputs", "expected"):
        for key, value in getattr(once, role).items():
            assert torch.equal(value, getattr(again, role)[key]), f"{name} {role}/{key}"
    assert {k: (h.text, h.output.tolist()) for k, h in once.hints.items()} == {k: (h.text, h.output.tolist()) for k, h in again.hints.items()}


def test_expected_values_are_the_references_on_those_inputs() -> None:
    """What fixtures generate does for the kit's case, on the submission's own inputs."""
    salt = "secret/digest"
    spec = next(s for s in load_cases() if s.name == "bernoulli_basic")
    case = _source().case(spec.name, salt)
    ref = load_reference(LAYOUT.reference_dir, CONFIG.modules)
    out = ref.q1_solution.log_likelihood_bernoulli(case.inputs["mu"].double(), case.inputs["target"].double())
    assert torch.equal(case.expected["out"], stored(out))
    assert fresh_seed(salt, spec.name) != fresh_seed(salt + "x", spec.name)


@pytest.mark.parametrize("name", HIDDEN)
def test_hidden_cases_stay_frozen(name: str) -> None:
    case, frozen = _source().case(name, "secret/digest"), STORE.case(name)
    for key, value in frozen.inputs.items():
        assert torch.equal(case.inputs[key], value), f"{name}/{key}"


def test_the_student_kit_keeps_its_frozen_cases_and_needs_no_reference(tmp_path: Path) -> None:
    kit = tmp_path / "fixtures"
    kit.mkdir()
    for name in (MANIFEST, FILES["visible"]):
        shutil.copyfile(LAYOUT.fixtures_dir / name, kit / name)
    source = _source(kit, tmp_path / "no-reference-here")
    assert not source.fresh
    for name in VISIBLE:
        case = source.case(name, "secret/digest")
        for key, value in STORE.case(name).inputs.items():
            assert torch.equal(case.inputs[key], value), f"{name}/{key}"


def test_drawing_a_case_changes_no_random_stream() -> None:
    torch.manual_seed(1234)
    before = torch.random.get_rng_state()
    _source().case("simsiam_stopgrad", "secret/digest")  # its recipe builds modules: global draws
    assert torch.equal(torch.random.get_rng_state(), before)
