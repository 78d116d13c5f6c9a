"""The framework-neutral half of a workload: shapes, data, parameter count and analytic FLOPs.

Each workload lives in its own package with three modules side by side: ``spec`` (this
interface), ``torch_model`` and ``tf_model``. The runner and the notebooks only ever talk to
the spec and to ``build_model`` of the framework they run, so adding a workload never touches
them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from fwstudy.errors import BadInput, choices


@dataclass(frozen=True)
class Layer:
    """One GEMM-like layer for analytic FLOPs: multiply-accumulates per sample.

    ``input_grad`` says whether backward computes the gradient with respect to the layer's
    input: the first layer of a network doesn't, which is why a training step is not simply
    three forward passes.
    """

    name: str
    macs_per_sample: int
    input_grad: bool = True
    weight_grad: bool = True


@dataclass(frozen=True)
class WorkloadSpec:
    name: str
    description: str
    defaults: Mapping[str, Any]
    default_batch_size: int
    package: str
    modes: tuple[str, ...] = ("eager", "graph", "compiled", "fit")
    # Hooks that depend on the resolved params.
    shape_text: Callable[[Mapping[str, Any]], str] | None = None
    layers: Callable[[Mapping[str, Any]], list[Layer]] | None = None
    param_count: Callable[[Mapping[str, Any]], int] | None = None
    synthetic_batch: Callable[[Mapping[str, Any], int, np.random.Generator], tuple] | None = None
    num_classes: Callable[[Mapping[str, Any]], int] | None = None

    def resolve_params(self, overrides: Mapping[str, Any]) -> dict[str, Any]:
        """Defaults overlaid with overrides of the same type; unknown names are bad input."""
        params = dict(self.defaults)
        for key, value in overrides.items():
            if key not in self.defaults:
                raise BadInput(
                    f"unknown parameter {key!r} for workload {self.name}; "
                    f"valid parameters: {choices(sorted(self.defaults))}"
                )
            default = self.defaults[key]
            if isinstance(default, bool) != isinstance(value, bool) or (
                isinstance(default, int) and not isinstance(value, int)
            ):
                raise BadInput(
                    f"parameter {key!r} of workload {self.name} must be "
                    f"{type(default).__name__}, got {value!r}"
                )
            if isinstance(default, int) and not isinstance(default, bool) and value < 1:
                raise BadInput(f"parameter {key!r} of workload {self.name} must be >= 1, got {value}")
            params[key] = value
        return params

    def implementation(self, framework: str) -> ModuleType:
        """The module with ``build_model(params)`` for one framework; imports that framework."""
        module = {"torch": "torch_model", "tensorflow": "tf_model"}[framework]
        return importlib.import_module(f"{self.package}.{module}")

    def forward_flops(self, params: Mapping[str, Any], batch_size: int) -> int:
        """2 FLOPs per multiply-accumulate of the GEMM-like layers (elementwise ops ignored)."""
        return 2 * batch_size * sum(layer.macs_per_sample for layer in self.layers(params))

    def train_flops(self, params: Mapping[str, Any], batch_size: int) -> int:
        """Forward plus backward: weight gradients and, except for the first layer, input gradients."""
        macs = 0
        for layer in self.layers(params):
            macs += layer.macs_per_sample
            macs += layer.macs_per_sample * (int(layer.input_grad) + int(layer.weight_grad))
        return 2 * batch_size * macs

    def describe(self, params: Mapping[str, Any] | None = None) -> str:
        params = self.resolve_params(params or {})
        return self.shape_text(params)


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)
