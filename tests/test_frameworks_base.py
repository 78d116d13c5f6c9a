"""Every framework package implements every part of ``frameworks/base.py``: the twins' harness
code stays twins. Read from the source with ``ast``, so no framework is imported here."""

from __future__ import annotations

import ast
import inspect

import pytest

from fwstudy import frameworks
from fwstudy.frameworks.base import PROTOCOLS
from tests.conftest import PROJECT


def protocol_functions(protocol: type) -> set[str]:
    return {name for name, value in vars(protocol).items() if inspect.isfunction(value) and not name.startswith("_")}


def module_functions(framework: str, part: str) -> set[str]:
    source = (PROJECT / "fwstudy" / "frameworks" / framework / f"{part}.py").read_text()
    return {node.name for node in ast.parse(source).body if isinstance(node, ast.FunctionDef)}


def test_every_part_has_a_protocol():
    assert set(PROTOCOLS) == set(frameworks.PARTS)


@pytest.mark.parametrize("framework", frameworks.NAMES)
@pytest.mark.parametrize("part", frameworks.PARTS)
def test_framework_implements_part(framework, part):
    missing = protocol_functions(PROTOCOLS[part]) - module_functions(framework, part)
    assert not missing, f"frameworks/{framework}/{part}.py lacks {sorted(missing)}"


def test_load_refuses_unknown_names_without_importing():
    with pytest.raises(ValueError, match="no part"):
        frameworks.load("jax", "trial")
    with pytest.raises(ValueError, match="no part"):
        frameworks.load("torch", "nope")
