"""The gate's comparison: the numbers that decide whether two twins compute the same function.

Framework-free: it compares NumPy arrays the parity children wrote, with gradients brought to
PyTorch's names and layouts by the workload's weight map. Each child computes the same batch
twice from the same weights, in float32 and in float64 (``PRECISIONS``); each precision has its
own figures and its own tolerances.

Criterion. Per precision: the logits' max abs difference, and per weight the norm-relative
gradient difference ‖g_tf − g_pt‖₂ / ‖g_pt‖₂, its denominator floored at ``GRADIENT_NORM_FLOOR``
(1e-3) of the global gradient norm: a tensor whose exact gradient is 0 (the attention key bias)
is then judged against the model's scale, and its round-off (u·‖G‖ at most) stays ~u/1e-3,
far under either tolerance. The per-element figure (max |Δ| / max |g|, the old criterion) is
reported in both precisions and checked in float64 only.

Why not per element in float32. A ReLU input within round-off of 0 can land on either side of
the kink in the two frameworks: the forward output is unchanged (the unit's output is ~0 either
way) but its derivative flips 0 ↔ 1, so one rank-1 term δ_n·x_nᵀ of a weight gradient (a sum of
N = batch × positions such terms over H units) is added to one row or not. That row's elements
move by up to ~1/sqrt(N) of the tensor's max, the tensor's norm by ~1/sqrt(N·H). Measured by
flipping the ReLU input nearest 0 in the PyTorch twins (seeds 0-4): transformer
``encoder.1.linear1.weight`` per element 1.2e-3..2.5e-2 (seed 0: |z| = 1.1e-8 and 1.0e-2, the
AMD EPYC failure), norm 1.2e-4..2.6e-3; mlp (N·H = 128·512) per element 3e-2..1.3e-1, norm
2.5e-3..9.4e-3. The chance of a flip is ~(round-off of z)/(spacing of the |z| nearest 0): in
float32 the transformer's nearest |z| are 1e-8..5e-6 against round-off ~1e-7, so flips happen
(one did here too: seed 2 from TensorFlow, norm-rel 5.7e-4, per element 3.7e-3); in float64
the round-off is 2^29 times smaller and a flip is practically impossible.

Tolerances (u = unit round-off: 6.0e-8 in float32, 1.1e-16 in float64; the summation bounds
below are Higham's, depth L ≈ 10 dependent operations, accumulation length K ≤ 2048 = the
transformer's batch 32 × length 64):

* float32 forward max abs 1e-4: the methodology's rule. A worst-case round-off bound L·K·u·|logits|
  ≈ 10·2048·6e-8·1 ≈ 1.2e-3 is never approached (errors add as a random walk: L·sqrt(K)·u
  ≈ 3e-5 is the realistic ceiling); measured ≤ 1.4e-6 (below), 70× under. A reduced-precision
  layer (TF32, bf16: u ≥ 5e-4) or any break (≥ 2.4e-2 measured) is over it.
* float32 gradient norm-relative 5e-2: above the worst single kink flip measured (9.4e-3, mlp)
  by 5× and above the random-walk round-off ceiling (~3e-5) by three orders of magnitude,
  measured ≤ 1.4e-6 without a flip. Flips add in quadrature, so ~25 in one tensor still pass.
  The real breaks measure 0.38 (activation) to 4.3 (gates), 8-90× over it; the lost bias,
  7.7e-2..9.6e-2, is also caught by the forward check (4e-2 vs 1e-4).
* float64 forward 1e-9 and gradient norm-relative 1e-9: the worst-case bound L·K·u ≈
  10·2048·1.1e-16 = 2.3e-12 is 400× under them; measured ≤ 2.2e-15 forward and ≤ 1.5e-14
  gradients, 5 orders under. A float32 rounding anywhere (u = 6e-8; one float32 constant
  in Keras' attention showed as 3e-10 forward and 4e-9 gradients, ``frameworks/tensorflow/
  parity.py``) is over them, and every break is 7 orders over.
* float64 per element 1e-8: the same bound per element (a row sees fewer terms, so it may reach
  ~sqrt(N) times the norm figure: 45·2.3e-12 ≈ 1e-10), 100× margin; measured ≤ 2.5e-14.
* Adam steps (float32) 1e-3 relative per step, as before: ten steps from the same weights let
  round-off grow through Adam's normalisation of near-zero moments.

Measured at the default shapes, seeds 0-4, both ``--source`` (10 runs per workload, max over
them; Intel Xeon, 1 thread)::

    workload     fp32 forward  fp32 grad norm  fp32 per elem  fp64 forward  fp64 grad norm  fp64 per elem
    adaptive     3.6e-07       6.5e-07         8.4e-07        1.3e-15       8.3e-16         1.0e-15
    cnn          5.5e-07       1.4e-06         1.7e-06        1.4e-15       5.4e-15         9.9e-15
    lstm         8.9e-08       1.4e-06         2.4e-06        1.7e-16       6.9e-16         1.2e-15
    mlp          1.4e-06       4.0e-07         4.8e-07        2.2e-15       7.8e-16         9.8e-16
    transformer  6.0e-07       5.7e-04 (flip)  3.7e-03 (flip) 1.2e-15       1.5e-14         2.5e-14
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
