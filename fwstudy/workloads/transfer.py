"""Weight transfer between the twins, in pure NumPy, so that neither framework is needed to move
or to test it.

A workload's ``WeightMap`` names every tensor on both sides (a PyTorch ``state_dict`` key, a
Keras variable ``path``), gives their shapes, and converts a whole set of weights either way.
The building blocks below each handle one layout difference:

* Dense: Keras kernel ``(in, out)``, ``x @ K``; PyTorch Linear weight ``(out, in)``, ``x @ W.T``.
* Conv: Keras kernel HWIO on NHWC inputs; PyTorch weight OIHW on NCHW inputs.
* Flatten before the first dense layer: Keras flattens an (H, W, C) map, PyTorch a (C, H, W)
  one, so the rows of that dense kernel are permuted, not merely transposed.
* LSTM: both sides order the gates input, forget, cell, output (Keras calls the cell candidate
  ``c``, PyTorch ``g``); PyTorch adds two bias vectors (``bias_ih + bias_hh``), Keras one.
* Multi-head attention: PyTorch packs Q, K, V into ``in_proj_weight`` (3d, d) and concatenates
  the heads; Keras keeps one EinsumDense per projection with a (d, heads, head_dim) kernel and an
  output kernel (heads, head_dim, d).

Every conversion is a linear re-indexing (and the LSTM bias a sum), so the same functions also
carry *gradients* from one layout to the other; the parity gate relies on that.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Arrays = Mapping[str, np.ndarray]
Shapes = dict[str, tuple[int, ...]]
Params = Mapping[str, Any]

KERAS_LSTM_GATES = ("input", "forget", "cell", "output")  # Keras' i, f, c, o
TORCH_LSTM_GATES = ("input", "forget", "cell", "output")  # PyTorch's i, f, g, o


@dataclass(frozen=True)
class WeightMap:
    """Both sides' names and shapes of one workload's weights, and the conversions between them.

    ``torch_shapes`` covers the whole ``state_dict`` (a constant buffer included, so that
    ``load_state_dict(strict=True)`` gets everything); ``torch_buffers`` names the entries that
    are not trainable parameters, which have no gradient and no place in the parameter count.
    """

    torch_shapes: Callable[[Params], Shapes]
    keras_shapes: Callable[[Params], Shapes]
    to_keras: Callable[[Arrays, Params], dict[str, np.ndarray]]
    to_torch: Callable[[Arrays, Params], dict[str, np.ndarray]]
    torch_buffers: Callable[[Params], frozenset[str]] = field(default=lambda params: frozenset())

    def torch_param_count(self, params: Params) -> int:
        buffers = self.torch_buffers(params)
        shapes = self.torch_shapes(params)
        return sum(int(np.prod(s)) for name, s in shapes.items() if name not in buffers)

    def keras_param_count(self, params: Params) -> int:
        return sum(int(np.prod(s)) for s in self.keras_shapes(params).values())


def check_shapes(arrays: Arrays, shapes: Mapping[str, tuple[int, ...]], side: str) -> None:
    """Fail loudly on a missing, extra or misshapen tensor: a silent partial load would let a
    twin run with its own random weights and still produce plausible numbers."""
    missing = sorted(set(shapes) - set(arrays))
    extra = sorted(set(arrays) - set(shapes))
    if missing or extra:
        raise ValueError(f"{side} weights do not match: missing {missing}, unexpected {extra}")
    for name, shape in shapes.items():
        if tuple(arrays[name].shape) != tuple(shape):
            raise ValueError(
                f"{side} weight {name!r} has shape {tuple(arrays[name].shape)}, expected {tuple(shape)}"
            )


# Dense ---------------------------------------------------------------------------------------


def dense_to_keras(weight: np.ndarray) -> np.ndarray:
    """Linear weight (out, in) to Dense kernel (in, out)."""
    return np.ascontiguousarray(weight.T)


def dense_to_torch(kernel: np.ndarray) -> np.ndarray:
    """Dense kernel (in, out) to Linear weight (out, in)."""
    return np.ascontiguousarray(kernel.T)


# Convolution and the flatten that follows it --------------------------------------------------


def conv_to_keras(weight: np.ndarray) -> np.ndarray:
    """Conv2d weight OIHW to Conv2D kernel HWIO."""
    return np.ascontiguousarray(weight.transpose(2, 3, 1, 0))


def conv_to_torch(kernel: np.ndarray) -> np.ndarray:
    """Conv2D kernel HWIO to Conv2d weight OIHW."""
    return np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))


def flat_dense_to_keras(weight: np.ndarray, channels: int, height: int, width: int) -> np.ndarray:
    """Linear weight reading a flattened (C, H, W) map to a Dense kernel reading (H, W, C).

    Column ``c*H*W + h*W + w`` of the PyTorch weight multiplies the same activation as row
    ``h*W*C + w*C + c`` of the Keras kernel.
    """
    out = weight.shape[0]
    grid = weight.reshape(out, channels, height, width).transpose(2, 3, 1, 0)
    return np.ascontiguousarray(grid.reshape(height * width * channels, out))


def flat_dense_to_torch(kernel: np.ndarray, channels: int, height: int, width: int) -> np.ndarray:
    """Inverse of ``flat_dense_to_keras``."""
    out = kernel.shape[1]
    grid = kernel.reshape(height, width, channels, out).transpose(3, 2, 0, 1)
    return np.ascontiguousarray(grid.reshape(out, channels * height * width))


# LSTM -----------------------------------------------------------------------------------------


def _gate_order(source: tuple[str, ...], target: tuple[str, ...]) -> list[int]:
    return [source.index(gate) for gate in target]


def _reorder_gates(array: np.ndarray, axis: int, order: list[int]) -> np.ndarray:
    """Reorder the four equal gate blocks of ``array`` along ``axis``."""
    blocks = np.split(array, 4, axis=axis)
    return np.concatenate([blocks[i] for i in order], axis=axis)


def lstm_to_keras(
    weight_ih: np.ndarray, weight_hh: np.ndarray, bias_ih: np.ndarray, bias_hh: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PyTorch (4h, in), (4h, h), two (4h,) biases to Keras kernel (in, 4h), recurrent kernel
    (h, 4h) and one bias: the two biases only ever appear as their sum."""
    order = _gate_order(TORCH_LSTM_GATES, KERAS_LSTM_GATES)
    kernel = _reorder_gates(weight_ih, 0, order).T
    recurrent = _reorder_gates(weight_hh, 0, order).T
    bias = _reorder_gates(bias_ih + bias_hh, 0, order)
    return np.ascontiguousarray(kernel), np.ascontiguousarray(recurrent), bias


