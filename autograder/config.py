"""The one validated configuration layer: ``grading.yaml`` into typed records.

Every error names the file and the key path of the bad value, so an instructor who
mistypes a point value is told exactly where."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import yaml

VISIBILITIES = ("visible", "hidden", "after_due_date", "after_published")
# How Gradescope may show a test that is not visible before the deadline.
NON_VISIBLE = ("after_due_date", "after_published", "hidden")
DEFAULT_BUDGET_SECONDS = 480.0  # one submission's whole grading; Gradescope stops at 600 by default
# YAML 1.1 (PyYAML) reads a float only with a dot and a signed exponent: ``1e-3`` and
# ``1.0e3`` come back as text. Such text is taken as the number it plainly is.
_NUMBER_TEXT = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


class ConfigError(ValueError):
    """A bad value in grading.yaml; the message starts with ``file: key.path``."""


@dataclass(frozen=True)
class Tolerance:
    rtol: float
    atol: float
    why: str


# What a test without a ``tolerance`` in grading.yaml is judged with.
DEFAULT_TOLERANCE = Tolerance(rtol=1e-5, atol=1e-6, why="default")


@dataclass(frozen=True)
class TestSpec:
    number: str
    part: str
    name: str
    points: float
    visibility: str
    timeout: float
    tolerance: Tolerance | None

    @property
    def judged_tolerance(self) -> Tolerance:
        """The tolerance comparisons use: grading.yaml's, or the default."""
        return self.tolerance or DEFAULT_TOLERANCE

    @property
    def hidden(self) -> bool:
        """A non-visible test never reveals expected values, whatever its Gradescope
        visibility (``after_due_date`` shows the message after the deadline)."""
        return self.visibility != "visible"


@dataclass(frozen=True)
class PartSpec:
    number: str
    title: str
    module: str
    functions: tuple[str, ...]
    tests: tuple[TestSpec, ...]

    @property
    def points(self) -> float:
        return sum(t.points for t in self.tests)


@dataclass(frozen=True)
class SandboxSpec:
    user: str
    memory_mb: int
    cpu_seconds: int
    max_processes: int
    max_file_mb: int
    output_limit_kb: int
    slots_per_core: int
    budget_seconds: float = DEFAULT_BUDGET_SECONDS


@dataclass(frozen=True)
class GradingConfig:
    source: Path
    points_per_part: float
    modules: tuple[str, ...]
    support_modules: tuple[str, ...]
    sandbox: SandboxSpec
    parts: tuple[PartSpec, ...]

    @property
    def total_points(self) -> float:
        return sum(p.points for p in self.parts)

    def tests(self) -> list[TestSpec]:
        return [t for p in self.parts for t in p.tests]

    def test(self, number: str) -> TestSpec:
        for spec in self.tests():
            if spec.number == number:
                return spec
        raise KeyError(f"no test numbered {number!r} in {self.source}")

    def part(self, number: str) -> PartSpec:
        for part in self.parts:
            if part.number == number:
                return part
        raise KeyError(f"no part {number!r} in {self.source}")

    def part_of_module(self, module: str) -> list[PartSpec]:
        return [p for p in self.parts if p.module == module]


