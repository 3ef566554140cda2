"""First-order mutants of graded functions, made with AST operators for numerical and
autograd code: each mutant changes one node of one function, so that a test suite can be
asked whether it notices (``autograder/course/audit.py`` runs and classifies them).

The operators are the mistakes this field makes: a flipped sign or operator, a dropped or
changed constant, sum for mean, a reduction over the wrong dimension or with keepdim
toggled, a dropped or swapped exp/log/sqrt, max for min, two arguments swapped, a detach
or no_grad added or removed, sample for rsample, a graph flag flipped, a random draw of
the wrong shape, a returned tuple reordered. Only the function's own lines change in the
mutated module; everything else stays byte-identical."""
from __future__ import annotations

import ast
import copy
import itertools
from dataclasses import dataclass
from typing import Callable, Iterator

# A site: which node (its index in ast.walk order of the function) and what replaces it.
Rewrite = Callable[[ast.AST], ast.AST]


@dataclass(frozen=True)
class Site:
    """One place an operator can change, and how (``rewrite`` gets a copy of the node)."""

    index: int
    rewrite: Rewrite


@dataclass(frozen=True)
class Mutant:
    """One first-order mutant: which function it changes, how, and the whole module's text."""

    id: str
    part: str
    module: str
    function: str
    operator: str
    line: int
    before: str
    after: str
    source: str

    @property
    def diff(self) -> str:
        """The change on one line: ``L27 y.max(dim=1) -> y.min(dim=1)``."""
        return f"{self.function} L{self.line}: {self.before} -> {self.after}"


REDUCTIONS = {"sum", "mean", "max", "min", "amax", "amin", "norm", "logsumexp", "prod", "std", "var"}
UNARY_MATH = {"exp", "log", "sqrt", "log1p", "expm1"}
UNARY_SWAPS = {"exp": "log", "log": "exp", "sqrt": "exp", "log1p": "expm1", "expm1": "log1p"}
MINMAX = {"max": "min", "min": "max", "amax": "amin", "amin": "amax", "clamp_min": "clamp_max", "clamp_max": "clamp_min"}
DRAWS = {"rand", "randn", "randint", "normal"}
SHAPE_CALLS = {"reshape", "view", "unsqueeze", "squeeze", "expand", "norm", "pow", "range", "split"} | DRAWS


def _name(call: ast.Call) -> str:
    """The called name: ``torch.exp(x)`` and ``x.exp()`` both give ``exp``."""
    func = call.func
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return ""


def _is_method(call: ast.Call) -> bool:
    """``x.exp()`` (a tensor method) rather than ``torch.exp(x)`` / ``math.exp(x)``."""
    func = call.func
    return isinstance(func, ast.Attribute) and not (isinstance(func.value, ast.Name) and func.value.id in ("torch", "math", "F", "np"))


def _operand(call: ast.Call) -> ast.expr | None:
    """The tensor a unary call works on: the receiver of a method, else the first argument."""
    if _is_method(call):
        assert isinstance(call.func, ast.Attribute)
        return call.func.value
    return call.args[0] if call.args else None


