"""The mutation audit (``python -m autograder audit``): its operators make the mutants they
should, its verdicts are right on the tiny assignment, and on a copy of HW3 whose test is
weakened it reports the survivors that the weakening lets through."""
from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from autograder.course import mutate
from autograder.course.audit import classify, generate
from autograder.config import load_config
from autograder.course.mutate import mutants_of
from autograder.paths import KitLayout
from harness_tests.corpus import CONFIG, LAYOUT, copy_project
from harness_tests.course.test_second_assignment import ENGINE, TINY


# ---------------------------------------------------------------- operators

def _afters(source: str, function: str, operator: str) -> list[str]:
    """What each mutant of ``operator`` turns its changed node into."""
    found = mutants_of(source, function, "9", "m", {operator: mutate.OPERATORS[operator]})
    for m in found:
        compile(m.source, "<mutant>", "exec")
    return [m.after for m in found]


@pytest.mark.parametrize(
    ("operator", "source", "expected"),
    [
        ("arithmetic", "def f(a, b):\n    return a + b * a\n", ["a - b * a", "b / a"]),
        ("sign", "def f(a, b):\n    return -a.sum() + (a - b)\n", ["a.sum()", "b - a"]),
        ("constant", "import math\ndef f(a):\n    return 0.5 * (a + math.log(2 * math.pi)) - 1.0\n", ["0.5 * (a + math.log(2 * math.pi))", "a + math.log(2 * math.pi)", "2.0", "1.0", "a"]),
        ("constant", "import torch\ndef f(a):\n    return torch.clamp(a, min=1e-08)\n", ["0.0"]),
        ("constant", "def f(self, a):\n    return a / self.eps\n", ["0.0"]),
        ("sum_mean", "def f(a):\n    return a.sum(dim=1) + a.mean()\n", ["a.mean(dim=1)", "a.sum()"]),
        ("dim", "def f(a):\n    return a.sum(dim=1)\n", ["a.sum(dim=0)", "a.sum()", "a.sum(dim=1, keepdim=True)"]),
        ("dim", "def f(a):\n    return a.amax(dim=0, keepdim=True)\n", ["a.amax(dim=1, keepdim=True)", "a.amax()", "a.amax(dim=0, keepdim=False)"]),
        ("unary_math", "def f(a):\n    return a.exp().sqrt()\n", ["a.exp()", "a.exp().exp()", "a", "a.log()"]),
        ("unary_math", "import torch\ndef f(a):\n    return torch.log(a)\n", ["a", "torch.exp(a)"]),
        ("min_max", "import torch\ndef f(a):\n    return torch.clamp(a.max(dim=1).values, min=0.0) + a.amax(dim=1)\n",
         ["torch.clamp(a.max(dim=1).values, max=0.0)", "a.amin(dim=1)", "a.min(dim=1)"]),
        ("swap_args", "def f(p, q, critic):\n    return critic(p).mean() - critic(q).mean()\n", ["return critic(q).mean() - critic(p).mean()"]),
        ("swap_args", "def f(x1, x2, g):\n    return g(x1, x2)\n", ["return g(x2, x1)"]),  # the call's swap is the same text: one mutant
        ("detach", "def f(a):\n    b = a * 2\n    return b\n", ["b = (a * 2).detach()", "return b.detach()", "with torch.no_grad():"]),
        ("detach", "import torch\ndef f(a):\n    with torch.no_grad():\n        b = a.detach()\n    return b\n", ["if True: b = a.detach()", "return b.detach()", "a"]),
        ("rsample", "def f(d):\n    return d.rsample()\n", ["d.sample()"]),
        ("graph_flags", "import torch\ndef f(a, x):\n    return torch.autograd.grad(a, x, create_graph=True, retain_graph=False)\n",
         ["create_graph=False", "retain_graph=True"]),
        ("graph_flags", "def f(x):\n    return x.detach().requires_grad_(True)\n", ["x.detach()"]),
        ("draw_shape", "import torch\ndef f(x):\n    return torch.rand(x.shape[0], 1) * x\n", ["torch.rand(1, 1)", "torch.rand(*x.shape)"]),
        ("tuple_order", "def f(a, b, c):\n    return (a, b, c)\n", ["return (b, a, c)", "return (a, c, b)"]),
        ("condition", "def f(self, a):\n    if self.flag:\n        a = -a\n    return a\n", ["if not self.flag: a = -a"]),
    ],
)
def test_each_operator_yields_its_mutants(operator: str, source: str, expected: list[str]) -> None:
    afters = _afters(source, source.split("def ", 1)[1].split("(", 1)[0], operator)
    assert afters == expected


