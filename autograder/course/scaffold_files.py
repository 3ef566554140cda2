"""The texts ``python -m autograder new`` writes: a complete, working assignment of two
functions (4 points each) that shows every piece the engine needs. Placeholders:
``__TITLE__`` (the name given), ``__MODULE__`` (the solution module), ``__USER__`` (the
sandbox user), ``__TESTS__`` (the graded test module's name)."""
from __future__ import annotations

from autograder.paths import STYLES_FOLDER

SOLUTION_DOCS = {
    "softplus": '''    """``log(1 + exp(x))`` elementwise, finite for every finite ``x``.

    Args:
        x: a float tensor of any shape.

    Returns:
        A tensor of the same shape and dtype as ``x``.
    """''',
    "row_mse": '''    """The mean squared error of each example: ``mean_d (pred - target)^2``.

    Args:
        pred, target: ``(B, D)`` float tensors.

    Returns:
        ``(B,)`` float tensor: one value per example.
    """''',
}

REFERENCE = f'''"""__TITLE__: the reference solutions (the course's; never shipped to students). The
expected values of every case are computed from these, in float64 (assignment/cases.py)."""
import torch


def softplus(x):
{SOLUTION_DOCS["softplus"]}
    return torch.clamp(x, min=0) + torch.log1p(torch.exp(-torch.abs(x)))


def row_mse(pred, target):
{SOLUTION_DOCS["row_mse"]}
    return (pred - target).pow(2).mean(dim=1)
'''

TEMPLATE = f'''"""__TITLE__: write the two functions below, then run ``python -m autograder grade``."""
import torch


def softplus(x):
{SOLUTION_DOCS["softplus"]}
    raise NotImplementedError("softplus")


def row_mse(pred, target):
{SOLUTION_DOCS["row_mse"]}
    raise NotImplementedError("row_mse")
'''

GRADING_YAML = '''# __TITLE__'s rubric: the one source of truth for points, visibility, tolerances and
# timeouts. Validated on load (autograder/config.py); every error names the key path. Test
# numbers start with their part; each part's tests add up to `points_per_part`. A test with
# `visible: false` never shows expected values. `python3 -m autograder calibrate` shows how
# each tolerance sits between the correct styles (<= 0.1) and the known mistakes (>= 10).
version: 1
points_per_part: 4
defaults:
  non_visible: after_due_date   # after_due_date, after_published or hidden
  timeout: 20                   # wall-clock seconds for one probe, import included
modules: [__MODULE__]
support_modules: []             # provided template modules importable beside the solutions
sandbox:
  user: __USER__                # setup.sh creates it and its numbered siblings (as root)
  memory_mb: 1536
  cpu_seconds: 60
  max_processes: 64
  max_file_mb: 16
  output_limit_kb: 16
  slots_per_core: 1
  budget_seconds: 480           # one submission's whole grading (Gradescope stops at 600 s)
parts:
  "1":
    title: Stable softplus
    module: __MODULE__
    functions: [softplus]
    tests:
      "1.1":
        name: softplus returns float32 values equal to log(1 + exp(x))
        points: 2
        tolerance: &softplus_tol
          rtol: 1.0e-5
          atol: 1.0e-5
          why: >-
            log1p(exp(-|x|)) + max(x, 0) and other stable forms differ by float32 rounding only
            (< 1e-6 relative); max(x, 0) misses by up to log 2 near 0, tens of thousands of tolerances.
      "1.2":
        name: softplus stays finite and right for |x| up to 200
        points: 1
        tolerance: *softplus_tol
      "1.3":
        name: softplus values and gradient on a larger batch
        points: 1
        visible: false
        tolerance: *softplus_tol
  "2":
    title: Per-example mean squared error
    module: __MODULE__
    functions: [row_mse]
    tests:
      "2.1":
        name: row_mse returns one float32 value per example, the mean over the features
        points: 2
        tolerance: &mse_tol
          rtol: 1.0e-5
          atol: 1.0e-6
          why: >-
            mean vs sum / D and pow vs multiplication differ by float32 rounding only; a sum over the
            features is D times off, a mean over the batch differs per example.
      "2.2":
        name: row_mse gradients with respect to pred and target
        points: 1
        tolerance: *mse_tol
      "2.3":
        name: row_mse on one example at a time, and torch.autograd.gradcheck
        points: 1
        visible: false
        tolerance: *mse_tol
'''

