"""The framework-neutral half of a workload: shapes, data, parameter count and analytic FLOPs.

Each workload lives in its own package with four modules side by side: ``spec`` (this
interface), ``transfer`` (the NumPy weight mapping between the twins), ``torch_model`` and
``tf_model``. The runner, the parity gate and the notebooks only ever talk to the spec, to its
weight map and to ``build_model`` of the framework they run, so adding a workload never touches
them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from fwstudy import frameworks
from fwstudy.errors import BadInput, choices

if TYPE_CHECKING:
    from fwstudy.measure.data import Dataset
    from fwstudy.workloads.transfer import WeightMap


@dataclass(frozen=True)
class Layer:
    """One GEMM-like layer for analytic FLOPs: multiply-accumulates per sample.

    ``input_grad`` says whether backward computes the gradient with respect to the layer's
    input: the first layer of a network doesn't, which is why a training step is not simply
    three forward passes. (A first GEMM fed by an embedding does: the embedding table needs the
    gradient of its output.)

    A product of two activations (attention's scores ``Q K^T`` and context ``A V``) has no
    weights, but backward still needs the gradient of both operands: it is written with both
    flags set, ``weight_grad`` then standing for the second operand.
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
    # Cross-parameter rules (e.g. heads must divide the width): raise BadInput.
    validate: Callable[[Mapping[str, Any]], None] | None = None
    # The real-data task (fwstudy.measure.data) and the parameter overrides its shape needs.
    dataset: Callable[[Mapping[str, Any]], Dataset] | None = None
    dataset_params: Mapping[str, Any] = field(default_factory=dict)

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
        if self.validate is not None:
            self.validate(params)
        return params

    def dataset_params_for(self, overrides: Mapping[str, Any]) -> dict[str, Any]:
        """Params that fit the workload's real-data task: its needed shape, then the overrides."""
        if self.dataset is None:
            raise BadInput(f"workload {self.name} has no real-data task")
        return self.resolve_params({**self.dataset_params, **overrides})

    def implementation(self, framework: str) -> ModuleType:
        """The module with ``build_model(params)`` for one framework; imports that framework."""
        return importlib.import_module(f"{self.package}.{frameworks.TWIN_MODULES[framework]}")

    def weight_map(self) -> WeightMap:
        """The pure-NumPy weight transfer of the package's ``transfer`` module (no framework)."""
        return importlib.import_module(f"{self.package}.transfer").WEIGHTS

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
