"""F9a: code metrics of the paired implementations, parsed from the project's own source.

Every number here comes from reading a file with ``ast`` (and radon for cyclomatic
complexity): nothing is typed by hand and nothing imports a framework, so a changed twin
changes its metrics the next time they are read. What is measured, per workload and framework:

* ``model``: the twin (``torch_model.py`` / ``tf_model.py``), the whole module;
* ``step``: the training step at each API level (the ``STEP_PARTS`` of its module in
  ``fwstudy/frameworks/<name>/train_*.py``);
* ``script``: the full training script at each API level, the level's module plus the twin.

and for each part:

* ``lloc``: logical lines (radon's count of statements), docstrings removed first: the
  twins' docstrings explain the study, not the model, and differ in length between the twins;
* ``cc_total``/``cc_max``: McCabe cyclomatic complexity summed over, and the largest of, the
  part's functions and methods (radon ``cc_visit``);
* ``api_symbols``: the distinct framework names the code references through its imports
  (``nn.Linear`` is ``torch.nn.Linear``), and ``namespaces``, the modules they come from
  (``torch.nn``). Type annotations are left out: they are not calls the user has to get right;
* ``methods``: distinct method names called on other objects (``loss.backward()``,
  ``model.fit(...)``), whose namespace a parser cannot know without running the code. Methods
  of Python's built-in types (``list.append``), calls on ``self`` and on what a non-framework
  module returned (``np.asarray(x).sum()``) are left out.

These are the study's own twins, written by one team to match layer for layer: the figure
says so. They measure what this code needs, not what every user would write.
"""

from __future__ import annotations

import ast
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from radon.complexity import cc_visit
from radon.raw import analyze

from fwstudy import frameworks
from fwstudy.errors import BadInput
from fwstudy.usability.catalog import API_LEVELS, CUSTOM_GRADIENT_MODULES

FRAMEWORK_ROOTS = ("torch", "tensorflow", "keras", "lightning", "pytorch_lightning")
BUILTIN_METHODS = frozenset(
    name for kind in (list, dict, str, set, tuple, int, float, bytes) for name in dir(kind)
)


def module_path(module: str) -> Path:
    """The source file of a module, found without importing it (nor its framework)."""
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise BadInput(f"no module {module!r}")
    return Path(spec.origin)


def strip_docstrings(tree: ast.Module) -> ast.Module:
    """The module without its module, class and function docstrings (statements otherwise)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return tree


def imported_names(tree: ast.AST) -> tuple[dict[str, str], set[str]]:
    """Names bound by imports: framework names to their full dotted name (``nn`` ->
    ``torch.nn``), and the other imported names (``np``), whose calls are not framework calls."""
    found: dict[str, str] = {}
    other: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                root = alias.name.split(".")[0]
                bound = alias.asname or root
                if root in FRAMEWORK_ROOTS:
                    found[bound] = alias.name if alias.asname else root
                else:
                    other.add(bound)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            root = node.module.split(".")[0]
            for alias in node.names:
                bound = alias.asname or alias.name
                if root in FRAMEWORK_ROOTS:
                    found[bound] = f"{node.module}.{alias.name}"
                else:
                    other.add(bound)
    return found, other


def attribute_chain(node: ast.expr) -> list[str] | None:
    """``a.b.c`` as ``["a", "b", "c"]``; None when the chain does not start at a name."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return parts[::-1]


def receiver_root(node: ast.expr) -> str | None:
    """The name a method's receiver is built from: ``np`` for ``np.asarray(x).sum()``, ``loss``
    for ``loss.backward()`` (through attributes, calls and subscripts)."""
    while isinstance(node, ast.Attribute | ast.Call | ast.Subscript):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


class _Symbols(ast.NodeVisitor):
    """Collects framework symbols and unresolved method calls, skipping annotations."""

    def __init__(self, aliases: dict[str, str], other: set[str]):
        self.aliases, self.other = aliases, other
        self.symbols: set[str] = set()
        self.methods: set[str] = set()

    def visit_Attribute(self, node: ast.Attribute) -> None:
        chain = attribute_chain(node)
        if chain and chain[0] in self.aliases:
            self.symbols.add(".".join([self.aliases[chain[0]], *chain[1:]]))
            return  # the whole chain is one symbol
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        if node.id in self.aliases and isinstance(node.ctx, ast.Load):
            self.symbols.add(self.aliases[node.id])

    def visit_Call(self, node: ast.Call) -> None:
        if isinstance(node.func, ast.Attribute):
            root = receiver_root(node.func.value)
            if (root not in self.aliases and root not in self.other and root != "self"
                    and node.func.attr not in BUILTIN_METHODS):
                self.methods.add(node.func.attr)
        self.generic_visit(node)

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for decorator in node.decorator_list:
            self.visit(decorator)
        for default in [*node.args.defaults, *node.args.kw_defaults]:
            if default is not None:
                self.visit(default)
        for statement in node.body:
            self.visit(statement)

    visit_FunctionDef = _function
    visit_AsyncFunctionDef = _function

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self.visit(node.target)
        if node.value is not None:
            self.visit(node.value)

    def visit_Import(self, node: ast.Import) -> None:  # an import names, it does not use
        return

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        return