def _is_constant(node: ast.AST) -> bool:
    """A number, ``math.pi``, ``math.log(...)`` of constants, or arithmetic on those."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, (int, float)) and not isinstance(node.value, bool)
    if isinstance(node, ast.Attribute):
        return isinstance(node.value, ast.Name) and node.value.id == "math"
    if isinstance(node, ast.UnaryOp):
        return _is_constant(node.operand)
    if isinstance(node, ast.BinOp):
        return _is_constant(node.left) and _is_constant(node.right)
    if isinstance(node, ast.Call):
        func = node.func
        return isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "math" and all(_is_constant(a) for a in node.args)
    return False


def _parents(tree: ast.AST) -> dict[int, ast.AST]:
    return {id(child): parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}


def _in_shape_position(node: ast.AST, parents: dict[int, ast.AST]) -> bool:
    """Inside a subscript, a reshape/view/shape argument or a dim keyword: an index, not a value."""
    current = node
    while id(current) in parents:
        parent = parents[id(current)]
        if isinstance(parent, ast.Subscript) and current is parent.slice:
            return True
        if isinstance(parent, ast.keyword) and parent.arg == "dim":
            return True
        if isinstance(parent, ast.Call) and current is not parent.func and _name(parent) in SHAPE_CALLS:
            return True
        if isinstance(parent, (ast.stmt, ast.Lambda)):
            return False
        current = parent
    return False


# ---------------------------------------------------------------- operators

Operator = Callable[[ast.FunctionDef], Iterator[Site]]


def _nodes(fn: ast.FunctionDef) -> list[ast.AST]:
    return list(ast.walk(fn))


def _body_nodes(fn: ast.FunctionDef) -> Iterator[tuple[int, ast.AST]]:
    """Nodes of the body (not the signature, not the docstring)."""
    skip: set[int] = set()
    for default in [*fn.args.defaults, *fn.args.kw_defaults]:
        if default is not None:
            skip.update(id(n) for n in ast.walk(default))
    skip.update(id(n) for n in ast.walk(fn.args))
    if fn.body and isinstance(fn.body[0], ast.Expr) and isinstance(fn.body[0].value, ast.Constant) and isinstance(fn.body[0].value.value, str):
        skip.update(id(n) for n in ast.walk(fn.body[0]))
    for index, node in enumerate(_nodes(fn)):
        if id(node) not in skip and node is not fn:
            yield index, node


ARITH_SWAPS: dict[type, type] = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult}


def arithmetic(fn: ast.FunctionDef) -> Iterator[Site]:
    """``+`` <-> ``-``, ``*`` <-> ``/`` (not in indices or shapes)."""
    parents = _parents(fn)
    for index, node in _body_nodes(fn):
        if isinstance(node, ast.BinOp) and type(node.op) in ARITH_SWAPS and not _in_shape_position(node, parents) and not _is_constant(node):

            def rewrite(n: ast.AST) -> ast.AST:
                assert isinstance(n, ast.BinOp)
                n.op = ARITH_SWAPS[type(n.op)]()
                return n

            yield Site(index, rewrite)


def sign(fn: ast.FunctionDef) -> Iterator[Site]:
    """A unary minus dropped, and a subtraction's operands swapped (``a - b`` -> ``b - a``)."""
    parents = _parents(fn)
    for index, node in _body_nodes(fn):
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and not _in_shape_position(node, parents):
            yield Site(index, lambda n: n.operand)  # type: ignore[attr-defined]
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Sub) and not _is_constant(node.left) and not _is_constant(node.right) and not _in_shape_position(node, parents):
            yield Site(index, lambda n: ast.BinOp(left=n.right, op=ast.Sub(), right=n.left))  # type: ignore[attr-defined]


def constant(fn: ast.FunctionDef) -> Iterator[Site]:
    """A constant term or factor dropped (``0.5 * a`` -> ``a``, ``log(2*pi) + a`` -> ``a``,
    ``a - 1.0`` -> ``a``), and a float constant changed (``c`` -> ``2c``; an eps -> 0)."""
    parents = _parents(fn)
    for index, node in _body_nodes(fn):
        if _in_shape_position(node, parents):
            continue
        if isinstance(node, ast.BinOp) and type(node.op) in ARITH_SWAPS and not _is_constant(node):
            if _is_constant(node.left) and not isinstance(node.op, (ast.Div,)):
                yield Site(index, lambda n: n.right)  # type: ignore[attr-defined]
            if _is_constant(node.right):
                yield Site(index, lambda n: n.left)  # type: ignore[attr-defined]
        plain_float = isinstance(node, ast.Constant) and isinstance(node.value, float) and not _is_constant(parents.get(id(node), fn))
        if plain_float or (isinstance(node, ast.Attribute) and node.attr == "eps"):
            value = node.value if isinstance(node, ast.Constant) else 0.0
            changed = 0.0 if abs(value) < 1e-3 else 2.0 * value
            yield Site(index, lambda n, c=changed: ast.Constant(c))
    for index, node in _body_nodes(fn):  # keyword constants such as clamp(min=eps)
        if isinstance(node, ast.keyword) and node.arg in ("min", "eps") and isinstance(node.value, ast.Constant) and isinstance(node.value.value, float) and node.value.value > 0:
            yield Site(index, lambda n: ast.keyword(arg=n.arg, value=ast.Constant(0.0)))  # type: ignore[attr-defined]


