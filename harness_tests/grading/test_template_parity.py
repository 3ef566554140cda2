"""The student template is the reference with the graded bodies removed, checked by
``inspect``/``ast`` rather than by eye: same public API (signatures, docstrings), same
module docstrings, identical provided code, and every graded body reduced to its
docstring plus one ``raise NotImplementedError("...")``."""
from __future__ import annotations

import ast
import copy
import importlib.util
import inspect
from pathlib import Path
from types import ModuleType

import pytest
import torch
import torch.nn as nn

REPO = Path(__file__).resolve().parent.parent.parent
REFERENCE = REPO / "reference"
TEMPLATE = REPO / "student_template"
MODULES = ("q1_solution", "q2_solution", "q3_solution")

# The graded bodies of the nine parts (part 2.1 has two), by module and qualified name.
GRADED = {
    "q1_solution": (
        "log_likelihood_bernoulli",
        "log_likelihood_normal",
        "log_mean_exp",
        "kl_gaussian_gaussian_analytic",
        "kl_gaussian_gaussian_mc",
    ),
    "q2_solution": ("vf_wasserstein_distance", "lp_reg"),
    "q3_solution": ("CosineSimilarity.forward", "SimSiam.forward", "SimSiam.loss"),
}
# Provided code that the template keeps exactly as it is.
PROVIDED = (("q3_solution", "SimSiam.__init__"), ("q3_solution", "bdot"), ("q3_solution", "CosineSimilarity.__init__"))