@dataclass
class Part:
    """The metrics of one piece of code (a module, a function or several)."""

    lloc: int = 0
    cc_total: int = 0
    cc_max: int = 0
    symbols: set[str] = field(default_factory=set)
    methods: set[str] = field(default_factory=set)

    def __add__(self, other: Part) -> Part:
        return Part(self.lloc + other.lloc, self.cc_total + other.cc_total, max(self.cc_max, other.cc_max),
                    self.symbols | other.symbols, self.methods | other.methods)

    @property
    def namespaces(self) -> set[str]:
        return {s.rsplit(".", 1)[0] if "." in s else s for s in self.symbols}


def complexity(source: str) -> tuple[int, int]:
    """Sum and max of radon's cyclomatic complexity over the functions and methods of source."""
    # radon lists a class's methods both inside the class and as blocks of their own: the class
    # block (its methods' sum) is left out so that no method counts twice.
    values = [block.complexity for block in cc_visit(source) if not hasattr(block, "methods")]
    return sum(values), max(values, default=0)


def measure_nodes(nodes: list[ast.stmt], tree: ast.Module) -> Part:
    """The metrics of some top-level statements of ``tree`` (its imports resolve the names)."""
    aliases, other = imported_names(tree)
    source = ast.unparse(ast.Module(body=nodes, type_ignores=[]))
    visitor = _Symbols(aliases, other)
    for node in nodes:
        visitor.visit(node)
    total, biggest = complexity(source)
    return Part(lloc=analyze(source).lloc, cc_total=total, cc_max=biggest,
                symbols=visitor.symbols, methods=visitor.methods)


def parse(path: Path) -> ast.Module:
    return strip_docstrings(ast.parse(Path(path).read_text(), filename=str(path)))


def measure_module(path: Path) -> Part:
    tree = parse(path)
    return measure_nodes(tree.body, tree)


def declared_parts(tree: ast.Module, name: str) -> tuple[str, ...]:
    """A module-level tuple of names (``STEP_PARTS = ("train_step",)``), read without running it."""
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return tuple(ast.literal_eval(node.value))
    raise BadInput(f"module declares no {name}")


def find_definition(tree: ast.Module, qualname: str) -> ast.stmt:
    """A top-level function or class, or ``Class.method``."""
    scope: list[ast.stmt] = tree.body
    found: ast.stmt | None = None
    for part in qualname.split("."):
        found = next((n for n in scope if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
                      and n.name == part), None)
        if found is None:
            raise BadInput(f"no definition {qualname!r}")
        scope = getattr(found, "body", [])
    assert found is not None
    return found


def measure_declared(path: Path, constant: str) -> Part:
    """The metrics of the definitions a module names in ``constant`` (its step, its layer)."""
    tree = parse(path)
    nodes = [find_definition(tree, name) for name in declared_parts(tree, constant)]
    # A method is measured as if it stood alone: dedented into a module of its own.
    return measure_nodes(nodes, tree)


def twin_path(workload: str, framework: str) -> Path:
    from fwstudy.workloads import get_workload

    return module_path(f"{get_workload(workload).package}.{frameworks.TWIN_MODULES[framework]}")


def row(workload: str, framework: str, level: str, part: str, metrics: Part, files: list[Path]) -> dict:
    return {
        "workload": workload, "framework": framework, "level": level, "part": part,
        "lloc": metrics.lloc, "cc_total": metrics.cc_total, "cc_max": metrics.cc_max,
        "api_symbols": len(metrics.symbols), "namespaces": len(metrics.namespaces),
        "methods": len(metrics.methods),
        "symbol_names": " ".join(sorted(metrics.symbols)),
        "namespace_names": " ".join(sorted(metrics.namespaces)),
        "method_names": " ".join(sorted(metrics.methods)),
        "files": " + ".join(str(p.relative_to(p.parents[3])) if len(p.parents) > 3 else str(p) for p in files),
    }


def code_metrics(workloads: list[str] | None = None) -> pd.DataFrame:
    """One row per workload × API level × part (``model``, ``step``, ``script``), plus the
    custom-gradient layer of F9c (workload ``custom_gradient``, part ``layer``)."""
    from fwstudy.workloads import WORKLOADS

    rows = []
    for workload in workloads or sorted(WORKLOADS):
        for level, info in API_LEVELS.items():
            framework = info["framework"]
            twin = twin_path(workload, framework)
            script = module_path(info["module"])
            model = measure_module(twin)
            rows.append(row(workload, framework, level, "model", model, [twin]))
            rows.append(row(workload, framework, level, "step", measure_declared(script, "STEP_PARTS"), [script]))
            rows.append(row(workload, framework, level, "script", model + measure_module(script), [twin, script]))
    for framework, module in CUSTOM_GRADIENT_MODULES.items():
        path = module_path(module)
        rows.append(row("custom_gradient", framework, "-", "layer", measure_declared(path, "LAYER_PARTS"), [path]))
    return pd.DataFrame(rows)
