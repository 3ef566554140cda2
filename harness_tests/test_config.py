"""grading.yaml: the real file loads with the rubric of GRADING.md, broken copies fail with a
ConfigError naming the file and the key path, and the graded tests and the YAML
entries are in one-to-one correspondence."""
from __future__ import annotations

import ast
import copy
import re
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from autograder.config import VISIBILITIES, ConfigError, GradingConfig, load_config, parse_config

REPO = Path(__file__).resolve().parent.parent
GRADING_YAML = REPO / "grading.yaml"
PARTS = ("1.1", "1.2", "1.3", "1.4", "1.5", "2.1", "3.1", "3.2", "3.3")


@pytest.fixture(scope="module")
def real() -> GradingConfig:
    return load_config(GRADING_YAML)


@pytest.fixture
def data() -> dict[str, Any]:
    """A fresh, mutable copy of the real configuration tree."""
    return copy.deepcopy(yaml.safe_load(GRADING_YAML.read_text(encoding="utf-8")))


def _write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "grading.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _error(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return str(info.value)


def _assert_names(message: str, path: Path, key_path: str, *fragments: str) -> None:
    assert message.startswith(f"{path}: "), message
    assert f"{key_path}:" in message, f"key path {key_path!r} not named in: {message}"
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in: {message}"


# ------------------------------------------------------------------ the real file

def test_real_config_loads_with_the_rubric(real: GradingConfig) -> None:
    assert tuple(p.number for p in real.parts) == PARTS
    assert real.points_per_part == 4
    for part in real.parts:
        assert part.points == 4, part.number
        assert part.module in real.modules
        assert part.functions
    assert real.total_points == sum(t.points for t in real.tests()) == real.points_per_part * len(PARTS), "the total is every test's points, a part's worth per part"
    assert real.modules == ("q1_solution", "q2_solution", "q3_solution")
    assert real.source == GRADING_YAML


def test_every_test_number_starts_with_its_part(real: GradingConfig) -> None:
    numbers = [t.number for t in real.tests()]
    assert len(numbers) == len(set(numbers))
    for part in real.parts:
        for test in part.tests:
            assert test.part == part.number
            assert test.number == part.number or test.number.startswith(part.number + "."), test.number
            assert test.visibility in VISIBILITIES
            assert test.points >= 0 and test.timeout > 0
            assert test.name.strip()


def test_every_part_has_a_visible_test_and_hidden_tests_are_hidden(real: GradingConfig) -> None:
    for part in real.parts:
        assert any(not t.hidden for t in part.tests), f"part {part.number} has no visible test"
    for test in real.tests():
        assert test.hidden == (test.visibility != "visible")


def test_time_budget_is_eight_minutes_and_optional(real: GradingConfig, data: dict[str, Any], tmp_path: Path) -> None:
    """The real file states the budget; without the key it is the same 480 s, below
    Gradescope's default limit of 600 s."""
    assert real.sandbox.budget_seconds == 480
    del data["sandbox"]["budget_seconds"]
    assert load_config(_write(tmp_path, data)).sandbox.budget_seconds == 480


def test_lookup_helpers(real: GradingConfig) -> None:
    assert real.test("1.3.2").part == "1.3"
    assert real.part("2.1").module == "q2_solution"
    assert [p.number for p in real.part_of_module("q3_solution")] == ["3.1", "3.2", "3.3"]
    with pytest.raises(KeyError):
        real.test("9.9.9")


def test_exponents_yaml_reads_as_text_are_numbers(real: GradingConfig, data: dict[str, Any], tmp_path: Path) -> None:
    """PyYAML (YAML 1.1) reads ``1e-3`` and ``4.8e2`` as strings (it wants a dot and a
    signed exponent); written so in grading.yaml they mean the numbers they plainly are."""
    text = GRADING_YAML.read_text(encoding="utf-8")
    rewritten = re.sub(r"\b(rtol|atol): (\d+)\.0e(-\d+)\b", r"\1: \2e\3", text)  # "rtol: 1.0e-3" -> "rtol: 1e-3"
    as_text = [v for v in _tolerance_values(yaml.safe_load(rewritten)) if isinstance(v, str)]
    assert as_text, "the rewrite left no tolerance that YAML reads as text"
    path = tmp_path / "grading.yaml"
    path.write_text(rewritten, encoding="utf-8")
    assert [(t.number, t.tolerance) for t in load_config(path).tests()] == [(t.number, t.tolerance) for t in real.tests()]
    _set(data, ("sandbox", "budget_seconds"), "4.8e2")
    assert yaml.safe_load(yaml.safe_dump(data))["sandbox"]["budget_seconds"] == "4.8e2"
    assert load_config(_write(tmp_path, data)).sandbox.budget_seconds == 480.0


