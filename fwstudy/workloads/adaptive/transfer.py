"""Adaptive-depth weights: three dense layers; the block's Linear weight (out, in) is its Keras
kernel (in, out) transposed, exactly like ``encode`` and ``head`` (the block has no bias)."""

from __future__ import annotations

from fwstudy.workloads import transfer as t

DENSE = ("encode", "head")


def torch_shapes(params: t.Params) -> t.Shapes:
    d, h, c = params["input_dim"], params["hidden"], params["classes"]
    return {
        "encode.weight": (h, d),
        "encode.bias": (h,),
        "block.weight": (h, h),
        "head.weight": (c, h),
        "head.bias": (c,),
    }


def keras_shapes(params: t.Params) -> t.Shapes:
    d, h, c = params["input_dim"], params["hidden"], params["classes"]
    return {
        "encode/kernel": (d, h),
        "encode/bias": (h,),
        "block/kernel": (h, h),
        "head/kernel": (h, c),
        "head/bias": (c,),
    }


def to_keras(state: t.Arrays, params: t.Params) -> dict:
    out = {"block/kernel": t.dense_to_keras(state["block.weight"])}
    for name in DENSE:
        out[f"{name}/kernel"] = t.dense_to_keras(state[f"{name}.weight"])
        out[f"{name}/bias"] = state[f"{name}.bias"].copy()
    return out


def to_torch(weights: t.Arrays, params: t.Params) -> dict:
    out = {"block.weight": t.dense_to_torch(weights["block/kernel"])}
    for name in DENSE:
        out[f"{name}.weight"] = t.dense_to_torch(weights[f"{name}/kernel"])
        out[f"{name}.bias"] = weights[f"{name}/bias"].copy()
    return out


WEIGHTS = t.WeightMap(
    torch_shapes=torch_shapes, keras_shapes=keras_shapes, to_keras=to_keras, to_torch=to_torch
)