def sum_mean(fn: ast.FunctionDef) -> Iterator[Site]:
    """``sum`` <-> ``mean`` (method or function)."""
    for index, node in _body_nodes(fn):
        if isinstance(node, ast.Call) and _name(node) in ("sum", "mean") and isinstance(node.func, ast.Attribute):

            def rewrite(n: ast.AST) -> ast.AST:
                assert isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
                n.func.attr = "mean" if n.func.attr == "sum" else "sum"
                return n

            yield Site(index, rewrite)


def _dim_of(call: ast.Call) -> tuple[str, int | None]:
    """Where a reduction's dim is: ('kw', None), ('arg', i) or ('', None) when absent."""
    if any(k.arg == "dim" for k in call.keywords):
        return "kw", None
    position = 1 if _name(call) == "norm" and _is_method(call) else 0
    if not _is_method(call):
        position += 1
    if len(call.args) > position:
        return "arg", position
    return "", None


def _other_dim(node: ast.expr) -> ast.expr:
    """Another dimension: 0, or 1 where it was 0 (the batch dimension for a feature one)."""
    return ast.Constant(1 if isinstance(node, ast.Constant) and node.value == 0 else 0)


def dim(fn: ast.FunctionDef) -> Iterator[Site]:
    """A reduction's dim changed (or dropped: over everything), keepdim toggled."""
    for index, node in _body_nodes(fn):
        if not (isinstance(node, ast.Call) and _name(node) in REDUCTIONS and (_is_method(node) or node.args)):
            continue
        where, position = _dim_of(node)
        if where == "kw":

            def change_kw(n: ast.AST) -> ast.AST:
                assert isinstance(n, ast.Call)
                n.keywords = [ast.keyword(arg="dim", value=_other_dim(k.value)) if k.arg == "dim" else k for k in n.keywords]
                return n

            def drop_kw(n: ast.AST) -> ast.AST:
                assert isinstance(n, ast.Call)
                n.keywords = [k for k in n.keywords if k.arg not in ("dim", "keepdim")]
                return n

            yield Site(index, change_kw)
            yield Site(index, drop_kw)
        elif where == "arg" and position is not None:

            def change_arg(n: ast.AST, i: int = position) -> ast.AST:
                assert isinstance(n, ast.Call)
                n.args = [*n.args[:i], _other_dim(n.args[i]), *n.args[i + 1:]]
                return n

            yield Site(index, change_arg)
        if where:

            def toggle(n: ast.AST) -> ast.AST:
                assert isinstance(n, ast.Call)
                flags = [k for k in n.keywords if k.arg == "keepdim"]
                if flags:
                    value = flags[0].value
                    on = isinstance(value, ast.Constant) and bool(value.value)
                    n.keywords = [ast.keyword(arg="keepdim", value=ast.Constant(not on)) if k.arg == "keepdim" else k for k in n.keywords]
                else:
                    n.keywords = [*n.keywords, ast.keyword(arg="keepdim", value=ast.Constant(True))]
                return n

            yield Site(index, toggle)


def unary_math(fn: ast.FunctionDef) -> Iterator[Site]:
    """exp/log/sqrt dropped (``x.exp()`` -> ``x``) or swapped (exp <-> log, sqrt -> exp)."""
    for index, node in _body_nodes(fn):
        if isinstance(node, ast.Call) and _name(node) in UNARY_MATH and _operand(node) is not None:
            if not (isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name) and node.func.value.id == "math"):
                yield Site(index, lambda n: _operand(n))  # type: ignore[arg-type, return-value]

            def swap(n: ast.AST) -> ast.AST:
                assert isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute | ast.Name)
                if isinstance(n.func, ast.Attribute):
                    n.func.attr = UNARY_SWAPS[n.func.attr]
                else:
                    n.func.id = UNARY_SWAPS[n.func.id]
                return n

            yield Site(index, swap)


def min_max(fn: ast.FunctionDef) -> Iterator[Site]:
    """max <-> min, amax <-> amin, and a clamp's min= bound made max=."""
    for index, node in _body_nodes(fn):
        if isinstance(node, ast.Call) and _name(node) in MINMAX:

            def swap(n: ast.AST) -> ast.AST:
                assert isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute | ast.Name)
                if isinstance(n.func, ast.Attribute):
                    n.func.attr = MINMAX[n.func.attr]
                else:
                    n.func.id = MINMAX[n.func.id]
                return n

            yield Site(index, swap)
        if isinstance(node, ast.Call) and _name(node) in ("clamp", "clamp_", "clip") and any(k.arg in ("min", "max") for k in node.keywords):

            def flip(n: ast.AST) -> ast.AST:
                assert isinstance(n, ast.Call)
                n.keywords = [ast.keyword(arg={"min": "max", "max": "min"}.get(k.arg or "", k.arg), value=k.value) for k in n.keywords]
                return n

            yield Site(index, flip)


