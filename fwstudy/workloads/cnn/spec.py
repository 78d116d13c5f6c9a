"""Framework-neutral definition of the CNN workload.

Images are channels-last (N, H, W, C) NumPy arrays, the one layout both twins receive: Keras
convolves NHWC natively and the PyTorch twin permutes to NCHW as the first step of its
``forward`` (a view, counted in its step time like any other layer).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from fwstudy.errors import BadInput
from fwstudy.measure import data
from fwstudy.workloads.spec import Layer, WorkloadSpec


def feature_sizes(params: Mapping[str, Any]) -> tuple[int, int]:
    """Side of the map after the first and after the second 2×2 max-pool (floor, both sides)."""
    return params["image"] // 2, params["image"] // 4


def flat_features(params: Mapping[str, Any]) -> int:
    """Width of the flattened map that feeds the first dense layer."""
    side = feature_sizes(params)[1]
    return side * side * params["filters2"]


def validate(params: Mapping[str, Any]) -> None:
    if params["image"] < 4:
        raise BadInput(f"cnn needs image >= 4 (two 2×2 pools), got image={params['image']}")


def layers(params: Mapping[str, Any]) -> list[Layer]:
    k2 = params["kernel"] ** 2
    side1 = feature_sizes(params)[0]
    image = params["image"]
    return [
        Layer("conv1", image * image * params["filters1"] * params["channels"] * k2, input_grad=False),
        Layer("conv2", side1 * side1 * params["filters2"] * params["filters1"] * k2),
        Layer("dense1", flat_features(params) * params["dense"]),
        Layer("dense2", params["dense"] * params["classes"]),
    ]


def param_count(params: Mapping[str, Any]) -> int:
    k2 = params["kernel"] ** 2
    f1, f2 = params["filters1"], params["filters2"]
    return (
        (k2 * params["channels"] * f1 + f1)
        + (k2 * f1 * f2 + f2)
        + (flat_features(params) * params["dense"] + params["dense"])
        + (params["dense"] * params["classes"] + params["classes"])
    )


def shape_text(params: Mapping[str, Any]) -> str:
    k = params["kernel"]
    image, channels = params["image"], params["channels"]
    return (
        f"{image}×{image}×{channels} → conv {params['filters1']} {k}×{k} same + ReLU → maxpool 2 → "
        f"conv {params['filters2']} {k}×{k} same + ReLU → maxpool 2 → "
        f"dense {params['dense']} + ReLU → {params['classes']}"
    )


def synthetic_batch(params: Mapping[str, Any], batch_size: int, gen: np.random.Generator):
    image, channels = params["image"], params["channels"]
    x = gen.standard_normal((batch_size, image, image, channels), dtype=np.float32)
    y = gen.integers(0, params["classes"], size=(batch_size,), dtype=np.int64)
    return x, y


def dataset(params: Mapping[str, Any]) -> data.Dataset:
    """The digits as 8×8×1 images."""
    if (params["image"], params["channels"], params["classes"]) != (8, 1, 10):
        raise BadInput("cnn on digits needs image=8, channels=1 and classes=10")
    return data.digits("image")


SPEC = WorkloadSpec(
    name="cnn",
    description="convolutional network",
    defaults={
        "image": 28,
        "channels": 1,
        "filters1": 32,
        "filters2": 64,
        "kernel": 3,
        "dense": 128,
        "classes": 10,
    },
    default_batch_size=64,
    package="fwstudy.workloads.cnn",
    shape_text=shape_text,
    layers=layers,
    param_count=param_count,
    synthetic_batch=synthetic_batch,
    num_classes=lambda params: params["classes"],
    validate=validate,
    dataset=dataset,
    dataset_params={"image": 8},
)