def test_a_mutant_changes_its_function_only_and_each_is_distinct() -> None:
    source = "import torch\n\n\ndef keep(a):\n    # a comment that stays\n    return a.sum(dim=1)\n\n\nclass K:\n    def f(self, a):\n        return a.exp().sum(dim=1)\n"
    found = mutants_of(source, "K.f", "9", "m")
    assert found and len({m.source for m in found}) == len(found) == len({m.id for m in found})
    for m in found:
        assert m.source != source
        assert m.source.split("class K:")[0] == source.split("class K:")[0]  # everything before the method byte-identical
        compile(m.source, "<mutant>", "exec")
        assert m.diff.startswith("K.f L") and " -> " in m.diff and "\n" not in m.diff


def test_every_hw3_part_gets_mutants_of_its_own_functions() -> None:
    mutants = generate(LAYOUT, CONFIG)
    by_part = {p.number: [m for m in mutants if m.part == p.number] for p in CONFIG.parts}
    assert all(by_part.values()), {k: len(v) for k, v in by_part.items()}
    for part in CONFIG.parts:
        assert {m.function for m in by_part[part.number]} <= set(part.functions)
        assert {m.module for m in by_part[part.number]} == {part.module}
    assert len(mutants) >= 150


def test_classify_charges_a_mutant_to_the_parts_it_costs() -> None:
    part = CONFIG.parts[0]
    other = CONFIG.parts[1]
    mutant = generate(LAYOUT, CONFIG, [part.number])[0]

    def results(failing: list[str]) -> dict:
        return {"tests": [{"number": t.number, "score": 0.0 if t.number in failing else t.points, "max_score": t.points} for t in CONFIG.tests()]}

    hidden = [t.number for t in part.tests if t.hidden]
    visible = [t.number for t in part.tests if not t.hidden]
    assert classify(CONFIG, mutant, results(hidden), None, "").status == "killed"
    assert classify(CONFIG, mutant, results(hidden), None, "").visible is False
    assert classify(CONFIG, mutant, results(visible), None, "").visible is True
    assert classify(CONFIG, mutant, results([other.tests[0].number]), None, "").status == "killed_elsewhere"
    assert classify(CONFIG, mutant, results([]), True, "").status == "equivalent"
    assert classify(CONFIG, mutant, results([]), False, "").status == "survived"


# ---------------------------------------------------------------- whole audits

def _cli(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "autograder", *args], cwd=project, capture_output=True, text=True, timeout=900)


def _rows(out: Path) -> dict[str, dict[str, str]]:
    with (out / "audit.csv").open(encoding="utf-8") as handle:
        return {row["mutant"]: row for row in csv.DictReader(handle)}


def _tiny_project(root: Path, weaken: bool) -> Path:
    shutil.copytree(TINY, root, ignore=shutil.ignore_patterns("__pycache__"))
    copy_project(root, ENGINE)
    if weaken:  # the hidden test stops comparing the gradient
        test = root / "tests" / "test_tiny.py"
        text = test.read_text(encoding="utf-8")
        line = '    grader.expect_close(obs, "grad.x", case.expected["grad.x"], what="gradient of sum(cot * softplus(x))")\n'
        assert line in text
        test.write_text(text.replace(line, ""), encoding="utf-8")
    generated = _cli(root, "fixtures", "generate")
    assert generated.returncode == 0, generated.stdout + generated.stderr
    return root