def _loaded_names(fn: ast.FunctionDef) -> set[str]:
    return {n.id for _, n in _body_nodes(fn) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def swap_args(fn: ast.FunctionDef) -> Iterator[Site]:
    """Two parameters swapped wherever the body uses them (p and q, x and y, the two views),
    and a call's first two positional arguments swapped."""
    used = _loaded_names(fn)
    called = {n.func.id for _, n in _body_nodes(fn) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    params = [a.arg for a in fn.args.args if a.arg != "self" and a.arg in used and a.arg not in called]
    # Parameters that take tensors: those with no default (a count or a mode has one).
    defaults = len(fn.args.defaults)
    tensors = [a for a in params if a in [x.arg for x in fn.args.args[: len(fn.args.args) - defaults]]]
    for first, second in itertools.combinations(tensors, 2):

        def rename(n: ast.AST, a: str = first, b: str = second) -> ast.AST:
            assert isinstance(n, ast.FunctionDef)
            skip = {id(x) for x in ast.walk(n.args)}
            for x in ast.walk(n):
                if isinstance(x, ast.Name) and id(x) not in skip and x.id in (a, b):
                    x.id = b if x.id == a else a
            return n

        yield Site(0, rename)
    for index, node in _body_nodes(fn):
        if isinstance(node, ast.Call) and len(node.args) >= 2 and not any(isinstance(a, ast.Starred) for a in node.args[:2]):
            if _name(node) in DRAWS | {"reshape", "view", "expand", "clamp", "norm", "pow", "getattr", "isinstance", "range", "grad", "where"}:
                continue
            if any(_is_constant(a) for a in node.args[:2]):
                continue

            def swap(n: ast.AST) -> ast.AST:
                assert isinstance(n, ast.Call)
                n.args = [n.args[1], n.args[0], *n.args[2:]]
                return n

            yield Site(index, swap)


def _detach(value: ast.expr) -> ast.expr:
    return ast.Call(func=ast.Attribute(value=value, attr="detach", ctx=ast.Load()), args=[], keywords=[])


def _no_grad(body: list[ast.stmt]) -> ast.With:
    ctx = ast.Call(func=ast.Attribute(value=ast.Name(id="torch", ctx=ast.Load()), attr="no_grad", ctx=ast.Load()), args=[], keywords=[])
    return ast.With(items=[ast.withitem(context_expr=ctx)], body=body)


def _is_docstring(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str)


def detach(fn: ast.FunctionDef) -> Iterator[Site]:
    """``.detach()`` removed or added (on an assigned value, a returned value), and
    ``torch.no_grad()`` removed or wrapped around the body."""
    for index, node in _body_nodes(fn):
        if isinstance(node, ast.Call) and _name(node) in ("detach", "detach_") and isinstance(node.func, ast.Attribute) and not node.args:
            yield Site(index, lambda n: n.func.value)  # type: ignore[attr-defined]
        elif isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name) and not (
            isinstance(node.value, ast.Call) and (_name(node.value) in ("detach", "requires_grad_") or _name(node.value)[:1].isupper())  # a module built, not a tensor
        ):
            if isinstance(node.value, (ast.Call, ast.BinOp)):

                def add(n: ast.AST) -> ast.AST:
                    assert isinstance(n, ast.Assign)
                    n.value = _detach(n.value)
                    return n

                yield Site(index, add)
        elif isinstance(node, ast.Return) and node.value is not None and not isinstance(node.value, ast.Tuple):

            def add_return(n: ast.AST) -> ast.AST:
                assert isinstance(n, ast.Return) and n.value is not None
                n.value = _detach(n.value)
                return n

            yield Site(index, add_return)
        elif isinstance(node, ast.With) and any(isinstance(i.context_expr, ast.Call) and _name(i.context_expr) == "no_grad" for i in node.items):
            yield Site(index, lambda n: ast.If(test=ast.Constant(True), body=n.body, orelse=[]))  # type: ignore[attr-defined]

    def wrap(n: ast.AST) -> ast.AST:
        assert isinstance(n, ast.FunctionDef)
        head = [s for s in n.body[:1] if _is_docstring(s)]
        n.body = [*head, _no_grad(n.body[len(head):])]
        return n

    if not any(isinstance(n, ast.With) for _, n in _body_nodes(fn)):
        yield Site(0, wrap)


def rsample(fn: ast.FunctionDef) -> Iterator[Site]:
    """``.rsample()`` -> ``.sample()``: the draw no longer carries the gradient."""
    for index, node in _body_nodes(fn):
        if isinstance(node, ast.Call) and _name(node) == "rsample" and isinstance(node.func, ast.Attribute):

            def rewrite(n: ast.AST) -> ast.AST:
                assert isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
                n.func.attr = "sample"
                return n

            yield Site(index, rewrite)


def graph_flags(fn: ast.FunctionDef) -> Iterator[Site]:
    """``create_graph=`` / ``retain_graph=`` / ``requires_grad`` flipped, and
    ``.requires_grad_(True)`` dropped."""
    for index, node in _body_nodes(fn):
        if isinstance(node, ast.keyword) and node.arg in ("create_graph", "retain_graph") and isinstance(node.value, ast.Constant):
            yield Site(index, lambda n: ast.keyword(arg=n.arg, value=ast.Constant(not n.value.value)))  # type: ignore[attr-defined]
        elif isinstance(node, ast.Call) and _name(node) == "requires_grad_" and isinstance(node.func, ast.Attribute):
            yield Site(index, lambda n: n.func.value)  # type: ignore[attr-defined]


def _first_tensor(fn: ast.FunctionDef) -> str | None:
    defaults = len(fn.args.defaults)
    names = [a.arg for a in fn.args.args[: len(fn.args.args) - defaults] if a.arg != "self"]
    return names[0] if names else None


def draw_shape(fn: ast.FunctionDef) -> Iterator[Site]:
    """A random draw's shape changed: each size argument made 1 (one draw shared along that
    dimension), or all of them replaced by the first input's shape (one per element)."""
    first = _first_tensor(fn)
    for index, node in _body_nodes(fn):
        if not (isinstance(node, ast.Call) and _name(node) in ("rand", "randn") and node.args):
            continue
        for position, arg in enumerate(node.args):
            if isinstance(arg, ast.Constant) and arg.value == 1:
                continue
            if isinstance(arg, ast.Starred):
                continue

            def one(n: ast.AST, i: int = position) -> ast.AST:
                assert isinstance(n, ast.Call)
                n.args = [*n.args[:i], ast.Constant(1), *n.args[i + 1:]]
                return n

            yield Site(index, one)
        if first is not None:

            def per_element(n: ast.AST, name: str = first) -> ast.AST:
                assert isinstance(n, ast.Call)
                n.args = [ast.Starred(value=ast.Attribute(value=ast.Name(id=name, ctx=ast.Load()), attr="shape", ctx=ast.Load()), ctx=ast.Load())]
                return n

            yield Site(index, per_element)


def tuple_order(fn: ast.FunctionDef) -> Iterator[Site]:
    """Two neighbours of a returned tuple swapped."""
    for index, node in _body_nodes(fn):
        if isinstance(node, ast.Return) and isinstance(node.value, ast.Tuple):
            for i in range(len(node.value.elts) - 1):

                def swap(n: ast.AST, i: int = i) -> ast.AST:
                    assert isinstance(n, ast.Return) and isinstance(n.value, ast.Tuple)
                    elts = list(n.value.elts)
                    elts[i], elts[i + 1] = elts[i + 1], elts[i]
                    n.value.elts = elts
                    return n

                yield Site(index, swap)


def condition(fn: ast.FunctionDef) -> Iterator[Site]:
    """An ``if``'s test negated (``if self.stop_gradient`` -> ``if not ...``)."""
    for index, node in _body_nodes(fn):
        if isinstance(node, ast.If) and not (isinstance(node.test, ast.Constant)):
            yield Site(index, lambda n: ast.If(test=ast.UnaryOp(op=ast.Not(), operand=n.test), body=n.body, orelse=n.orelse))  # type: ignore[attr-defined]


OPERATORS: dict[str, Operator] = {
    "arithmetic": arithmetic,
    "sign": sign,
    "constant": constant,
    "sum_mean": sum_mean,
    "dim": dim,
    "unary_math": unary_math,
    "min_max": min_max,
    "swap_args": swap_args,
    "detach": detach,
    "rsample": rsample,
    "graph_flags": graph_flags,
    "draw_shape": draw_shape,
    "tuple_order": tuple_order,
    "condition": condition,
}


# ---------------------------------------------------------------- applying them


def find_function(tree: ast.Module, qualname: str) -> ast.FunctionDef:
    """``name`` at module level or ``Class.method``."""
    scope: list[ast.stmt] = tree.body
    *outer, last = qualname.split(".")
    for name in outer:
        classes = [n for n in scope if isinstance(n, ast.ClassDef) and n.name == name]
        if not classes:
            raise KeyError(f"{qualname}: no class {name!r} in the module")
        scope = classes[0].body
    found = [n for n in scope if isinstance(n, ast.FunctionDef) and n.name == last]
    if not found:
        raise KeyError(f"{qualname}: no function {last!r} in the module")
    return found[0]


def _apply(fn: ast.FunctionDef, site: Site) -> tuple[ast.FunctionDef, ast.AST, ast.AST]:
    """A mutated copy of ``fn``; also the original node and its replacement."""
    mutated = copy.deepcopy(fn)
    nodes = _nodes(mutated)
    original = _nodes(fn)[site.index]
    target = nodes[site.index]
    replacement = site.rewrite(copy.deepcopy(target))
    if target is mutated:
        return replacement, original, replacement  # type: ignore[return-value]
    parent = _parents(mutated)[id(target)]
    for field, value in ast.iter_fields(parent):
        if value is target:
            setattr(parent, field, replacement)
        elif isinstance(value, list):
            setattr(parent, field, [replacement if v is target else v for v in value])
    return mutated, original, replacement


def _one_line(node: ast.AST, limit: int = 100) -> str:
    if isinstance(node, ast.FunctionDef):
        return f"def {node.name}(...)"
    text = " ".join(ast.unparse(ast.fix_missing_locations(node)).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _splice(source: str, fn: ast.FunctionDef, mutated: ast.FunctionDef) -> str:
    """The module text with ``fn``'s lines replaced by the mutated function, indented alike."""
    lines = source.splitlines(keepends=True)
    start = (fn.decorator_list[0].lineno if fn.decorator_list else fn.lineno) - 1
    end = fn.end_lineno or fn.lineno
    indent = " " * fn.col_offset
    body = ast.unparse(ast.fix_missing_locations(mutated))
    text = "".join(f"{indent}{line}\n" if line else "\n" for line in body.splitlines())
    return "".join(lines[:start]) + text + "".join(lines[end:])


def _describe(fn: ast.FunctionDef, original: ast.AST, replacement: ast.AST, mutated: ast.FunctionDef) -> tuple[int, str, str]:
    if isinstance(original, ast.FunctionDef):  # a whole-function change: show the first changed line
        before = ast.unparse(original).splitlines()
        after = ast.unparse(ast.fix_missing_locations(mutated)).splitlines()
        for i, (a, b) in enumerate(itertools.zip_longest(before, after, fillvalue="")):
            if a != b:
                return fn.lineno + i, " ".join(a.split())[:100], " ".join(b.split())[:100]
        return fn.lineno, "", ""
    return getattr(original, "lineno", fn.lineno), _one_line(original), _one_line(replacement)


def mutants_of(source: str, qualname: str, part: str, module: str, operators: dict[str, Operator] | None = None) -> list[Mutant]:
    """Every first-order mutant of one function, one per distinct mutated function text;
    a mutant that does not parse back or changes nothing is dropped."""
    tree = ast.parse(source)
    fn = find_function(tree, qualname)
    original_text = ast.unparse(fn)
    seen = {original_text}
    found: list[Mutant] = []
    for op_name, operator in (operators or OPERATORS).items():
        for site in operator(fn):
            mutated, original, replacement = _apply(fn, site)
            try:
                text = ast.unparse(ast.fix_missing_locations(mutated))
                compile(text, "<mutant>", "exec")
            except (SyntaxError, ValueError, TypeError, AttributeError):
                continue
            if text in seen:
                continue
            seen.add(text)
            line, before, after = _describe(fn, original, replacement, mutated)
            slug = qualname.replace(".", "_")
            found.append(Mutant(f"{part}-{slug}-{op_name}-{len(found):03d}", part, module, qualname, op_name, line, before, after, _splice(source, fn, mutated)))
    return found