CASES = '''"""__TITLE__'s case recipes: for every graded test, how its inputs are drawn (from the
generator each recipe gets, seeded by the case's name) and what the reference, in float64,
makes of them: expected values, gradients, and the outputs of known mistakes (``hints``: the
message names the mistake when a submission's output matches one).

`python3 -m autograder fixtures generate` runs them into fixtures/; any change here makes the
fixtures stale until they are regenerated. On Gradescope each visible case is drawn again per
submission from the same recipe. Instructor-side only: the student kit never holds it."""
from __future__ import annotations

import torch

from autograder.grading.recipes import CaseData, CaseSpec, Reference, f64, normal, with_grads


def softplus_case(ref: Reference, g: torch.Generator, batch: int, dim: int, scale: float) -> CaseData:
    x = normal(g, (batch, dim), scale)  # float32 inputs, as the student's code receives them
    cot = normal(g, (batch, dim))  # weights of the gradient test: d sum(cot * softplus(x)) / dx
    data = CaseData(inputs={"x": x, "cot": cot})
    out, grads = with_grads(ref.__MODULE__.softplus, data.inputs, ["x"], cot)
    data.expected = {"out": out, **grads}
    x64 = f64(data.inputs)["x"]
    data.hints = {"out:relu": (x64.clamp_min(0), "softplus is smooth: log(1 + exp(x)), not max(x, 0).")}
    return data


def mse_case(ref: Reference, g: torch.Generator, batch: int, dim: int) -> CaseData:
    pred = normal(g, (batch, dim))
    target = normal(g, (batch, dim))
    cot = normal(g, (batch,))
    data = CaseData(inputs={"pred": pred, "target": target, "cot": cot})
    out, grads = with_grads(ref.__MODULE__.row_mse, data.inputs, ["pred", "target"], cot)
    data.expected = {"out": out, **grads}
    data.hints = {
        "out:sum": (out * dim, "you summed the squared errors over the features; row_mse averages them."),
        "out:batch_mean": (out.mean().expand(batch), "you averaged over the batch as well; return one value per example."),
    }
    return data


# Each case belongs to one test (its number in grading.yaml); its visibility is the test's.
CASES = (
    CaseSpec("softplus_basic", "1.1", lambda r, g: softplus_case(r, g, 4, 5, 3.0)),
    CaseSpec("softplus_wide", "1.2", lambda r, g: softplus_case(r, g, 6, 8, 80.0)),
    CaseSpec("softplus_hidden", "1.3", lambda r, g: softplus_case(r, g, 32, 16, 10.0)),
    CaseSpec("mse_basic", "2.1", lambda r, g: mse_case(r, g, 5, 6)),
    CaseSpec("mse_grad", "2.2", lambda r, g: mse_case(r, g, 5, 6)),
    CaseSpec("mse_hidden", "2.3", lambda r, g: mse_case(r, g, 12, 10)),
)
'''

PROBES = '''"""__TITLE__'s own probe kinds, beside the engine's ``call`` and ``gradcheck``: code that
runs in the sandboxed worker, calls the student's functions the way a test needs, and
sends back plain tensors (``export``). An assignment whose graded code is plain functions
needs none; this one shows how (``rows``, used by test 2.3). Imported into every worker
before the student's code (``autograder.worker.probes.table``)."""
from __future__ import annotations

from types import ModuleType
from typing import Any, Mapping

import torch

from autograder.worker.probes import ProbeResult, Tensors, Values, export, resolve


def probe_rows(mods: Mapping[str, ModuleType], params: dict[str, Any], inputs: Tensors) -> ProbeResult:
    """Call ``params["function"]`` on one example at a time (row ``i`` of every argument)
    and stack the answers: a value that mixes rows differs from the batched reference."""
    fn = resolve(mods[params["module"]], params["function"])
    names = list(params["args"])
    answers = [fn(*(inputs[n][i : i + 1].clone() for n in names)) for i in range(inputs[names[0]].shape[0])]
    tensors: Tensors = {}
    values: Values = {}
    odd = [a for a in answers if not isinstance(a, torch.Tensor)]
    export("out", odd[0] if odd else torch.cat([a.reshape(-1) for a in answers]), tensors, values)
    return tensors, values


PROBES = {"rows": probe_rows}
'''

