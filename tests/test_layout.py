"""Guards on the layout of the library, each derived from the code rather than from a hand list:

* only ``fwstudy/frameworks/<name>/`` and the workloads' twins and probes import a framework;
* a trial child has imported neither pandas nor matplotlib when it measures its framework's
  import footprint;
* the import graph of fwstudy has no cycle;
* tests that are per-workload take their workloads from the registry, so a new workload folder
  gets its tests without a test edit.

Nothing here imports a framework: what depends on import state runs in a fresh subprocess.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

from fwstudy import frameworks
from fwstudy.workloads import WORKLOADS

PROJECT = Path(__file__).resolve().parent.parent
PACKAGE = PROJECT / "fwstudy"
TESTS = PROJECT / "tests"
FRAMEWORK_PACKAGES = ("torch", "tensorflow", "keras")
# A workload module that imports a framework is named after it: the twins of
# ``frameworks.TWIN_MODULES`` (torch_model, tf_model) and their kin (torch_probe, tf_variants...).
FRAMEWORK_MODULE = re.compile(
    "^(" + "|".join(sorted({m.split("_")[0] for m in frameworks.TWIN_MODULES.values()})) + ")_"
)


def run_python(code: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, cwd=PROJECT
    )


# --- the modules of fwstudy ---------------------------------------------------------------------


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PROJECT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_files() -> dict[str, Path]:
    """Every module of fwstudy by name (a package's ``__init__`` stands for the package)."""
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_a_framework(path: Path) -> bool:
    """By location: ``fwstudy/frameworks/<name>/...`` or a twin/probe of a workload folder."""
    rel = path.relative_to(PACKAGE).parts
    if rel[0] == "frameworks" and len(rel) > 2:
        return True
    return rel[0] == "workloads" and len(rel) == 3 and bool(FRAMEWORK_MODULE.match(path.stem))


def framework_free_modules() -> list[str]:
    # ``__main__`` runs the command line when imported; it only imports fwstudy.cli.
    return sorted(
        name
        for name, path in package_files().items()
        if path.stem != "__main__" and not imports_a_framework(path)
    )


def test_the_framework_modules_are_found_by_name():
    """Guards the discovery above: it must see the twins and the probes, and little else."""
    names = sorted(set(package_files()) - set(framework_free_modules()))
    assert "fwstudy.__main__" in names
    assert "fwstudy.frameworks.torch.trial" in names and "fwstudy.frameworks.tensorflow" in names
    for spec in WORKLOADS.values():
        for twin in frameworks.TWIN_MODULES.values():
            assert f"{spec.package}.{twin}" in names
        assert f"{spec.package}.spec" not in names and f"{spec.package}.transfer" not in names
    assert "fwstudy.frameworks" in framework_free_modules()
    assert "fwstudy.frameworks.base" in framework_free_modules()


# Prepended to a subprocess's code: records which fwstudy module first asked for a package of
# WATCH (the innermost fwstudy frame on the stack when the import began).
WITNESS = """
import importlib, json, sys

WATCH = {watch!r}
culprits = {{}}


class Witness:
    def find_spec(self, name, path=None, target=None):
        top = name.partition(".")[0]
        if top in WATCH and top not in sys.modules:
            frame = sys._getframe(1)
            while frame is not None and not frame.f_globals.get("__name__", "").startswith("fwstudy"):
                frame = frame.f_back
            where = frame.f_globals["__name__"] if frame is not None else "?"
            culprits.setdefault(where, set()).add(top)
        return None


def report(loaded):
    found = {{module: sorted(tops) for module, tops in culprits.items()}}
    print(json.dumps({{"loaded": loaded, "culprits": found}}))


sys.meta_path.insert(0, Witness())
"""

IMPORT_ALL = """
for name in {modules!r}:
    importlib.import_module(name)
report(sorted(m for m in WATCH if m in sys.modules))
"""


def witnessed(code: str, watch: tuple[str, ...]) -> tuple[list[str], str]:
    """Run ``code`` after WITNESS: the watched packages it loaded, and who imported them."""
    done = run_python(WITNESS.format(watch=watch) + code)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    culprits = ", ".join(
        f"{module} imports {' and '.join(found)}" for module, found in sorted(result["culprits"].items())
    )
    return result["loaded"], culprits or "?"


def test_no_module_outside_the_framework_packages_imports_a_framework():
    modules = framework_free_modules()
    assert len(modules) > 40  # the walk found the package
    loaded, culprits = witnessed(IMPORT_ALL.format(modules=modules), FRAMEWORK_PACKAGES)
    assert loaded == [], f"framework imported: {loaded} by {culprits}"


# --- the trial child before its framework ------------------------------------------------------

HEAVY_FOR_FOOTPRINT = ("pandas", "matplotlib")

TRIAL_CHILD_IMPORTS = """
import fwstudy.harness.child
import fwstudy.harness.trial_child
from fwstudy.workloads import WORKLOADS
for spec in WORKLOADS.values():
    importlib.import_module(spec.package + ".spec")
report(sorted(m for m in WATCH if m in sys.modules))
"""

# trial_child.run itself, up to the framework import (stubbed to stop there).
TRIAL_CHILD_RUN = """
import json
from fwstudy import frameworks
from fwstudy.config.trial import TrialConfig
from fwstudy.harness import trial_child
from fwstudy.workloads import WORKLOADS

def stop(framework, part):
    raise RuntimeError("stopped before the framework import")

frameworks.load = stop
seen = {}
for workload in sorted(WORKLOADS):
    for framework in frameworks.NAMES:
        config = TrialConfig(workload=workload, framework=framework, mode="eager", steps=1, warmup=0)
        record = trial_child.run(config, "layout-test")
        assert "stopped before the framework import" in record["error"], record["error"]
        seen[workload + "/" + framework] = record["env"]["modules_before_framework_import"]
print(json.dumps(seen))
"""


def test_a_trial_child_imports_neither_pandas_nor_matplotlib_before_its_framework():
    loaded, culprits = witnessed(TRIAL_CHILD_IMPORTS, HEAVY_FOR_FOOTPRINT)
    assert loaded == [], f"imported before the framework: {loaded} by {culprits}"


def test_a_trial_record_lists_what_was_imported_before_its_framework():
    done = run_python(TRIAL_CHILD_RUN)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(seen) == len(WORKLOADS) * len(frameworks.NAMES)
    for case, modules in seen.items():
        assert not set(modules) & {*HEAVY_FOR_FOOTPRINT, *FRAMEWORK_PACKAGES}, (case, modules)


# --- the import graph ---------------------------------------------------------------------------


def is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def import_nodes(tree: ast.AST):
    """Every import statement, in functions too; not those under ``if TYPE_CHECKING:``, which
    never run."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        if isinstance(node, ast.If) and is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def longest_module(name: str, modules: set[str]) -> str | None:
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules:
            return candidate
    return None


def imported_modules(module: str, path: Path, modules: set[str]) -> set[str]:
    """The fwstudy modules one file imports, each resolved to the longest module that exists."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in import_nodes(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base]) if base else ".".join(anchor)
            # ``from X import name``: the submodule X.name if there is one, else X itself.
            targets = [f"{base}.{alias.name}" for alias in node.names]
        for target in targets:
            resolved = longest_module(target, modules)
            if resolved is not None and resolved != module:
                found.add(resolved)
    return found


def import_graph() -> dict[str, set[str]]:
    files = package_files()
    modules = set(files)
    return {name: imported_modules(name, path, modules) for name, path in files.items()}


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative: the components with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
    return components


def one_cycle(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """A concrete cycle through the component's first module, as a path back to it."""
    members, start = set(component), component[0]
    parents: dict[str, str] = {}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for child in sorted(graph[node] & members):
            if child == start:
                path = [node]
                while path[-1] != start:
                    path.append(parents[path[-1]])
                return [*reversed(path), start]
            if child not in parents:
                parents[child] = node
                queue.append(child)
    return component


def test_the_graph_sees_imports_in_functions_and_relative_imports():
    graph = import_graph()
    assert "fwstudy.workloads" in graph["fwstudy.harness.trial_child"]  # inside run()
    assert "fwstudy.workloads.transfer" in graph["fwstudy.workloads.mlp.transfer"]
    assert "fwstudy.workloads.mlp.spec" in graph["fwstudy.workloads.mlp.transfer"]
    assert "fwstudy.measure.data" not in graph["fwstudy.workloads.spec"]  # TYPE_CHECKING only
    assert strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert one_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}, ["a", "b", "c"]) == ["a", "b", "c", "a"]


