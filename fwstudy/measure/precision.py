"""The precision axis' parity check: how far a reduced-precision forward (TF32, bf16 mixed)
may land from the fp32 forward of the same weights on the same batch, derived from the
formats' round-off rather than picked to pass.

Measure: the norm-relative difference of the logits, ‖y_p − y_32‖₂ / ‖y_32‖₂, each framework
against its own fp32 forward (the cross-framework fp32 agreement is the parity gate's job).

Bound. A reduced-precision stage (a matmul, a convolution, an attention product, an LSTM
step's gate matmul) rounds each of its two operands to the format (relative error ≤ u each)
and, under autocast or a mixed policy, its output too (≤ u): at most 3u of relative error per
stage, to first order, in the norm of its output. Along L dependent stages with 1-Lipschitz
activations in between (ReLU, tanh, sigmoid, max-pool, mean-pool; softmax and layer norm are
computed in fp32 by both autocast and Keras' mixed policy), these add to at most 3·L·u. The
tolerance is that worst case; round-off that adds as a random walk lands near sqrt(L)·u,
so a measured error far under it is the normal case, and a stage silently computed in the
wrong format, or a break, lands far over it (an O(1) difference).

u is the unit round-off of the format's significand: fp32 24 bits (2⁻²⁴), TF32 11 bits (its
10 stored + 1; 2⁻¹¹), bf16 8 bits (7 + 1; 2⁻⁸).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

UNIT_ROUNDOFF: dict[str, float] = {"fp32": 2.0**-24, "tf32": 2.0**-11, "bf16": 2.0**-8}
ERROR_PER_STAGE = 3  # operands (2u) and output (u), first order


def reduced_stages(workload: str, params: Mapping[str, Any]) -> int:
    """L: the longest chain of dependent reduced-precision stages in the workload's forward."""
    if workload == "mlp":
        return int(params["depth"]) + 1
    if workload == "cnn":
        return 4  # conv, conv, dense, dense
    if workload == "lstm":
        return int(params["length"]) + 1  # one gate matmul per time step, then the head
    if workload == "transformer":
        # per layer: the q/k/v projection, q·kᵀ, attention·v, the output projection, ff1, ff2
        return 6 * int(params["layers"]) + 1
    if workload == "adaptive":
        return 2 + int(params["max_steps"])  # the input dense, each fixed-point step, the head
    raise ValueError(f"no stage count for workload {workload!r}")


def tolerance(precision: str, workload: str, params: Mapping[str, Any]) -> float:
    return ERROR_PER_STAGE * reduced_stages(workload, params) * UNIT_ROUNDOFF[precision]


def compare(
    reduced: np.ndarray, reference: np.ndarray, precision: str, workload: str, params: Mapping[str, Any]
) -> dict[str, Any]:
    """The check's record: both measures, the tolerance and its derivation, the verdict."""
    reduced = np.asarray(reduced, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    norm = float(np.linalg.norm(reference)) or 1.0
    error = float(np.linalg.norm(reduced - reference)) / norm
    limit = tolerance(precision, workload, params)
    return {
        "precision": precision,
        "norm_rel_error": error,
        "max_abs_error": float(np.max(np.abs(reduced - reference))),
        "logits_max_abs": float(np.max(np.abs(reference))),
        "tolerance": limit,
        "stages": reduced_stages(workload, params),
        "unit_roundoff": UNIT_ROUNDOFF[precision],
        "rule": f"norm-relative logits error vs the same weights in fp32 <= 3·L·u "
        f"(L={reduced_stages(workload, params)}, u=2^{int(np.log2(UNIT_ROUNDOFF[precision]))})",
        "passed": bool(error <= limit),
    }
