"""F9c: a custom-gradient layer written in both frameworks, checked and costed. Framework-free.

The layer is a straight-through clamp: forward ``clamp(x, -1, 1)`` (hardtanh), backward the
incoming gradient unchanged (the straight-through estimator of quantization-aware training,
here around a continuous forward so that parity is not at the mercy of a rounding step). Plain
autodiff of the same forward gives zero gradient wherever ``|x| > 1``, so the custom gradient
is visible: the twins must agree with each other (the parity gate's float32 and float64
criteria, ``fwstudy/parity/compare.py``) *and* differ from autodiff (else a twin that silently
ignored its custom gradient would pass).

PyTorch: ``torch.autograd.Function`` (``frameworks/torch/custom_gradient.py``); TensorFlow:
``tf.custom_gradient`` (``frameworks/tensorflow/custom_gradient.py``). Both children build the
network 64 → 256 → clamp → 256 → clamp → 10 from the same seeded NumPy weights (PyTorch's
layout; TensorFlow transposes its kernels), and time it in every mode against the ``builtin``
variant (the framework's own hardtanh, autodiff gradient).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from fwstudy.parity.compare import PRECISIONS, TOLERANCES, gradient_figures

WIDTHS = (64, 256, 256, 10)
BATCH = 128
# The inputs are scaled so that a good share of the pre-activations lies outside [-1, 1],
# where the custom gradient differs from autodiff's.
INPUT_SCALE = 3.0


def reference_weights(seed: int = 0) -> dict[str, np.ndarray]:
    """The network's weights in PyTorch's layout (``denseI.weight`` is (out, in)), float64."""
    gen = np.random.default_rng(seed)
    weights = {}
    for i, (fan_in, fan_out) in enumerate(zip(WIDTHS[:-1], WIDTHS[1:], strict=True)):
        bound = 1.0 / np.sqrt(fan_in)
        weights[f"dense{i}.weight"] = gen.uniform(-bound, bound, (fan_out, fan_in))
        weights[f"dense{i}.bias"] = gen.uniform(-bound, bound, (fan_out,))
    return weights


def reference_batch(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    gen = np.random.default_rng(seed + 1)
    x = INPUT_SCALE * gen.standard_normal((BATCH, WIDTHS[0]))
    y = gen.integers(0, WIDTHS[-1], size=BATCH)
    return x, y


def load_arrays(path: str | Path) -> dict[str, np.ndarray]:
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


def grads_of(arrays: dict[str, np.ndarray], dtype: str, variant: str) -> dict[str, np.ndarray]:
    prefix = f"{dtype}:{variant}:grad:"
    return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}


def parity(torch_arrays: dict[str, np.ndarray], tf_arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """The parity gate's criteria on the custom-gradient twins, per precision, and the check that
    the custom gradient is in effect: each framework's custom gradient is farther from its own
    autodiff gradient than the float32 gradient tolerance."""
    out: dict[str, Any] = {"checks": {}}
    for dtype in PRECISIONS:
        limits = TOLERANCES[dtype]
        forward = float(np.max(np.abs(torch_arrays[f"{dtype}:logits"] - tf_arrays[f"{dtype}:logits"])))
        figures = gradient_figures(grads_of(torch_arrays, dtype, "custom"), grads_of(tf_arrays, dtype, "custom"))
        worst = max(v["norm_rel"] for v in figures.values())
        out[f"forward_max_abs_diff_{dtype}"] = forward
        out[f"gradient_norm_rel_max_{dtype}"] = worst
        out["checks"][f"forward_{dtype}"] = bool(forward <= limits["forward_max_abs"])
        out["checks"][f"gradients_{dtype}"] = bool(worst <= limits["gradient_norm_rel"])
    for name, arrays in (("torch", torch_arrays), ("tensorflow", tf_arrays)):
        apart = gradient_figures(grads_of(arrays, "float64", "builtin"), grads_of(arrays, "float64", "custom"))
        effect = max(v["norm_rel"] for v in apart.values())
        out[f"custom_vs_autodiff_norm_rel_{name}"] = effect
        out["checks"][f"custom_gradient_in_effect_{name}"] = bool(effect > TOLERANCES["float32"]["gradient_norm_rel"])
    out["passed"] = all(out["checks"].values())
    return out