def _tolerance_values(tree: Any) -> list[Any]:
    found = []
    if isinstance(tree, dict):
        for key, value in tree.items():
            found.extend([value] if key in ("rtol", "atol") else _tolerance_values(value))
    return found


@pytest.mark.parametrize("text", ["8 minutes", "nan", "1e-3 s", "1,5"])
def test_text_that_is_not_a_plain_number_is_refused(data: dict[str, Any], tmp_path: Path, text: str) -> None:
    _set(data, ("parts", "1.2", "tests", "1.2.3", "tolerance", "rtol"), text)
    path = _write(tmp_path, data)
    _assert_names(_error(path), path, "parts.1.2.tests.1.2.3.tolerance.rtol", "expected a number", repr(text))


# ------------------------------------------------------------------ broken copies

def _set(tree: dict[str, Any], keys: tuple[str, ...], value: Any) -> None:
    for key in keys[:-1]:
        tree = tree[key]
    tree[keys[-1]] = value


def _delete(tree: dict[str, Any], keys: tuple[str, ...]) -> None:
    for key in keys[:-1]:
        tree = tree[key]
    del tree[keys[-1]]


T111 = ("parts", "1.1", "tests", "1.1.1")
BROKEN: dict[str, tuple[Callable[[dict[str, Any]], None], str, tuple[str, ...]]] = {
    "missing part key": (lambda d: _delete(d, ("parts", "1.1", "title")), "parts.1.1.title", ("missing required key",)),
    "missing test key": (lambda d: _delete(d, (*T111, "name")), "parts.1.1.tests.1.1.1.name", ("missing required key",)),
    "missing top-level key": (lambda d: _delete(d, ("sandbox",)), "sandbox", ("missing required key",)),
    "missing tolerance field": (lambda d: _delete(d, ("parts", "1.2", "tests", "1.2.3", "tolerance", "why")), "parts.1.2.tests.1.2.3.tolerance.why", ("missing required key",)),
    "unknown test key": (lambda d: _set(d, (*T111, "pionts"), 1), "parts.1.1.tests.1.1.1", ("unknown key", "pionts")),
    "unknown top-level key": (lambda d: _set(d, ("extra",), 1), "<top level>", ("unknown key", "extra")),
    "unknown sandbox key": (lambda d: _set(d, ("sandbox", "memroy_mb"), 1), "sandbox", ("unknown key", "memroy_mb")),
    "points not a number": (lambda d: _set(d, (*T111, "points"), "one"), "parts.1.1.tests.1.1.1.points", ("expected a number", "'one'")),
    "points a boolean": (lambda d: _set(d, (*T111, "points"), True), "parts.1.1.tests.1.1.1.points", ("expected a number",)),
    "points NaN": (lambda d: _set(d, (*T111, "points"), float("nan")), "parts.1.1.tests.1.1.1.points", ("expected a number",)),
    "name not a string": (lambda d: _set(d, (*T111, "name"), 3), "parts.1.1.tests.1.1.1.name", ("expected a non-empty string",)),
    "tests not a mapping": (lambda d: _set(d, ("parts", "1.3", "tests"), ["1.3.1"]), "parts.1.3.tests", ("expected a mapping",)),
    "functions not a list": (lambda d: _set(d, ("parts", "2.1", "functions"), "lp_reg"), "parts.2.1.functions", ("expected a list",)),
    "function not a string": (lambda d: _set(d, ("parts", "2.1", "functions"), ["lp_reg", 7]), "parts.2.1.functions[1]", ("expected a non-empty string",)),
    "sandbox memory not whole": (lambda d: _set(d, ("sandbox", "memory_mb"), 100.5), "sandbox.memory_mb", ("whole number",)),
    "budget not a number": (lambda d: _set(d, ("sandbox", "budget_seconds"), "8 minutes"), "sandbox.budget_seconds", ("expected a number",)),
    "budget too small": (lambda d: _set(d, ("sandbox", "budget_seconds"), 0), "sandbox.budget_seconds", ("at least",)),
    "timeout too small": (lambda d: _set(d, (*T111, "timeout"), 0), "parts.1.1.tests.1.1.1.timeout", ("at least",)),
    "default timeout wrong type": (lambda d: _set(d, ("defaults", "timeout"), "soon"), "defaults.timeout", ("expected a number",)),
    "negative points": (lambda d: _set(d, (*T111, "points"), -1), "parts.1.1.tests.1.1.1.points", ("must be at least 0", "-1")),
    "negative rtol": (lambda d: _set(d, (*T111, "tolerance"), {"rtol": -1e-4, "atol": 0.0, "why": "x"}), "parts.1.1.tests.1.1.1.tolerance.rtol", ("must be at least 0",)),
    "part points do not add up": (lambda d: _set(d, (*T111, "points"), 2), "parts.1.1.tests", ("add up to 5", "part is worth 4")),
    "part points short": (lambda d: _delete(d, ("parts", "3.2", "tests", "3.2.3")), "parts.3.2.tests", ("add up to 3", "part is worth 4")),
    "empty part": (lambda d: _set(d, ("parts", "3.2", "tests"), {}), "parts.3.2.tests", ("at least one test",)),
    "visible not a boolean": (lambda d: _set(d, (*T111, "visible"), "no"), "parts.1.1.tests.1.1.1.visible", ("expected true or false", "'no'")),
    "per-test visibility is not a key": (lambda d: _set(d, (*T111, "visibility"), "hidden"), "parts.1.1.tests.1.1.1", ("unknown key", "visibility")),
    "number not starting with its part": (
        lambda d: d["parts"]["1.1"]["tests"].__setitem__("1.2.9", d["parts"]["1.1"]["tests"].pop("1.1.1")),
        "parts.1.1.tests.1.2.9",
        ("must be its part", "'1.1'"),
    ),
    "number with part as a mere prefix": (
        lambda d: d["parts"]["1.1"]["tests"].__setitem__("1.11", d["parts"]["1.1"]["tests"].pop("1.1.1")),
        "parts.1.1.tests.1.11",
        ("must be its part",),
    ),
    "unknown module": (lambda d: _set(d, ("parts", "1.1", "module"), "q4_solution"), "parts.1.1.module", ("'q4_solution'", "not listed")),
    "bad version": (lambda d: _set(d, ("version",), 2), "version", ("unsupported version",)),
    "empty mapping": (lambda d: d.clear(), "version", ("missing required key",)),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_config_names_file_and_key_path(data: dict[str, Any], tmp_path: Path, case: str) -> None:
    mutate, key_path, fragments = BROKEN[case]
    mutate(data)
    path = _write(tmp_path, data)
    _assert_names(_error(path), path, key_path, *fragments)


def test_top_level_list_is_rejected(tmp_path: Path) -> None:
    path = _write(tmp_path, [1, 2])
    _assert_names(_error(path), path, "<top level>", "expected a mapping, got list")


def test_empty_file_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "grading.yaml"
    path.write_text("# nothing here\n")
    _assert_names(_error(path), path, "<top level>", "expected a mapping")


def test_duplicate_numbers_across_parts(data: dict[str, Any], tmp_path: Path) -> None:
    """YAML keys 1.1 (a float) and "1.1" (a string) would name the same part: an
    unquoted (non-string) key is refused outright, naming the mapping."""
    data["parts"][1.1] = copy.deepcopy(data["parts"]["1.1"])
    path = _write(tmp_path, data)
    _assert_names(_error(path), path, "parts", "must be a string", "quote it")


MINIMAL = """\
version: 1
points_per_part: 4
defaults: {non_visible: after_due_date, timeout: 20}
modules: [q1_solution]
sandbox: {user: u, memory_mb: 512, cpu_seconds: 10, max_processes: 8, max_file_mb: 1, output_limit_kb: 1, slots_per_core: 1}
parts:
  "1.1":
    title: T
    module: q1_solution
    functions: [log_likelihood_bernoulli]
    tests:
"""


def test_minimal_config_loads(tmp_path: Path) -> None:
    path = tmp_path / "grading.yaml"
    path.write_text(MINIMAL + '      "1.1.1": {name: a, points: 2}\n      "1.1.2": {name: b, points: 2, visible: false}\n')
    config = load_config(path)
    assert config.total_points == 4 and [t.hidden for t in config.tests()] == [False, True]
    assert [t.visibility for t in config.tests()] == ["visible", "after_due_date"]
    assert config.test("1.1.1").timeout == 20 and config.test("1.1.1").tolerance is None


def test_duplicate_numbers_within_one_yaml_mapping(tmp_path: Path) -> None:
    path = tmp_path / "grading.yaml"
    path.write_text(
        MINIMAL
        + '      "1.1.1": {name: a, points: 2}\n'
        + '      "1.1.2": {name: b, points: 2}\n'
        + '      "1.1.2": {name: c, points: 2}\n'
    )
    message = _error(path)
    assert message.startswith(f"{path}: ") and "1.1.2" in message and "duplicate" in message


def test_test_numbered_as_its_part_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "grading.yaml"
    path.write_text(MINIMAL + '      "1.1": {name: whole part, points: 4}\n')
    assert load_config(path).test("1.1").points == 4


def test_bad_non_visible_setting_names_the_defaults_key(data: dict[str, Any], tmp_path: Path) -> None:
    data["defaults"]["non_visible"] = "visible"
    path = _write(tmp_path, data)
    _assert_names(_error(path), path, "defaults.non_visible", "'visible'", "after_due_date")


@pytest.mark.parametrize("setting", ["after_due_date", "after_published", "hidden"])
def test_one_setting_decides_how_every_non_visible_test_shows(data: dict[str, Any], tmp_path: Path, setting: str) -> None:
    data["defaults"]["non_visible"] = setting
    config = load_config(_write(tmp_path, data))
    shown = {t.visibility for t in config.tests() if t.hidden}
    assert shown == {setting}
    assert all(t.visibility == "visible" for t in config.tests() if not t.hidden)


def test_non_visible_tests_show_after_the_due_date_by_default(real: GradingConfig) -> None:
    assert {t.visibility for t in real.tests() if t.hidden} == {"after_due_date"}


def test_yaml_exponent_without_dot_is_the_number_it_spells(tmp_path: Path) -> None:
    """PyYAML reads ``1e-4`` (no dot) as the string '1e-4': the loader takes it as 1e-4,
    not as an error and not as anything else."""
    path = tmp_path / "grading.yaml"
    path.write_text(
        MINIMAL + '      "1.1.1":\n        name: a\n        points: 4\n        tolerance: {rtol: 1e-4, atol: 1.0e-5, why: w}\n'
    )
    assert yaml.safe_load(path.read_text())["parts"]["1.1"]["tests"]["1.1.1"]["tolerance"]["rtol"] == "1e-4"
    tolerance = load_config(path).test("1.1.1").tolerance
    assert tolerance is not None and tolerance.rtol == 1e-4 and tolerance.atol == 1e-5


def test_invalid_yaml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "grading.yaml"
    path.write_text("version: 1\nparts: [unclosed\n")
    message = _error(path)
    assert message.startswith(f"{path}: invalid YAML"), message


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "grading.yaml"
    message = _error(path)
    assert message.startswith(f"{path}: ") and "not found" in message


def test_parse_config_uses_the_given_source_name(data: dict[str, Any]) -> None:
    data["parts"]["1.1"]["module"] = "nope"
    with pytest.raises(ConfigError, match=r"^custom\.yaml: parts\.1\.1\.module: "):
        parse_config(data, Path("custom.yaml"))


def test_config_error_is_a_value_error() -> None:
    assert issubclass(ConfigError, ValueError)


# ------------------------------------------------------------------ tests <-> YAML bijection

def _graded_numbers(path: Path) -> list[str]:
    """The literal argument of every ``@pytest.mark.graded(...)`` decorator in a test file."""
    numbers = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        for deco in node.decorator_list:
            if isinstance(deco, ast.Call) and ast.unparse(deco.func).endswith("mark.graded"):
                assert len(deco.args) == 1 and isinstance(deco.args[0], ast.Constant), f"{path}:{deco.lineno}: graded() needs one literal"
                numbers.append(str(deco.args[0].value))
    return numbers


def test_graded_markers_and_yaml_entries_are_a_bijection(real: GradingConfig) -> None:
    files = sorted((REPO / "tests").glob("test_q*.py"))
    assert [f.name for f in files] == ["test_q1.py", "test_q2.py", "test_q3.py"]
    in_tests = [n for f in files for n in _graded_numbers(f)]
    duplicates = sorted(n for n, c in Counter(in_tests).items() if c > 1)
    assert not duplicates, f"graded numbers used twice: {duplicates}"
    in_yaml = {t.number for t in real.tests()}
    assert sorted(set(in_tests) - in_yaml) == [], "graded tests without a grading.yaml entry"
    assert sorted(in_yaml - set(in_tests)) == [], "grading.yaml entries without a graded test"
    for f in files:
        question = f.stem[len("test_q"):]
        assert all(n.startswith(question + ".") for n in _graded_numbers(f)), f"{f.name} grades another question"


def test_a_part_may_set_its_own_points(tmp_path: Path) -> None:
    path = tmp_path / "grading.yaml"
    text = MINIMAL.replace("    functions: [log_likelihood_bernoulli]\n", "    functions: [log_likelihood_bernoulli]\n    points: 6\n")
    path.write_text(text + '      "1.1.1": {name: a, points: 2}\n      "1.1.2": {name: b, points: 4}\n')
    assert load_config(path).total_points == 6
    path.write_text(text + '      "1.1.1": {name: a, points: 2}\n')
    _assert_names(_error(path), path, "parts.1.1.tests", "add up to 2", "worth 6")