@pytest.mark.parametrize("weaken", [False, True], ids=["tiny", "tiny-without-gradient-check"])
def test_audit_of_the_tiny_assignment(tmp_path: Path, weaken: bool) -> None:
    project = _tiny_project(tmp_path / "project", weaken)
    run = _cli(project, "audit", "--out", "A")
    layout = KitLayout(project)
    config = load_config(layout.config_file)
    mutants = {m.id: m for m in generate(layout, config)}
    rows = _rows(project / "A")
    assert set(rows) == set(mutants)
    # Known mutants: a detached output only loses the gradient (checked by the hidden test
    # alone); a flipped clamp or a dropped log1p are wrong values the visible test shows.
    gradient_only = [k for k, m in mutants.items() if m.operator == "detach"]
    wrong_values = [k for k, m in mutants.items() if m.operator in ("min_max", "unary_math", "sign")]
    assert gradient_only and wrong_values
    for key in wrong_values:
        assert (rows[key]["status"], rows[key]["visible"]) == ("killed", "yes"), rows[key]
    hidden = [t.number for t in config.tests() if t.hidden]
    for key in gradient_only:
        if weaken:
            assert rows[key]["status"] == "survived", rows[key]
        else:
            assert (rows[key]["status"], rows[key]["visible"], rows[key]["failed_tests"]) == ("killed", "no", " ".join(hidden)), rows[key]
    assert run.returncode == (1 if weaken else 0), run.stdout + run.stderr
    summary = run.stdout.strip().splitlines()[-1]
    assert summary.startswith(f"audit: {len(mutants)} mutants:")
    report = (project / "A" / "audit.md").read_text(encoding="utf-8")
    assert ("Survivors" in report) == weaken


HW3_COPY = ("autograder", "assignment", "reference", "tests", "fixtures", "grading.yaml", "conftest.py", "pytest.ini", "student_template")


def test_audit_reports_what_a_weakened_hw3_test_lets_through(tmp_path: Path) -> None:
    """3.2.2 stops comparing (it still probes): the mutants that only it killed survive,
    among them the one whose eps is 0 (NaN for a zero vector); the others stay killed."""
    project = tmp_path / "hw3"
    project.mkdir()
    copy_project(project, HW3_COPY)
    test = project / "tests" / "test_q3.py"
    text = test.read_text(encoding="utf-8")
    original = '    _cosine(grader, "cosine_zero", grads=False)\n'
    assert original in text
    test.write_text(text.replace(original, '    grader.case("cosine_zero")\n'), encoding="utf-8")
    part = CONFIG.test("3.2.2").part
    run = _cli(project, "audit", "--out", "A", "--part", part)
    assert run.returncode == 1, run.stdout + run.stderr
    rows = _rows(project / "A")
    mutants = {m.id: m for m in generate(LAYOUT, CONFIG, [part])}
    assert set(rows) == set(mutants)
    survivors = {k for k, r in rows.items() if r["status"] == "survived"}
    zero_eps = [k for k, m in mutants.items() if m.operator == "constant" and m.before == "self.eps" and m.after == "0.0"]
    assert zero_eps and set(zero_eps) <= survivors
    # Each survivor is listed with the difference the check found: on the zero vectors.
    section = (project / "A" / "audit.md").read_text(encoding="utf-8").split("Survivors", 1)[1].split("\n\n", 2)[1]
    listed = {line.split(" | ")[0].lstrip("| "): line for line in section.splitlines() if line.startswith("| ") and "---" not in line}
    assert set(listed) - {"mutant"} == survivors
    assert all("cosine_zero" in listed[key] for key in survivors), section
    # Multiplying in the other order is the same function: equivalent, not a survivor.
    commuted = [k for k, m in mutants.items() if m.operator == "swap_args" and m.after.startswith("dot = (x2 * x1)")]
    assert commuted and all(rows[k]["status"] == "equivalent" for k in commuted)
    assert all(r["status"] in ("killed", "survived", "equivalent") for r in rows.values())
