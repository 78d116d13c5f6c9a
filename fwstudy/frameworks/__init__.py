"""The two frameworks, and the one map from a framework's name to its code.

Everything that imports TensorFlow or PyTorch lives in ``frameworks/<name>/`` (plus the
workloads' twins): ``trial`` (training, inference and retrace trials), ``gemm`` (the GEMM peak
of MFU), ``parity`` (its half of the parity gate) and ``worker`` (one data-parallel worker).
Each module there imports exactly one framework and is loaded only inside a child process
(fairness rule 1). This package itself imports no framework: the parent can ask for a
module by name without loading it.
"""

from __future__ import annotations

import importlib
from types import ModuleType

# The frameworks of the study, in the order figures list them.
NAMES: tuple[str, ...] = ("tensorflow", "torch")
# The parts every framework package implements (see frameworks/base.py for their interface).
PARTS: tuple[str, ...] = ("trial", "gemm", "parity", "worker")
# The module of a workload package that holds this framework's twin (``build_model``).
TWIN_MODULES: dict[str, str] = {"tensorflow": "tf_model", "torch": "torch_model"}


def load(framework: str, part: str) -> ModuleType:
    """``fwstudy.frameworks.<framework>.<part>``; imports that framework."""
    if framework not in NAMES or part not in PARTS:
        raise ValueError(f"no part {part!r} of framework {framework!r}")
    return importlib.import_module(f"{__name__}.{framework}.{part}")
