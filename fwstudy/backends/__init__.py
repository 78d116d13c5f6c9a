"""Per-framework trial code. Each module imports exactly one framework and runs in a child.

Both expose ``configure(config)`` (threads, device, precision: called before any work) and
``train(config, spec) -> TrainResult``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from fwstudy.timing import StepSamples


@dataclass
class TrainResult:
    samples: StepSamples
    params: int
    framework_env: dict[str, Any] = field(default_factory=dict)


class TrialError(RuntimeError):
    """A trial that cannot run as asked (no GPU, an op a compiler rejects): a result, not a crash."""


def load_backend(framework: str) -> ModuleType:
    return importlib.import_module(f"fwstudy.backends.{framework}_backend")
