"""Twins broken on purpose (hidden ``fwstudy parity --break``): proof that the gate can fail.

Each break is one real mistake a port or a weight transfer can make. The weight breaks edit the
weights handed to the receiving side, in NumPy, after the weight map converted them, so they work
in either direction; the model breaks edit the Keras twin (in the TensorFlow child, in both
precisions), because they change the code rather than the numbers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from fwstudy.errors import BadInput
from fwstudy.workloads.spec import WorkloadSpec

BREAKS = {
    "activation": "the first non-linear activation of the Keras twin swapped (ReLU → ELU, other → ReLU)",
    "pooling": "the first pooling layer of the Keras twin swapped (max ↔ average)",
    "bias": "the last bias lost in transfer: the receiving side keeps its own initial value",
    "transpose": "the first square 2-D weight transposed in the weights handed to the receiving side",
    "gates": "the LSTM gate blocks (i, f, g, o) put in ONNX's order (i, o, f, g) in the receiving side's weights",
}
BREAK_CHOICES = tuple(BREAKS)
MODEL_BREAKS = ("activation", "pooling")  # applied by the TensorFlow child to its Keras model

# The gate order a transfer gets wrong: reading i, f, g, o blocks as ONNX's i, o, f, c.
PERMUTED_GATES = (0, 3, 1, 2)
_TORCH_GATES = re.compile(r"\.(weight|bias)_(ih|hh)_l\d+$")


def gate_axis(name: str, framework: str) -> int | None:
    """The axis of stacked LSTM gate blocks in a weight of that layout, None for other weights:
    Keras' ``lstm_cell`` kernels and bias stack them last, PyTorch's ``*_ih_l0``/``*_hh_l0`` first."""
    if framework == "tensorflow":
        return -1 if "lstm_cell/" in name else None
    return 0 if _TORCH_GATES.search(name) else None


def square_weights(shapes: Mapping[str, tuple[int, ...]]) -> list[str]:
    return [n for n, s in shapes.items() if len(s) == 2 and s[0] == s[1] > 1]


def check_applies(name: str, spec: WorkloadSpec, params: Mapping[str, Any], receiver: str) -> None:
    """Bad input, before any child starts, for a weight break the workload has nothing to apply
    to (the model breaks are checked by the TensorFlow child, which has the model)."""
    weight_map = spec.weight_map()
    shapes = weight_map.keras_shapes(params) if receiver == "tensorflow" else weight_map.torch_shapes(params)
    if name == "transpose" and not square_weights(shapes):
        raise BadInput(f"break transpose needs a square 2-D weight; {spec.name} has none in the {receiver} layout")
    if name == "gates" and not any(gate_axis(n, receiver) is not None for n in shapes):
        raise BadInput(f"break gates needs an LSTM; {spec.name} has none")


def break_weights(name: str, weights: dict[str, np.ndarray], framework: str, seed: int = 0) -> str:
    """Apply a weight break to ``weights`` (in ``framework``'s layout) in place; returns what it
    broke, for the report."""
    if name == "bias":
        return break_bias(weights, framework, seed)
    if name == "transpose":
        return break_transpose(weights)
    if name == "gates":
        return break_gates(weights, framework)
    raise ValueError(f"{name} is not a weight break")


def break_bias(weights: dict[str, np.ndarray], framework: str, seed: int = 0) -> str:
    """A transfer that lost the last bias (the classifier's: it always reaches the logits): the
    receiving side keeps its framework's own initial value, zeros in Keras, U(±1/sqrt(fan_in))
    in PyTorch (drawn here). Merely zeroing it would change nothing with Keras as the source,
    whose biases start at zero. Returns the bias' name."""
    suffix = "/bias" if framework == "tensorflow" else ".bias"
    name = [n for n in weights if n.endswith(suffix)][-1]
    if framework == "tensorflow":
        weights[name] = np.zeros_like(weights[name])
    else:
        fan_in = int(np.prod(weights[name.removesuffix(".bias") + ".weight"].shape[1:]))
        bound = fan_in**-0.5
        gen = np.random.default_rng(seed)
        weights[name] = gen.uniform(-bound, bound, weights[name].shape).astype(weights[name].dtype)
    return name


def break_transpose(weights: dict[str, np.ndarray]) -> str:
    """Transpose the first square 2-D weight: the one layout mistake that keeps every shape, so
    only the numbers can show it."""
    name = square_weights({n: a.shape for n, a in weights.items()})[0]
    weights[name] = np.ascontiguousarray(weights[name].T)
    return name


def break_gates(weights: dict[str, np.ndarray], framework: str) -> str:
    """Reorder the gate blocks of every LSTM weight by ``PERMUTED_GATES``; returns the names."""
    names = []
    for name, array in weights.items():
        axis = gate_axis(name, framework)
        if axis is None:
            continue
        blocks = np.split(array, 4, axis=axis)
        weights[name] = np.concatenate([blocks[i] for i in PERMUTED_GATES], axis=axis)
        names.append(name)
    if not names:
        raise ValueError("no LSTM weights to reorder")
    return ", ".join(names)
