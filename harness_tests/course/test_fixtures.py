"""The frozen fixtures: regenerated from reference/ they are byte-identical to the
committed ones, small, hash-checked by their manifest, split by visibility, and
FixtureStore refuses tampered or missing files."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from autograder.course import fixturegen
from autograder.grading import recipes
from autograder.config import GradingConfig, load_config
from autograder.grading.fixture_store import FILES, MANIFEST, FixtureError, FixtureStore, HiddenFixturesUnavailable, sha256
from autograder.paths import KitLayout

LAYOUT = KitLayout.here()
COMMITTED = LAYOUT.fixtures_dir
ALL_FILES = (MANIFEST, *FILES.values())


@pytest.fixture(scope="module")
def config() -> GradingConfig:
    return load_config(LAYOUT.config_file)


@pytest.fixture(scope="module")
def manifest() -> dict:
    return json.loads((COMMITTED / MANIFEST).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def regenerated(config: GradingConfig, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("fixtures")
    returned = fixturegen.generate(config, LAYOUT, out)
    return out, returned


def _keys(path: Path) -> list[str]:
    with safe_open(str(path), framework="pt") as handle:
        return list(handle.keys())


def test_regenerated_fixtures_are_byte_identical(regenerated: tuple[Path, dict], manifest: dict) -> None:
    if manifest["torch_version"] != torch.__version__:
        pytest.skip(f"fixtures were made with torch {manifest['torch_version']}, this is {torch.__version__}")
    out, _ = regenerated
    assert sorted(p.name for p in out.iterdir()) == sorted(ALL_FILES)
    for name in ALL_FILES:
        assert (out / name).read_bytes() == (COMMITTED / name).read_bytes(), f"{name} differs from the committed fixtures"


def test_generate_returns_the_manifest_it_writes(regenerated: tuple[Path, dict]) -> None:
    out, returned = regenerated
    assert json.loads((out / MANIFEST).read_text(encoding="utf-8")) == returned


CPU_VARIANTS = {
    # What an AVX2-only x86-64 CPU (AMD EPYC before Zen 4, older Intel) runs: torch's AVX2
    # kernels, MKL's AVX2 code path and oneDNN capped at AVX2.
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "AVX2"},
    "this-cpu-best": {},
}


@pytest.mark.parametrize("variant", sorted(CPU_VARIANTS))
def test_regeneration_does_not_depend_on_the_cpus_kernels(variant: str, tmp_path: Path, manifest: dict) -> None:
    """Every expected value is computed in float64 and rounded: the bytes must not change
    with the float32 kernels a CPU picks. Regenerated in a fresh interpreter, because
    these switches are read when torch loads."""
    if manifest["torch_version"] != torch.__version__:
        pytest.skip(f"fixtures were made with torch {manifest['torch_version']}, this is {torch.__version__}")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("ATEN_", "MKL_", "ONEDNN_"))}, **CPU_VARIANTS[variant]}
    subprocess.run([sys.executable, "-c", REGENERATE, str(tmp_path)], env=env, check=True, cwd=LAYOUT.root, timeout=300)
    for name in ALL_FILES:
        assert (tmp_path / name).read_bytes() == (COMMITTED / name).read_bytes(), f"{name} differs with the {variant} kernels"


REGENERATE = """
import sys
from pathlib import Path
from autograder.course import fixturegen
from autograder.grading import recipes
from autograder.config import load_config
from autograder.paths import KitLayout
layout = KitLayout.here()
fixturegen.generate(load_config(layout.config_file), layout, Path(sys.argv[1]))
"""


def test_regenerating_twice_is_deterministic(config: GradingConfig, regenerated: tuple[Path, dict], tmp_path: Path) -> None:
    out, _ = regenerated
    fixturegen.generate(config, LAYOUT, tmp_path)
    for name in ALL_FILES:
        assert (tmp_path / name).read_bytes() == (out / name).read_bytes(), name


def test_total_size_at_most_one_mib() -> None:
    total = sum((COMMITTED / name).stat().st_size for name in ALL_FILES)
    assert total <= 1024 * 1024, f"fixtures take {total} bytes"


def test_manifest_hashes_match_the_files(manifest: dict) -> None:
    assert set(manifest["files"]) == set(FILES.values())
    for name, digest in manifest["files"].items():
        assert sha256(COMMITTED / name) == digest, name


def test_manifest_records_torch_seeds_tolerances_and_visibility(manifest: dict, config: GradingConfig) -> None:
    assert manifest["torch_version"] and isinstance(manifest["torch_version"], str)
    pinned = [line for line in (LAYOUT.root / "requirements.txt").read_text().splitlines() if line.startswith("torch==")]
    assert pinned == [f"torch=={manifest['torch_version'].split('+')[0]}"], "requirements.txt must pin the fixtures' torch"
    cases = manifest["cases"]
    assert set(cases) == {spec.name for spec in recipes.load_cases()}
    for name, meta in cases.items():
        test = config.test(meta["test"])
        assert meta["seed"] == recipes.case_seed(name), name
        assert isinstance(meta["seed"], int)
        assert meta["visibility"] == ("hidden" if test.hidden else "visible"), name
        if test.tolerance is None:
            assert meta["tolerance"] is None, name
        else:
            assert meta["tolerance"] == {"rtol": test.tolerance.rtol, "atol": test.tolerance.atol}, name
        assert isinstance(meta["hints"], dict)
    seeds = [meta["seed"] for meta in cases.values()]
    assert len(seeds) == len(set(seeds)), "two cases share a seed"


def test_every_file_records_the_torch_version(manifest: dict) -> None:
    for name in FILES.values():
        with safe_open(str(COMMITTED / name), framework="pt") as handle:
            assert handle.metadata() == {"torch_version": manifest["torch_version"]}


def test_visible_and_hidden_cases_live_in_different_files(manifest: dict) -> None:
    """The kit's file holds visible cases only, the non-visible file hidden cases only
    (Gradescope draws its visible cases afresh for each submission: fresh_cases.py)."""
    keys = {vis: _keys(COMMITTED / name) for vis, name in FILES.items()}
    for visibility, names in keys.items():
        assert names, f"{FILES[visibility]} is empty"
        for key in names:
            assert manifest["cases"][key.split("/", 1)[0]]["visibility"] == visibility, f"{key} is in {FILES[visibility]}"
    for case, meta in manifest["cases"].items():
        assert any(k.startswith(case + "/") for k in keys[meta["visibility"]]), f"{case} has no tensors in {FILES[meta['visibility']]}"
        assert set(meta) == {"test", "visibility", "seed", "tolerance", "hints"}, case
    assert {"visible", "hidden"} == {meta["visibility"] for meta in manifest["cases"].values()}


def test_every_graded_test_with_a_tolerance_has_cases(manifest: dict, config: GradingConfig) -> None:
    tested = {meta["test"] for meta in manifest["cases"].values()}
    assert tested <= {t.number for t in config.tests()}


def test_store_reads_cases_from_the_committed_fixtures(manifest: dict) -> None:
    store = FixtureStore(COMMITTED)
    case = store.case("bernoulli_basic")
    assert set(case.inputs) == {"mu", "target", "cot"}
    assert case.expected["out"].shape == (6,)
    assert case.hints and all(h.text for h in case.hints.values())
    assert [h.text for h in case.hint_list("out")] == [manifest["cases"]["bernoulli_basic"]["hints"][k] for k in sorted(case.hints)]
    hidden = store.case("bernoulli_hidden")
    assert hidden.expected["out"].shape == (32,)
    with pytest.raises(FixtureError, match="no case named 'nope'"):
        store.case("nope")


# ------------------------------------------------------------------ tampering and missing files

@pytest.fixture
def copy(tmp_path: Path) -> Path:
    target = tmp_path / "fixtures"
    target.mkdir()
    for name in ALL_FILES:
        shutil.copyfile(COMMITTED / name, target / name)
    return target


@pytest.mark.parametrize(("visibility", "case"), [("visible", "bernoulli_basic"), ("hidden", "bernoulli_hidden")])
def test_tampered_byte_raises_fixture_error_naming_the_file(copy: Path, visibility: str, case: str) -> None:
    path = copy / FILES[visibility]
    data = bytearray(path.read_bytes())
    data[len(data) - 5] ^= 0x01  # one bit of one stored value
    path.write_bytes(bytes(data))
    store = FixtureStore(copy)
    with pytest.raises(FixtureError) as info:
        store.case(case)
    assert str(path) in str(info.value) and "sha256" in str(info.value)


def test_tampered_manifest_hash_raises(copy: Path) -> None:
    (copy / FILES["hidden"]).unlink()  # the kit: visible cases come from the visible file
    manifest = json.loads((copy / MANIFEST).read_text())
    manifest["files"][FILES["visible"]] = "0" * 64
    (copy / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(FixtureError, match=FILES["visible"]):
        FixtureStore(copy).case("bernoulli_basic")


def test_hidden_fixtures_absent(copy: Path) -> None:
    (copy / FILES["hidden"]).unlink()
    store = FixtureStore(copy)
    assert store.case("bernoulli_basic").expected["out"].shape == (6,)
    with pytest.raises(HiddenFixturesUnavailable) as info:
        store.case("bernoulli_hidden")
    assert FILES["hidden"] in str(info.value)
    assert isinstance(info.value, FixtureError)


def test_visible_fixtures_absent_is_a_plain_fixture_error(copy: Path) -> None:
    (copy / FILES["visible"]).unlink()
    (copy / FILES["hidden"]).unlink()
    with pytest.raises(FixtureError) as info:
        FixtureStore(copy).case("bernoulli_basic")
    assert not isinstance(info.value, HiddenFixturesUnavailable)
    assert FILES["visible"] in str(info.value)


def test_missing_or_broken_manifest(copy: Path) -> None:
    (copy / MANIFEST).write_text("{not json")
    with pytest.raises(FixtureError, match="invalid JSON"):
        FixtureStore(copy)
    (copy / MANIFEST).unlink()
    with pytest.raises(FixtureError, match="manifest not found"):
        FixtureStore(copy)
