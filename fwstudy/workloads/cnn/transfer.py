"""CNN weights: OIHW ↔ HWIO convolutions, and the first dense layer's rows reordered from the
(C, H, W) flatten of PyTorch to the (H, W, C) flatten of Keras."""

from __future__ import annotations

from fwstudy.workloads import transfer as t
from fwstudy.workloads.cnn.spec import feature_sizes, flat_features


def _flat_grid(params: t.Params) -> tuple[int, int, int]:
    side = feature_sizes(params)[1]
    return params["filters2"], side, side


def torch_shapes(params: t.Params) -> t.Shapes:
    k, c, f1, f2 = params["kernel"], params["channels"], params["filters1"], params["filters2"]
    return {
        "conv1.weight": (f1, c, k, k),
        "conv1.bias": (f1,),
        "conv2.weight": (f2, f1, k, k),
        "conv2.bias": (f2,),
        "dense1.weight": (params["dense"], flat_features(params)),
        "dense1.bias": (params["dense"],),
        "dense2.weight": (params["classes"], params["dense"]),
        "dense2.bias": (params["classes"],),
    }


def keras_shapes(params: t.Params) -> t.Shapes:
    k, c, f1, f2 = params["kernel"], params["channels"], params["filters1"], params["filters2"]
    return {
        "conv1/kernel": (k, k, c, f1),
        "conv1/bias": (f1,),
        "conv2/kernel": (k, k, f1, f2),
        "conv2/bias": (f2,),
        "dense1/kernel": (flat_features(params), params["dense"]),
        "dense1/bias": (params["dense"],),
        "dense2/kernel": (params["dense"], params["classes"]),
        "dense2/bias": (params["classes"],),
    }


def to_keras(state: t.Arrays, params: t.Params) -> dict:
    return {
        "conv1/kernel": t.conv_to_keras(state["conv1.weight"]),
        "conv1/bias": state["conv1.bias"].copy(),
        "conv2/kernel": t.conv_to_keras(state["conv2.weight"]),
        "conv2/bias": state["conv2.bias"].copy(),
        "dense1/kernel": t.flat_dense_to_keras(state["dense1.weight"], *_flat_grid(params)),
        "dense1/bias": state["dense1.bias"].copy(),
        "dense2/kernel": t.dense_to_keras(state["dense2.weight"]),
        "dense2/bias": state["dense2.bias"].copy(),
    }


def to_torch(weights: t.Arrays, params: t.Params) -> dict:
    return {
        "conv1.weight": t.conv_to_torch(weights["conv1/kernel"]),
        "conv1.bias": weights["conv1/bias"].copy(),
        "conv2.weight": t.conv_to_torch(weights["conv2/kernel"]),
        "conv2.bias": weights["conv2/bias"].copy(),
        "dense1.weight": t.flat_dense_to_torch(weights["dense1/kernel"], *_flat_grid(params)),
        "dense1.bias": weights["dense1/bias"].copy(),
        "dense2.weight": t.dense_to_torch(weights["dense2/kernel"]),
        "dense2.bias": weights["dense2/bias"].copy(),
    }


WEIGHTS = t.WeightMap(
    torch_shapes=torch_shapes, keras_shapes=keras_shapes, to_keras=to_keras, to_torch=to_torch
)
