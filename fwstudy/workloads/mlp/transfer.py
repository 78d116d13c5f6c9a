"""MLP weights: each Linear ``denseI.weight`` (out, in) is Dense ``denseI/kernel`` (in, out)."""

from __future__ import annotations

from fwstudy.workloads import transfer as t
from fwstudy.workloads.mlp.spec import widths


def torch_shapes(params: t.Params) -> t.Shapes:
    w = widths(params)
    shapes: t.Shapes = {}
    for i in range(len(w) - 1):
        shapes[f"dense{i}.weight"] = (w[i + 1], w[i])
        shapes[f"dense{i}.bias"] = (w[i + 1],)
    return shapes


def keras_shapes(params: t.Params) -> t.Shapes:
    w = widths(params)
    shapes: t.Shapes = {}
    for i in range(len(w) - 1):
        shapes[f"dense{i}/kernel"] = (w[i], w[i + 1])
        shapes[f"dense{i}/bias"] = (w[i + 1],)
    return shapes


def to_keras(state: t.Arrays, params: t.Params) -> dict:
    out = {}
    for i in range(len(widths(params)) - 1):
        out[f"dense{i}/kernel"] = t.dense_to_keras(state[f"dense{i}.weight"])
        out[f"dense{i}/bias"] = state[f"dense{i}.bias"].copy()
    return out


def to_torch(weights: t.Arrays, params: t.Params) -> dict:
    out = {}
    for i in range(len(widths(params)) - 1):
        out[f"dense{i}.weight"] = t.dense_to_torch(weights[f"dense{i}/kernel"])
        out[f"dense{i}.bias"] = weights[f"dense{i}/bias"].copy()
    return out


WEIGHTS = t.WeightMap(
    torch_shapes=torch_shapes, keras_shapes=keras_shapes, to_keras=to_keras, to_torch=to_torch
)
