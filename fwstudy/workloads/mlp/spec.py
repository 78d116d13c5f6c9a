"""Framework-neutral definition of the MLP workload."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from fwstudy.errors import BadInput
from fwstudy.measure import data
from fwstudy.workloads.spec import Layer, WorkloadSpec


def widths(params: Mapping[str, Any]) -> list[int]:
    """Input, hidden and output widths in order: the one description both twins are built from."""
    return [params["input_dim"]] + [params["hidden"]] * params["depth"] + [params["classes"]]


def layers(params: Mapping[str, Any]) -> list[Layer]:
    w = widths(params)
    return [
        Layer(f"dense{i}", w[i] * w[i + 1], input_grad=i > 0) for i in range(len(w) - 1)
    ]


def param_count(params: Mapping[str, Any]) -> int:
    w = widths(params)
    return sum(w[i] * w[i + 1] + w[i + 1] for i in range(len(w) - 1))


def shape_text(params: Mapping[str, Any]) -> str:
    return " → ".join(str(v) for v in widths(params)) + ", ReLU"


def synthetic_batch(params: Mapping[str, Any], batch_size: int, gen: np.random.Generator):
    x = gen.standard_normal((batch_size, params["input_dim"]), dtype=np.float32)
    y = gen.integers(0, params["classes"], size=(batch_size,), dtype=np.int64)
    return x, y


def dataset(params: Mapping[str, Any]) -> data.Dataset:
    """The digits, flattened to 64 features."""
    if params["input_dim"] != 64 or params["classes"] != 10:
        raise BadInput("mlp on digits needs input_dim=64 and classes=10")
    return data.digits("flat")


SPEC = WorkloadSpec(
    name="mlp",
    description="multi-layer perceptron",
    defaults={"input_dim": 784, "hidden": 512, "depth": 2, "classes": 10},
    default_batch_size=128,
    package="fwstudy.workloads.mlp",
    shape_text=shape_text,
    layers=layers,
    param_count=param_count,
    synthetic_batch=synthetic_batch,
    num_classes=lambda params: params["classes"],
    dataset=dataset,
    dataset_params={"input_dim": 64},
)