def lstm_to_torch(
    kernel: np.ndarray, recurrent: np.ndarray, bias: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Keras to PyTorch: the bias goes to ``bias_ih`` and ``bias_hh`` gets zeros."""
    order = _gate_order(KERAS_LSTM_GATES, TORCH_LSTM_GATES)
    weight_ih = _reorder_gates(np.ascontiguousarray(kernel.T), 0, order)
    weight_hh = _reorder_gates(np.ascontiguousarray(recurrent.T), 0, order)
    bias_ih = _reorder_gates(bias, 0, order)
    return weight_ih, weight_hh, bias_ih, np.zeros_like(bias_ih)


# Multi-head attention -------------------------------------------------------------------------

MHA_PROJECTIONS = ("query", "key", "value")


def mha_to_keras(
    in_proj_weight: np.ndarray,
    in_proj_bias: np.ndarray,
    out_proj_weight: np.ndarray,
    out_proj_bias: np.ndarray,
    heads: int,
) -> dict[str, np.ndarray]:
    """``nn.MultiheadAttention`` tensors to ``keras.layers.MultiHeadAttention`` variables, keyed
    by their path below the layer (``query/kernel`` ...).

    PyTorch's head ``h`` reads rows ``h*head_dim:(h+1)*head_dim`` of each projection, which is
    exactly the (heads, head_dim) split of Keras' kernels, so a transpose and a reshape suffice.
    """
    d = out_proj_weight.shape[0]
    head_dim = d // heads
    out: dict[str, np.ndarray] = {}
    weights = np.split(in_proj_weight, 3, axis=0)
    biases = np.split(in_proj_bias, 3, axis=0)
    for name, w, b in zip(MHA_PROJECTIONS, weights, biases, strict=True):
        out[f"{name}/kernel"] = np.ascontiguousarray(w.T).reshape(w.shape[1], heads, head_dim)
        out[f"{name}/bias"] = b.reshape(heads, head_dim).copy()
    out["attention_output/kernel"] = np.ascontiguousarray(out_proj_weight.T).reshape(heads, head_dim, d)
    out["attention_output/bias"] = out_proj_bias.copy()
    return out


def mha_to_torch(variables: Arrays) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Inverse of ``mha_to_keras``: (in_proj_weight, in_proj_bias, out_proj_weight, out_proj_bias)."""
    weights, biases = [], []
    for name in MHA_PROJECTIONS:
        kernel = variables[f"{name}/kernel"]
        d_in = kernel.shape[0]
        weights.append(np.ascontiguousarray(kernel.reshape(d_in, -1).T))
        biases.append(variables[f"{name}/bias"].reshape(-1))
    output = variables["attention_output/kernel"]
    d = output.shape[-1]
    out_proj_weight = np.ascontiguousarray(output.reshape(-1, d).T)
    return (
        np.concatenate(weights, axis=0),
        np.concatenate(biases, axis=0),
        out_proj_weight,
        variables["attention_output/bias"].copy(),
    )


def mha_keras_shapes(d: int, heads: int) -> Shapes:
    head_dim = d // heads
    shapes: Shapes = {}
    for name in MHA_PROJECTIONS:
        shapes[f"{name}/kernel"] = (d, heads, head_dim)
        shapes[f"{name}/bias"] = (heads, head_dim)
    shapes["attention_output/kernel"] = (heads, head_dim, d)
    shapes["attention_output/bias"] = (d,)
    return shapes