TESTS = '''"""__TITLE__'s graded tests: one function per rubric entry of grading.yaml, marked with its
number. A test reaches the submission only through ``grader``: ``grader.case`` gives the
frozen (or, on Gradescope, freshly drawn) inputs and expected values, ``grader.call`` and
``grader.probe`` run the student's code in the sandboxed worker, and ``grader.expect_close``
/ ``grader.expect`` turn what came back into pass, or a message the student can act on."""
from __future__ import annotations

import pytest

from autograder.grading.judge import Grader

MSE = ("pred", "target")


@pytest.mark.graded("1.1")
def test_softplus_values(grader: Grader) -> None:
    case = grader.case("softplus_basic")
    obs = grader.call("softplus", case, ("x",))
    # The part's one dtype test; the others compare values whatever the float dtype.
    grader.expect_close(obs, "out", case.expected["out"], what="softplus(x)", hints=case.hint_list("out"), check_dtype=True)


@pytest.mark.graded("1.2")
def test_softplus_wide(grader: Grader) -> None:
    case = grader.case("softplus_wide")
    obs = grader.call("softplus", case, ("x",))
    grader.expect_close(obs, "out", case.expected["out"], what="softplus(x) for |x| up to 200", hints=case.hint_list("out"))


@pytest.mark.graded("1.3")
def test_softplus_gradient(grader: Grader) -> None:
    case = grader.case("softplus_hidden")
    obs = grader.call("softplus", case, ("x",), grad_wrt=["x"], cotangent="cot")
    grader.expect_close(obs, "out", case.expected["out"], what="softplus(x) on a larger batch", hints=case.hint_list("out"))
    grader.expect_close(obs, "grad.x", case.expected["grad.x"], what="gradient of sum(cot * softplus(x)) with respect to x")


@pytest.mark.graded("2.1")
def test_row_mse_values(grader: Grader) -> None:
    case = grader.case("mse_basic")
    obs = grader.call("row_mse", case, MSE)
    grader.expect_close(obs, "out", case.expected["out"], what="row_mse(pred, target)", hints=case.hint_list("out"), check_dtype=True)


@pytest.mark.graded("2.2")
def test_row_mse_gradients(grader: Grader) -> None:
    case = grader.case("mse_grad")
    obs = grader.call("row_mse", case, MSE, grad_wrt=list(MSE), cotangent="cot")
    for name in MSE:
        grader.expect_close(obs, f"grad.{name}", case.expected[f"grad.{name}"],
                            what=f"gradient of sum(cot * row_mse(pred, target)) with respect to {name}")


@pytest.mark.graded("2.3")
def test_row_mse_rows_and_gradcheck(grader: Grader) -> None:
    case = grader.case("mse_hidden")
    obs = grader.probe("rows", {"function": "row_mse", "args": list(MSE)}, case.inputs, call="row_mse on one example at a time")
    grader.expect_close(obs, "out", case.expected["out"], what="row_mse of each example alone (its value depends on its own row only)")
    checked = grader.probe("gradcheck", {"function": "row_mse", "args": list(MSE)}, case.inputs,
                           call="torch.autograd.gradcheck(row_mse, float64 inputs)")
    grader.expect(bool(checked.values.get("gradcheck")), "row_mse failed torch.autograd.gradcheck in float64: its gradient does not "
                  "match finite differences (.detach(), .item() or numpy on the way?). " + str(checked.values.get("gradcheck_message", ""))[:300])
'''

PYTEST_INI = '''[pytest]
testpaths = tests
addopts = -p no:cacheprovider -ra
timeout = 900
filterwarnings =
    ignore::DeprecationWarning
'''

KIT_README = '''# __TITLE__: student kit

Write `softplus` and `row_mse` in `__MODULE__.py`, then grade them here:

    python -m pip install -r requirements.txt
    python -m autograder grade            # or: python grade.py

The visible tests run here on the frozen inputs in `fixtures/`; Gradescope runs them on
inputs drawn afresh for each upload, and runs the non-visible tests as well. Both judge the
same way, so a function that is right here is right there.
'''