class _Reader:
    """Typed access into the YAML tree that remembers the key path for errors."""

    def __init__(self, source: Path, data: Any, path: str = "") -> None:
        self.source = source
        self.data = data
        self.path = path

    def fail(self, message: str, key: str | None = None) -> ConfigError:
        where = self._join(key) if key is not None else (self.path or "<top level>")
        return ConfigError(f"{self.source}: {where}: {message}")

    def _join(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def mapping(self) -> Mapping[str, Any]:
        if not isinstance(self.data, Mapping):
            raise self.fail(f"expected a mapping, got {type(self.data).__name__}")
        for key in self.data:
            if not isinstance(key, str):
                raise self.fail(f"key {key!r} must be a string: quote it (an unquoted 1.10 reads as the number 1.1)")
        return self.data

    def child(self, key: str, default: Any = ..., *, required: bool = True) -> "_Reader":
        data = self.mapping()
        if key not in data:
            if default is ...:
                raise self.fail("missing required key", key)
            return _Reader(self.source, default, self._join(key))
        return _Reader(self.source, data[key], self._join(key))

    def check_keys(self, allowed: set[str]) -> None:
        unknown = sorted(set(map(str, self.mapping())) - allowed)
        if unknown:
            raise self.fail(f"unknown key(s) {unknown}; allowed: {sorted(allowed)}")

    def string(self) -> str:
        if not isinstance(self.data, str) or not self.data.strip():
            raise self.fail(f"expected a non-empty string, got {self.data!r}")
        return self.data

    def number(self, *, minimum: float | None = None, integer: bool = False) -> float:
        value = self.data
        if isinstance(value, str) and _NUMBER_TEXT.fullmatch(value.strip()):
            value = float(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.fail(f"expected a number, got {value!r}")
        if integer and int(value) != value:
            raise self.fail(f"expected a whole number, got {value!r}")
        if minimum is not None and value < minimum:
            raise self.fail(f"must be at least {minimum}, got {value!r}")
        return int(value) if integer else float(value)

    def strings(self) -> tuple[str, ...]:
        if not isinstance(self.data, list):
            raise self.fail(f"expected a list of strings, got {self.data!r}")
        return tuple(_Reader(self.source, v, f"{self.path}[{i}]").string() for i, v in enumerate(self.data))


def _tolerance(reader: _Reader) -> Tolerance | None:
    if reader.data is None:
        return None
    reader.check_keys({"rtol", "atol", "why"})
    return Tolerance(
        rtol=reader.child("rtol").number(minimum=0.0),
        atol=reader.child("atol").number(minimum=0.0),
        why=reader.child("why").string(),
    )


def _flag(reader: _Reader) -> bool:
    if not isinstance(reader.data, bool):
        raise reader.fail(f"expected true or false, got {reader.data!r}")
    return reader.data


def _test(reader: _Reader, number: str, part: str, defaults: _Reader) -> TestSpec:
    reader.check_keys({"name", "points", "visible", "timeout", "tolerance"})
    if number != part and not number.startswith(part + "."):
        raise reader.fail(f"test number must be its part {part!r} or start with {part + '.'!r}")
    # One setting decides how every non-visible test shows on Gradescope.
    visibility = "visible" if _flag(reader.child("visible", True)) else str(defaults.child("non_visible").data)
    return TestSpec(
        number=number,
        part=part,
        name=reader.child("name").string(),
        points=reader.child("points").number(minimum=0.0),
        visibility=visibility,
        timeout=reader.child("timeout", defaults.child("timeout").data).number(minimum=0.1),
        tolerance=_tolerance(reader.child("tolerance", None)),
    )


def _part(reader: _Reader, number: str, defaults: _Reader, modules: tuple[str, ...], per_part: float) -> PartSpec:
    reader.check_keys({"title", "module", "functions", "points", "tests"})
    # A part may be worth more or less than the others (the handout gives 4 each).
    worth = reader.child("points", per_part).number(minimum=0.0)
    module = reader.child("module").string()
    if module not in modules:
        raise reader.fail(f"module {module!r} is not listed in top-level 'modules' {list(modules)}", "module")
    tests_reader = reader.child("tests")
    tests = tuple(
        _test(tests_reader.child(str(key)), str(key), number, defaults) for key in tests_reader.mapping()
    )
    if not tests:
        raise tests_reader.fail("a part needs at least one test")
    total = sum(t.points for t in tests)
    if abs(total - worth) > 1e-9:
        raise tests_reader.fail(f"points add up to {total:g}, but the part is worth {worth:g}")
    return PartSpec(
        number=number,
        title=reader.child("title").string(),
        module=module,
        functions=reader.child("functions").strings(),
        tests=tests,
    )


def _sandbox(reader: _Reader) -> SandboxSpec:
    reader.check_keys({"user", "memory_mb", "cpu_seconds", "max_processes", "max_file_mb", "output_limit_kb", "slots_per_core", "budget_seconds"})
    return SandboxSpec(
        user=reader.child("user").string(),
        memory_mb=int(reader.child("memory_mb").number(minimum=64, integer=True)),
        cpu_seconds=int(reader.child("cpu_seconds").number(minimum=1, integer=True)),
        max_processes=int(reader.child("max_processes").number(minimum=1, integer=True)),
        max_file_mb=int(reader.child("max_file_mb").number(minimum=1, integer=True)),
        output_limit_kb=int(reader.child("output_limit_kb").number(minimum=1, integer=True)),
        slots_per_core=int(reader.child("slots_per_core").number(minimum=1, integer=True)),
        budget_seconds=reader.child("budget_seconds", DEFAULT_BUDGET_SECONDS).number(minimum=1.0),
    )


def parse_config(data: Any, source: Path) -> GradingConfig:
    top = _Reader(source, data)
    top.check_keys({"version", "points_per_part", "defaults", "modules", "support_modules", "sandbox", "parts"})
    if top.child("version").data != 1:
        raise top.fail(f"unsupported version {top.child('version').data!r} (expected 1)", "version")
    defaults = top.child("defaults")
    defaults.check_keys({"non_visible", "timeout"})
    defaults.child("timeout").number(minimum=0.1)
    non_visible = defaults.child("non_visible")
    if non_visible.string() not in NON_VISIBLE:
        raise non_visible.fail(f"must be one of {list(NON_VISIBLE)}, got {non_visible.data!r}")
    modules = top.child("modules").strings()
    per_part = top.child("points_per_part").number(minimum=0.0)
    parts_reader = top.child("parts")
    parts = tuple(
        _part(parts_reader.child(str(key)), str(key), defaults, modules, per_part) for key in parts_reader.mapping()
    )
    numbers = [t.number for p in parts for t in p.tests]
    duplicates = sorted({n for n in numbers if numbers.count(n) > 1})
    if duplicates:
        raise parts_reader.fail(f"duplicate test numbers {duplicates}")
    return GradingConfig(
        source=source,
        points_per_part=per_part,
        modules=modules,
        support_modules=top.child("support_modules", []).strings(),
        sandbox=_sandbox(top.child("sandbox")),
        parts=parts,
    )


class _StrictLoader(yaml.SafeLoader):
    """Safe YAML that refuses a key written twice in one mapping (PyYAML keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_config(path: Path) -> GradingConfig:
    """Read and validate grading.yaml; a missing file or bad YAML names the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: configuration file not found") from None
    try:
        data = yaml.load(text, Loader=_StrictLoader)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from None
    return parse_config(data, path)
