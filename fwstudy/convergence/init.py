"""The matched arm's initial weights: drawn in NumPy from the seed, in PyTorch's layout, then
moved into each twin by the workload's weight map (the parity transfer).

Neither framework's own initializer is used, so neither side is favoured and the two children
need no order between them (each draws the same arrays from the seed). The rule is the
common fan-in one: every weight tensor uniform on +-1/sqrt(fan_in), fan_in being the product
of all but its first axis (PyTorch's layout puts the output first); biases zero; 1-D weights
(layer-norm scales) one; buffers (the LSTM's second bias, a constant) zero.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def matched_weights(workload: str, params: dict[str, Any], seed: int) -> dict[str, np.ndarray]:
    """Initial weights of ``workload`` in PyTorch's ``state_dict`` layout, float32, from ``seed``."""
    from fwstudy.workloads import get_workload

    weights = get_workload(workload).weight_map()
    shapes = weights.torch_shapes(params)
    buffers = weights.torch_buffers(params)
    gen = np.random.default_rng([seed, 13])
    out: dict[str, np.ndarray] = {}
    for name, shape in shapes.items():  # the map's order: the same draws on every call
        if name in buffers or (len(shape) == 1 and not name.endswith("weight")):
            out[name] = np.zeros(shape, dtype=np.float32)
        elif len(shape) == 1:
            out[name] = np.ones(shape, dtype=np.float32)
        else:
            bound = 1.0 / np.sqrt(int(np.prod(shape[1:])))
            out[name] = gen.uniform(-bound, bound, size=shape).astype(np.float32)
    return out
