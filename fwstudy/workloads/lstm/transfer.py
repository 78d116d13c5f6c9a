"""LSTM weights: transposed gate matrices in the same gate order, and one bias on each side
(PyTorch's ``bias_hh_l0`` is a zero buffer; a stock ``nn.LSTM``'s two biases are summed)."""

from __future__ import annotations

import numpy as np

from fwstudy.workloads import transfer as t

BIAS_BUFFER = "lstm.bias_hh_l0"


def torch_shapes(params: t.Params) -> t.Shapes:
    e, h, c = params["embed"], params["hidden"], params["classes"]
    return {
        "embed.weight": (params["vocab"], e),
        "lstm.weight_ih_l0": (4 * h, e),
        "lstm.weight_hh_l0": (4 * h, h),
        "lstm.bias_ih_l0": (4 * h,),
        BIAS_BUFFER: (4 * h,),
        "head.weight": (c, h),
        "head.bias": (c,),
    }


def keras_shapes(params: t.Params) -> t.Shapes:
    e, h, c = params["embed"], params["hidden"], params["classes"]
    return {
        "embed/embeddings": (params["vocab"], e),
        "lstm/lstm_cell/kernel": (e, 4 * h),
        "lstm/lstm_cell/recurrent_kernel": (h, 4 * h),
        "lstm/lstm_cell/bias": (4 * h,),
        "head/kernel": (h, c),
        "head/bias": (c,),
    }


def to_keras(state: t.Arrays, params: t.Params) -> dict:
    bias_hh = state.get(BIAS_BUFFER, np.zeros_like(state["lstm.bias_ih_l0"]))
    kernel, recurrent, bias = t.lstm_to_keras(
        state["lstm.weight_ih_l0"], state["lstm.weight_hh_l0"], state["lstm.bias_ih_l0"], bias_hh
    )
    return {
        "embed/embeddings": state["embed.weight"].copy(),
        "lstm/lstm_cell/kernel": kernel,
        "lstm/lstm_cell/recurrent_kernel": recurrent,
        "lstm/lstm_cell/bias": bias,
        "head/kernel": t.dense_to_keras(state["head.weight"]),
        "head/bias": state["head.bias"].copy(),
    }


def to_torch(weights: t.Arrays, params: t.Params) -> dict:
    w_ih, w_hh, b_ih, b_hh = t.lstm_to_torch(
        weights["lstm/lstm_cell/kernel"],
        weights["lstm/lstm_cell/recurrent_kernel"],
        weights["lstm/lstm_cell/bias"],
    )
    return {
        "embed.weight": weights["embed/embeddings"].copy(),
        "lstm.weight_ih_l0": w_ih,
        "lstm.weight_hh_l0": w_hh,
        "lstm.bias_ih_l0": b_ih,
        BIAS_BUFFER: b_hh,
        "head.weight": t.dense_to_torch(weights["head/kernel"]),
        "head.bias": weights["head/bias"].copy(),
    }


WEIGHTS = t.WeightMap(
    torch_shapes=torch_shapes,
    keras_shapes=keras_shapes,
    to_keras=to_keras,
    to_torch=to_torch,
    torch_buffers=lambda params: frozenset({BIAS_BUFFER}),
)
