"""The gate's comparison: the numbers that decide whether two twins compute the same function.

Framework-free: it compares NumPy arrays the parity children wrote, with gradients brought to
PyTorch's names and layouts by the workload's weight map.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from fwstudy.workloads.spec import WorkloadSpec

# A gradient that is zero in exact arithmetic has no scale of its own, only round-off: the
# attention key bias is one (softmax ignores a constant added to every score of a query). Its
# scale is floored at this fraction of the model's largest gradient.
GRADIENT_SCALE_FLOOR = 1e-3


def gradient_scale(grads: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Each gradient's own max abs value, floored at ``GRADIENT_SCALE_FLOOR`` of the largest."""
    own = {n: float(np.max(np.abs(g))) if g.size else 0.0 for n, g in grads.items()}
    floor = GRADIENT_SCALE_FLOOR * max(own.values(), default=0.0)
    return {n: max(v, floor, np.finfo(np.float32).tiny) for n, v in own.items()}


def compare(
    spec: WorkloadSpec,
    params: Mapping[str, Any],
    torch_out: Mapping[str, np.ndarray],
    tf_out: Mapping[str, np.ndarray],
) -> dict[str, Any]:
    """The gate's numbers, with gradients compared in PyTorch's names and layouts."""
    weight_map = spec.weight_map()
    logits_pt = np.asarray(torch_out["logits"], dtype=np.float64)
    logits_tf = np.asarray(tf_out["logits"], dtype=np.float64)
    if logits_pt.shape != logits_tf.shape:
        raise ValueError(f"logits shapes differ: torch {logits_pt.shape}, tensorflow {logits_tf.shape}")
    grads_pt = prefixed(torch_out, "grad:")
    grads_tf = weight_map.to_torch(prefixed(tf_out, "grad:"), params)
    buffers = weight_map.torch_buffers(params)
    grads_tf = {n: g for n, g in grads_tf.items() if n not in buffers}
    if set(grads_pt) != set(grads_tf):
        raise ValueError(
            f"gradient names differ: only torch {sorted(set(grads_pt) - set(grads_tf))}, "
            f"only tensorflow {sorted(set(grads_tf) - set(grads_pt))}"
        )
    scales = gradient_scale(grads_pt)
    per_weight = {}
    for name, g_pt in grads_pt.items():
        diff = float(np.max(np.abs(g_pt.astype(np.float64) - grads_tf[name]))) if g_pt.size else 0.0
        per_weight[name] = {"max_abs_diff": diff, "scale": scales[name], "rel_diff": diff / scales[name]}
    result: dict[str, Any] = {
        "forward_max_abs_diff": float(np.max(np.abs(logits_pt - logits_tf))),
        "logits_scale": float(np.max(np.abs(logits_pt))),
        "loss_torch": float(torch_out["loss"]),
        "loss_tensorflow": float(tf_out["loss"]),
        "gradient_max_abs_diff": max(v["max_abs_diff"] for v in per_weight.values()),
        "gradient_max_rel_diff": max(v["rel_diff"] for v in per_weight.values()),
        "gradient_worst": max(per_weight, key=lambda n: per_weight[n]["rel_diff"]),
        "gradients": per_weight,
    }
    losses_pt = np.asarray(torch_out["losses"], dtype=np.float64)
    losses_tf = np.asarray(tf_out["losses"], dtype=np.float64)
    if losses_pt.size:
        rel = np.abs(losses_pt - losses_tf) / np.maximum(np.abs(losses_pt), np.finfo(np.float64).tiny)
        result.update(
            losses_torch=losses_pt.tolist(),
            losses_tensorflow=losses_tf.tolist(),
            steps_rel_diff=rel.tolist(),
            steps_max_rel_diff=float(rel.max()),
        )
    return result


def prefixed(arrays: Mapping[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    return {n[len(prefix) :]: np.asarray(a) for n, a in arrays.items() if n.startswith(prefix)}




def break_bias(weights: dict[str, np.ndarray], framework: str) -> str:
    """Zero the last bias (the classifier's: it always reaches the logits); returns its name."""
    suffix = "/bias" if framework == "tensorflow" else ".bias"
    name = [n for n in weights if n.endswith(suffix)][-1]
    weights[name] = np.zeros_like(weights[name])
    return name
