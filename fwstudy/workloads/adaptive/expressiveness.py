"""What each framework's code needs to express the adaptive loop, read from the twins' source
with ``ast`` and ``tokenize`` (no framework imported): lines of code, the control-flow
constructs the loop uses, and how many callables it has to be cut into.

Lines of code count physical lines that hold a token of code: blank lines, comments and
docstrings don't count, a statement continued over three lines counts three. Run
``python -m fwstudy.workloads.adaptive.expressiveness`` for the JSON.
"""

from __future__ import annotations

import ast
import io
import json
import tokenize
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TWINS = {"torch": HERE / "torch_model.py", "tensorflow": HERE / "tf_model.py"}
VARIANTS = HERE / "tf_variants.py"

# Calls that steer or mask control flow; everything else (matmul, tanh ...) is the math both
# twins share.
CONTROL_CALLS = frozenset(
    {"while_loop", "cond", "case", "switch_case", "fori_loop", "scan", "where", "reduce_any",
     "any", "all", "reduce_all", "range", "to_graph", "function"}
)  # fmt: skip
STATEMENTS = {ast.While: "while", ast.For: "for", ast.If: "if", ast.Break: "break", ast.Continue: "continue"}
_SKIP = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
         tokenize.ENDMARKER, tokenize.ENCODING}  # fmt: skip


def _docstring_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                if isinstance(body[0].value.value, str):
                    lines.update(range(body[0].lineno, body[0].end_lineno + 1))
    return lines


def code_lines(source: str, first: int = 1, last: int | None = None) -> int:
    """Lines between ``first`` and ``last`` (inclusive) that hold code."""
    docstrings = _docstring_lines(ast.parse(source))
    lines: set[int] = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type not in _SKIP:
            lines.update(range(token.start[0], token.end[0] + 1))
    last = last if last is not None else len(source.splitlines())
    return len({n for n in lines - docstrings if first <= n <= last})


def _call_name(node: ast.Call) -> str | None:
    """``tf.while_loop`` → "tf.while_loop"; ``active.any()`` → ".any" (a tensor method)."""
    func = node.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        if isinstance(func.value, ast.Name) and func.value.id in ("tf", "torch", "keras", "np"):
            return f"{func.value.id}.{func.attr}"
        return f".{func.attr}"
    return None


def _is_loop_function(node: ast.FunctionDef) -> bool:
    for child in ast.walk(node):
        if isinstance(child, (ast.While, ast.For)):
            return True
        if isinstance(child, ast.Call) and (_call_name(child) or "").endswith("while_loop"):
            return True
    return False


def loop_metrics(source: str, function: ast.FunctionDef) -> dict[str, Any]:
    """What one loop-bearing function uses: Python statements, control-flow calls, the nested
    callables it had to define, and its lines of code."""
    statements: dict[str, int] = {}
    calls: set[str] = set()
    nested = 0
    for child in ast.walk(function):
        for kind, name in STATEMENTS.items():
            if isinstance(child, kind):
                statements[name] = statements.get(name, 0) + 1
        if isinstance(child, ast.Call):
            name = _call_name(child)
            if name and name.rsplit(".", 1)[-1] in CONTROL_CALLS:
                calls.add(name)
        if isinstance(child, (ast.FunctionDef, ast.Lambda)) and child is not function:
            nested += 1
    return {
        "function": function.name,
        "loc": code_lines(source, function.lineno, function.end_lineno),
        "python_statements": dict(sorted(statements.items())),
        "control_calls": sorted(calls),
        "nested_callables": nested,
    }


def module_metrics(path: Path) -> dict[str, Any]:
    """A twin's module: its lines of code and each loop-bearing function's metrics."""
    source = path.read_text()
    tree = ast.parse(source)
    loops = [
        loop_metrics(source, node)
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef) and _is_loop_function(node)
        and not any(_is_loop_function(inner) for inner in ast.walk(node)
                    if isinstance(inner, ast.FunctionDef) and inner is not node)
    ]  # fmt: skip
    return {"module": path.name, "loc": code_lines(source), "loops": loops}


def describe() -> dict[str, Any]:
    """Both twins and the TF variants (the variants' loops, by function)."""
    report: dict[str, Any] = {fw: module_metrics(path) for fw, path in TWINS.items()}
    report["tensorflow_variants"] = module_metrics(VARIANTS)["loops"]
    return report


if __name__ == "__main__":
    print(json.dumps(describe(), indent=2))