def test_the_import_graph_has_no_cycle():
    graph = import_graph()
    cycles = [" -> ".join(one_cycle(graph, c)) for c in strongly_connected(graph)]
    assert not cycles, "import cycles: " + "; ".join(cycles)


# --- per-workload tests come from the registry --------------------------------------------------

# Literals that name several workloads on purpose, not as "every workload":
# (file, the names sorted and joined by spaces) -> why.
DELIBERATE_PAIRS: dict[tuple[str, str], str] = {
    ("test_adaptive.py", "adaptive mlp"): (
        "the control-flow workload against one static reference, not a per-workload list"
    ),
}


def workload_literals(source: str, names: set[str]) -> list[tuple[int, list[str]]]:
    """List, tuple and set literals holding two or more registered workload names."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.List | ast.Tuple | ast.Set):
            held = [e.value for e in node.elts if isinstance(e, ast.Constant) and e.value in names]
            if len(set(held)) >= 2:
                found.append((node.lineno, held))
    return found


def test_the_literal_scan_finds_a_hand_list():
    names = {"alpha", "beta", "gamma"}  # stand-ins, so that this file holds no such literal
    source = (
        'import pytest\n@pytest.mark.parametrize("w", ["alpha", "beta"])\ndef test(w): ...\n'
        'CASES = [("beta", {"image": 2}), ("gamma", {"vocab": 5})]  # one workload per case\n'
        'PAIR = ("alpha", "torch")\n'
    )
    assert workload_literals(source, names) == [(2, ["alpha", "beta"])]


def test_per_workload_tests_take_their_workloads_from_the_registry():
    names = set(WORKLOADS)
    flagged = []
    for path in sorted(TESTS.glob("*.py")):
        for line, held in workload_literals(path.read_text(), names):
            if (path.name, " ".join(sorted(set(held)))) not in DELIBERATE_PAIRS:
                flagged.append(f"tests/{path.name}:{line} {held}")
    flagged.sort(key=lambda place: (place.split(":")[0], int(place.split(":")[1].split()[0])))
    assert not flagged, (
        "hand-written workload lists (derive them from fwstudy.workloads.WORKLOADS): "
        + "; ".join(flagged)
    )