def _load(folder: Path, name: str, alias: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(alias, folder / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def modules() -> dict[str, tuple[ModuleType, ModuleType]]:
    return {
        name: (_load(REFERENCE, name, f"_parity_reference_{name}"), _load(TEMPLATE, name, f"_parity_template_{name}"))
        for name in MODULES
    }


def _tree(folder: Path, name: str) -> ast.Module:
    return ast.parse((folder / f"{name}.py").read_text(encoding="utf-8"))


def _public_api(module: ModuleType) -> dict[str, object]:
    """Every public top-level function and class defined in the module, and every
    method (``__init__`` included) defined in those classes, by qualified name."""
    api: dict[str, object] = {}
    for name, value in vars(module).items():
        if name.startswith("_") or getattr(value, "__module__", None) != module.__name__:
            continue
        if inspect.isfunction(value):
            api[name] = value
        elif inspect.isclass(value):
            api[name] = value
            for attr, member in vars(value).items():
                if inspect.isfunction(member) and (not attr.startswith("_") or attr == "__init__"):
                    api[f"{name}.{attr}"] = member
    return api


def _resolve(module: ModuleType, qualname: str) -> object:
    obj: object = module
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def _defs(tree: ast.Module) -> dict[str, ast.FunctionDef]:
    """Function definitions by qualified name (top level and one class deep)."""
    found: dict[str, ast.FunctionDef] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            found[node.name] = node
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef):
                    found[f"{node.name}.{item.name}"] = item
    return found


def test_graded_bodies_match_the_rubric() -> None:
    """The functions listed here are exactly those that grading.yaml grades."""
    from autograder.config import load_config

    config = load_config(REPO / "grading.yaml")
    rubric = {(part.module, fn) for part in config.parts for fn in part.functions}
    assert rubric == {(m, q) for m, qs in GRADED.items() for q in qs}
    assert len(config.parts) == 9


def test_graded_bodies_exist_in_both() -> None:
    for name, qualnames in GRADED.items():
        for folder in (REFERENCE, TEMPLATE):
            defs = _defs(_tree(folder, name))
            missing = [q for q in qualnames if q not in defs]
            assert not missing, f"{folder / name}.py lacks {missing}"


@pytest.mark.parametrize("name", MODULES)
def test_same_public_api_signatures_and_docstrings(modules, name: str) -> None:
    reference, template = modules[name]
    ref_api, tpl_api = _public_api(reference), _public_api(template)
    assert ref_api, f"no public API found in reference/{name}.py"
    assert sorted(ref_api) == sorted(tpl_api), f"{name}: public names differ"
    for qualname, ref_obj in ref_api.items():
        tpl_obj = tpl_api[qualname]
        assert str(inspect.signature(ref_obj)) == str(inspect.signature(tpl_obj)), f"{name}.{qualname}: signature differs"
        assert inspect.getdoc(ref_obj) == inspect.getdoc(tpl_obj), f"{name}.{qualname}: docstring differs"
        assert ref_obj.__doc__ == tpl_obj.__doc__, f"{name}.{qualname}: raw docstring differs"


@pytest.mark.parametrize("name", MODULES)
def test_module_docstrings_match(modules, name: str) -> None:
    reference, template = modules[name]
    assert reference.__doc__ and reference.__doc__.strip()
    assert reference.__doc__ == template.__doc__


@pytest.mark.parametrize(("name", "qualname"), PROVIDED, ids=[q for _, q in PROVIDED])
def test_provided_code_is_identical(modules, name: str, qualname: str) -> None:
    reference, template = modules[name]
    ref_src = inspect.getsource(_resolve(reference, qualname))
    tpl_src = inspect.getsource(_resolve(template, qualname))
    assert ref_src == tpl_src, f"{name}.{qualname}: provided code differs between reference and template"
    ref_def, tpl_def = _defs(_tree(REFERENCE, name))[qualname], _defs(_tree(TEMPLATE, name))[qualname]
    assert ast.dump(ref_def) == ast.dump(tpl_def)


def _strip_graded(tree: ast.Module, qualnames: tuple[str, ...]) -> ast.Module:
    """The module with every graded body reduced to its docstring."""
    tree = copy.deepcopy(tree)
    defs = _defs(tree)
    for qualname in qualnames:
        node = defs[qualname]
        node.body = node.body[:1] if ast.get_docstring(node) is not None else [ast.Pass()]
    return tree


@pytest.mark.parametrize("name", MODULES)
def test_everything_but_the_graded_bodies_is_identical(name: str) -> None:
    """Imports, constants, classes and provided code: the whole module matches once the
    graded bodies are set aside (catches a helper that exists in one version only)."""
    ref = _strip_graded(_tree(REFERENCE, name), GRADED[name])
    tpl = _strip_graded(_tree(TEMPLATE, name), GRADED[name])
    assert ast.dump(ref) == ast.dump(tpl)


GRADED_FLAT = [(m, q) for m, qs in GRADED.items() for q in qs]


@pytest.mark.parametrize(("name", "qualname"), GRADED_FLAT, ids=[q for _, q in GRADED_FLAT])
def test_template_graded_body_is_docstring_plus_one_raise(name: str, qualname: str) -> None:
    node = _defs(_tree(TEMPLATE, name))[qualname]
    assert ast.get_docstring(node), f"{qualname}: the template must keep the docstring"
    body = node.body[1:]
    assert len(body) == 1, f"{qualname}: the template body must be one raise statement, got {len(body)} statements"
    stmt = body[0]
    assert isinstance(stmt, ast.Raise) and stmt.cause is None
    call = stmt.exc
    assert isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "NotImplementedError"
    assert not call.keywords and len(call.args) == 1
    message = call.args[0]
    assert isinstance(message, ast.Constant) and isinstance(message.value, str) and message.value.strip()


@pytest.mark.parametrize(("name", "qualname"), GRADED_FLAT, ids=[q for _, q in GRADED_FLAT])
def test_reference_graded_body_is_implemented(name: str, qualname: str) -> None:
    node = _defs(_tree(REFERENCE, name))[qualname]
    for stmt in ast.walk(node):
        if isinstance(stmt, ast.Raise) and isinstance(stmt.exc, ast.Call) and getattr(stmt.exc.func, "id", "") == "NotImplementedError":
            pytest.fail(f"reference {qualname} raises NotImplementedError")


class _Backbone(nn.Module):
    """The smallest encoder SimSiam.__init__ accepts: a last linear layer ``fc``."""

    def __init__(self, num_classes: int = 8, zero_init_residual: bool = False) -> None:
        super().__init__()
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(12, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.flatten(x))


def _calls(module: ModuleType) -> dict[str, object]:
    """A zero-argument call of every graded function of ``module`` on valid inputs."""
    torch.manual_seed(0)
    b, d = 4, 3
    mu = torch.rand(b, d) * 0.8 + 0.1
    t = torch.randn(b, d)
    critic = nn.Linear(d, 1)
    if hasattr(module, "log_likelihood_bernoulli"):
        calls = {
            "log_likelihood_bernoulli": lambda: module.log_likelihood_bernoulli(mu, (t > 0).float()),
            "log_likelihood_normal": lambda: module.log_likelihood_normal(t, t, t),
            "log_mean_exp": lambda: module.log_mean_exp(t),
            "kl_gaussian_gaussian_analytic": lambda: module.kl_gaussian_gaussian_analytic(t, t, t, t),
            "kl_gaussian_gaussian_mc": lambda: module.kl_gaussian_gaussian_mc(t, t, t, t, num_samples=2),
        }
    elif hasattr(module, "lp_reg"):
        calls = {
            "vf_wasserstein_distance": lambda: module.vf_wasserstein_distance(t, t + 1, critic),
            "lp_reg": lambda: module.lp_reg(t, t + 1, critic),
        }
    else:
        model = module.SimSiam(_Backbone, dim=8, pred_dim=4).eval()
        x1, x2, z = torch.randn(b, 3, 2, 2), torch.randn(b, 3, 2, 2), torch.randn(b, 8)
        calls = {
            "CosineSimilarity.forward": lambda: module.CosineSimilarity(dim=1)(t, t + 1),
            "SimSiam.forward": lambda: model(x1, x2),
            "SimSiam.loss": lambda: model.loss(z, z + 1, z - 1, z * 2),
        }
    return calls


@pytest.mark.parametrize(("name", "qualname"), GRADED_FLAT, ids=[q for _, q in GRADED_FLAT])
def test_calling_template_raises_not_implemented_and_reference_does_not(modules, name: str, qualname: str) -> None:
    reference, template = modules[name]
    tpl_calls = _calls(template)
    assert set(tpl_calls) == set(GRADED[name])
    with pytest.raises(NotImplementedError):
        tpl_calls[qualname]()
    result = _calls(reference)[qualname]()
    outputs = result if isinstance(result, tuple) else (result,)
    assert all(isinstance(o, torch.Tensor) and bool(torch.isfinite(o).all()) for o in outputs)


def test_template_provided_code_runs(modules) -> None:
    """The provided SimSiam builder works in the template (state dicts of the reference load)."""
    reference, template = modules["q3_solution"]
    for mode in (None, "no_pred_mlp", "fixed_random_init"):
        torch.manual_seed(1)
        ref_model = reference.SimSiam(_Backbone, dim=8, pred_dim=4, MLP_mode=mode)
        tpl_model = template.SimSiam(_Backbone, dim=8, pred_dim=4, MLP_mode=mode)
        tpl_model.load_state_dict(ref_model.state_dict(), strict=True)
        assert [n for n, _ in ref_model.named_parameters()] == [n for n, _ in tpl_model.named_parameters()]
        assert [p.requires_grad for p in ref_model.parameters()] == [p.requires_grad for p in tpl_model.parameters()]
    a, b = torch.randn(5, 3), torch.randn(5, 3)
    assert torch.equal(reference.bdot(a, b), template.bdot(a, b))
    sim = template.CosineSimilarity()
    assert (sim.dim, sim.eps) == (1, 1e-8)