KIT_REQUIREMENTS = '''# What the local grader needs (pip install -r requirements.txt). CPU-only torch:
#   pip install torch --index-url https://download.pytorch.org/whl/cpu
torch>=2.3,<3
numpy>=1.24
safetensors>=0.4,<1
PyYAML>=6
pytest>=7.4
pytest-timeout>=2.1
'''

ASSIGNMENT_INIT = '''"""__TITLE__ itself, as the engine in ``autograder/`` sees it: the case recipes
(``cases.py``), its probe kinds (``probes.py``), and the student kit's README and
requirements (``kit/``). A caller graded with a correct callee on its fallback run would add
``substitutes/<callee>.py``. With ``grading.yaml``, ``reference/``, ``student_template/``,
``tests/`` and ``fixtures/`` it is the whole assignment."""
'''

STYLES_README = '''# Correct styles

One folder per other correct way of writing the functions, holding full solution module(s)
(`__MODULE__.py`); the reference fills in any module a folder lacks. `python3 -m autograder
calibrate` and `fixtures verify` grade them all, with the reference, and require each to use at
most 0.1 of every tolerance. Until a folder is added, the reference alone is calibrated.
'''

PROJECT_README = '''# __TITLE__ autograder

Made by `python3 -m autograder new`. Everything about the homework is in `assignment/`
(case recipes, probe kinds, the student kit's texts), `grading.yaml` (the rubric),
`reference/`, `student_template/`, `tests/` and `fixtures/`; `autograder/` is the engine.

    bash setup.sh                                  # dependencies; as root, the sandbox users of grading.yaml
    python3 -m autograder fixtures generate        # after any change to recipes, reference, tolerances, visibility
    python3 -m autograder fixtures verify          # hashes, staleness, kit leaks, the reference at full marks, calibration
    python3 -m autograder grade                    # the reference: 8/8
    python3 -m autograder grade student_template   # 0/8
    python3 -m autograder calibrate                # how each tolerance sits between styles and mistakes
    python3 -m autograder build --out dist         # dist/autograder.zip (Gradescope), dist/student_kit.zip

Add a correct style per folder in `harness_tests/submissions/styles/`. What earns each point is in
[GRADING.md](GRADING.md).
'''

GRADING_MD = '''# __TITLE__ grading contract

What earns each of the 8 points. Two parts, 4 points each; points, visibility and
tolerances come from `grading.yaml`.

| test | pts | visible | what earns it |
| --- | --- | --- | --- |
| 1.1 | 2 | yes | *dtype*: `softplus` returns float32 values equal to `log(1 + exp(x))` |
| 1.2 | 1 | yes | the same, finite, for `abs(x)` up to 200 |
| 1.3 | 1 | no | values and gradient on a larger batch |
| 2.1 | 2 | yes | *dtype*: `row_mse` returns one float32 value per example, the mean over the features |
| 2.2 | 1 | yes | gradients with respect to `pred` and `target` |
| 2.3 | 1 | no | each example's value from its own row alone, and `torch.autograd.gradcheck` in float64 |
'''

GITIGNORE = '''__pycache__/
*.pyc
.pytest_cache/
/dist/
/build/
'''

# Relative path -> text, placeholders filled in by scaffold.py.
FILES = {
    "README.md": PROJECT_README,
    "GRADING.md": GRADING_MD,
    "grading.yaml": GRADING_YAML,
    "pytest.ini": PYTEST_INI,
    ".gitignore": GITIGNORE,
    "reference/__MODULE__.py": REFERENCE,
    "student_template/__MODULE__.py": TEMPLATE,
    "assignment/__init__.py": ASSIGNMENT_INIT,
    "assignment/cases.py": CASES,
    "assignment/probes.py": PROBES,
    "assignment/kit/README.md": KIT_README,
    "assignment/kit/requirements.txt": KIT_REQUIREMENTS,
    "tests/__TESTS__.py": TESTS,
    f"{STYLES_FOLDER.as_posix()}/README.md": STYLES_README,
}
