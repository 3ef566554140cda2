"""The engine's folders are its trust zones: each zone imports only the zones below it, and
no module imports itself back through others. Parsed from the source (every import,
including those inside functions), so a boundary cannot be crossed by a lazy import."""
from __future__ import annotations

import ast
from pathlib import Path

ENGINE = Path(__file__).resolve().parent.parent / "autograder"
# The top modules every zone may use: configuration, paths, records, text cleaning, the wire format, libc.
SHARED = "top"
# What each zone may import (besides itself). cli (and __main__) sit above everything.
ALLOWED = {
    "top": {"top"},
    "worker": {"top"},
    "sandbox": {"top", "worker"},
    "grading": {"top", "sandbox"},
    "course": {"top", "sandbox", "grading", "regrade", "worker"},  # the audit grades mutants through the regrade's path
    "regrade": {"top", "sandbox", "grading", "worker"},  # batch warms its zygotes as the sandbox does
    "cli": {"top", "sandbox", "grading", "course", "regrade", "worker"},
}
TOP_LIMIT = 10


def _module_name(path: Path) -> str:
    parts = path.relative_to(ENGINE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _zone(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1 or parts[1] not in {"worker", "sandbox", "grading", "course", "regrade"}:
        return "cli" if len(parts) > 1 and parts[1] in {"cli", "__main__"} else SHARED
    return parts[1]


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The engine modules ``path`` imports (``from autograder.x import y`` counts y when y is a module)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        else:
            continue
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != "autograder":
                found.add(name)
    return found


def _graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in ENGINE.rglob("*.py") if "__pycache__" not in p.parts}
    modules = set(files)
    return {name: _imports(path, modules) - {name} for name, path in files.items()}


def test_at_most_ten_modules_at_the_top_and_three_zones() -> None:
    top = sorted(p.name for p in ENGINE.glob("*.py"))
    zones = sorted(p.name for p in ENGINE.iterdir() if (p / "__init__.py").is_file())
    assert len(top) <= TOP_LIMIT, f"{len(top)} modules directly in autograder/ (at most {TOP_LIMIT}): {top}"
    assert len(zones) >= 3, f"autograder/ has {len(zones)} subpackages: {zones}"
    for zone in zones:
        doc = ast.get_docstring(ast.parse((ENGINE / zone / "__init__.py").read_text(encoding="utf-8")))
        assert doc and "import" in doc, f"autograder/{zone}/__init__.py must say what lives there and what it may import"


def test_each_zone_imports_only_the_zones_below_it() -> None:
    crossings = [
        f"{module} ({_zone(module)}) imports {target} ({_zone(target)})"
        for module, targets in sorted(_graph().items())
        for target in sorted(targets)
        if _zone(target) != _zone(module) and _zone(target) not in ALLOWED[_zone(module)]
    ]
    assert not crossings, "imports across trust zones:\n" + "\n".join(crossings)


def test_no_import_cycle() -> None:
    graph = _graph()
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                cycles.append(" -> ".join(stack[stack.index(target):] + [target]))
            elif target not in state:
                visit(target)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_the_checks_see_a_crossing_and_a_cycle(tmp_path: Path) -> None:
    """The parser itself: a lazy import across a zone and a two-module cycle are found."""
    package = tmp_path / "autograder"
    (package / "worker").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "worker" / "__init__.py").write_text("")
    (package / "worker" / "child.py").write_text("def f():\n    from autograder.grading.plugin import x\n")
    (package / "a.py").write_text("import autograder.b\n")
    (package / "b.py").write_text("from autograder import a\n")
    modules = {"autograder", "autograder.worker", "autograder.worker.child", "autograder.a", "autograder.b", "autograder.grading.plugin"}
    assert _imports(package / "worker" / "child.py", modules) == {"autograder.grading.plugin"}
    assert _zone("autograder.grading.plugin") not in ALLOWED[_zone("autograder.worker.child")]
    assert _imports(package / "a.py", modules) == {"autograder.b"}
    assert _imports(package / "b.py", modules) == {"autograder.a"}
