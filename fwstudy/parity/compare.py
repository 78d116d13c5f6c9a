"""The gate's comparison: the numbers that decide whether two twins compute the same function.

Framework-free: it compares NumPy arrays the parity children wrote, with gradients brought to
PyTorch's names and layouts by the workload's weight map. Each child computes the same batch
twice from the same weights, in float32 and in float64 (``PRECISIONS``); each precision has its
own figures and its own tolerances.

TOLERANCES_JUSTIFICATION
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from fwstudy.workloads.spec import WorkloadSpec

PRECISIONS = ("float32", "float64")

# Unit round-off (half an ulp at 1.0) of each precision.
UNIT_ROUNDOFF = {"float32": 2.0**-24, "float64": 2.0**-53}

# Each precision's limits; None is reported but not checked.
TOLERANCES: dict[str, dict[str, float | None]] = {
    "float32": {"forward_max_abs": 1e-4, "gradient_norm_rel": 5e-2, "gradient_max_rel": None},
    "float64": {"forward_max_abs": 1e-9, "gradient_norm_rel": 1e-9, "gradient_max_rel": 1e-8},
}
STEPS_TOLERANCE = 1e-3  # float32 Adam losses, relative, at every step

# A tensor whose gradient is zero in exact arithmetic has no norm of its own, only round-off: the
# attention key bias is one (softmax ignores a constant added to every score of a query). Its
# norm-relative difference is taken against at least this fraction of the global gradient norm.
GRADIENT_NORM_FLOOR = 1e-3
# The per-element figure: each element's difference over the tensor's max abs value, floored at
# this fraction of the largest gradient element of the model (the same reason).
GRADIENT_SCALE_FLOOR = 1e-3


def gradient_scale(grads: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Each gradient's own max abs value, floored at ``GRADIENT_SCALE_FLOOR`` of the largest."""
    own = {n: float(np.max(np.abs(g))) if g.size else 0.0 for n, g in grads.items()}
    floor = GRADIENT_SCALE_FLOOR * max(own.values(), default=0.0)
    return {n: max(v, floor, np.finfo(np.float32).tiny) for n, v in own.items()}


def gradient_norms(grads: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Each gradient's L2 norm, floored at ``GRADIENT_NORM_FLOOR`` of the global norm (all
    gradients as one vector): the denominator of the norm-relative difference."""
    own = {n: float(np.linalg.norm(np.asarray(g, np.float64).ravel())) for n, g in grads.items()}
    floor = GRADIENT_NORM_FLOOR * float(np.sqrt(sum(v * v for v in own.values())))
    return {n: max(v, floor, np.finfo(np.float64).tiny) for n, v in own.items()}


def gradient_figures(
    grads_pt: Mapping[str, np.ndarray], grads_tf: Mapping[str, np.ndarray]
) -> dict[str, dict[str, float]]:
    """Per tensor: ``norm_rel`` = ‖g_tf − g_pt‖₂ / ‖g_pt‖₂ (floored denominator) and
    ``rel_diff`` = max |g_tf − g_pt| / max |g_pt| (floored), with their numerators."""
    scales = gradient_scale(grads_pt)
    norms = gradient_norms(grads_pt)
    out = {}
    for name, g_pt in grads_pt.items():
        diff = np.asarray(grads_tf[name], np.float64) - np.asarray(g_pt, np.float64)
        max_abs = float(np.max(np.abs(diff))) if diff.size else 0.0
        norm = float(np.linalg.norm(diff.ravel()))
        out[name] = {
            "norm_diff": norm,
            "norm": norms[name],
            "norm_rel": norm / norms[name],
            "max_abs_diff": max_abs,
            "scale": scales[name],
            "rel_diff": max_abs / scales[name],
        }
    return out


def precision_outputs(arrays: Mapping[str, np.ndarray], dtype: str) -> dict[str, np.ndarray]:
    """One precision's ``logits``, ``loss`` and ``grad:*`` from a child's arrays (``float64:...``)."""
    return prefixed(arrays, f"{dtype}:")


def compare(
    spec: WorkloadSpec,
    params: Mapping[str, Any],
    torch_out: Mapping[str, np.ndarray],
    tf_out: Mapping[str, np.ndarray],
) -> dict[str, Any]:
    """One precision's numbers, with gradients compared in PyTorch's names and layouts."""
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
    per_weight = gradient_figures(grads_pt, grads_tf)
    return {
        "dtype": {fw: str(np.asarray(out["logits"]).dtype) for fw, out in (("torch", torch_out), ("tensorflow", tf_out))},
        "forward_max_abs_diff": float(np.max(np.abs(logits_pt - logits_tf))),
        "logits_scale": float(np.max(np.abs(logits_pt))),
        "loss_torch": float(torch_out["loss"]),
        "loss_tensorflow": float(tf_out["loss"]),
        "gradient_norm_rel_max": max(v["norm_rel"] for v in per_weight.values()),
        "gradient_norm_worst": max(per_weight, key=lambda n: per_weight[n]["norm_rel"]),
        "gradient_max_abs_diff": max(v["max_abs_diff"] for v in per_weight.values()),
        "gradient_max_rel_diff": max(v["rel_diff"] for v in per_weight.values()),
        "gradient_worst": max(per_weight, key=lambda n: per_weight[n]["rel_diff"]),
        "gradients": per_weight,
    }


def precision_checks(figures: Mapping[str, Any], dtype: str) -> dict[str, bool]:
    """The checks of one precision against ``TOLERANCES[dtype]``: ``forward_float32`` ..."""
    limits = TOLERANCES[dtype]
    figure = {
        "forward_max_abs": figures["forward_max_abs_diff"],
        "gradient_norm_rel": figures["gradient_norm_rel_max"],
        "gradient_max_rel": figures["gradient_max_rel_diff"],
    }
    names = {"forward_max_abs": "forward", "gradient_norm_rel": "gradients", "gradient_max_rel": "gradient_elements"}
    return {
        f"{names[key]}_{dtype}": bool(figure[key] <= limit)  # NaN fails
        for key, limit in limits.items()
        if limit is not None
    }


def compare_steps(torch_out: Mapping[str, np.ndarray], tf_out: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """The Adam losses (float32), relative per step; empty without steps."""
    losses_pt = np.asarray(torch_out["losses"], dtype=np.float64)
    losses_tf = np.asarray(tf_out["losses"], dtype=np.float64)
    if not losses_pt.size:
        return {}
    rel = np.abs(losses_pt - losses_tf) / np.maximum(np.abs(losses_pt), np.finfo(np.float64).tiny)
    return {
        "losses_torch": losses_pt.tolist(),
        "losses_tensorflow": losses_tf.tolist(),
        "steps_rel_diff": rel.tolist(),
        "steps_max_rel_diff": float(rel.max()),
    }


def prefixed(arrays: Mapping[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    return {n[len(prefix) :]: np.asarray(a) for n, a in arrays.items() if n.startswith(prefix)}
