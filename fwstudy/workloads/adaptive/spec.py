"""Framework-neutral definition of the adaptive-depth workload: data-dependent control flow.

The model encodes the input (``inj = x W_in + b``, ``z0 = tanh(inj)``) and then iterates one
damped fixed-point block, per sample, until that sample has converged::

    u = rate * (tanh(z W + inj) - z)        # the update of one iteration
    z = z + u          where the sample is still active; halted samples keep their state
    a sample halts once rms(u) <= threshold, and after max_steps updates at the latest

and classifies the result (``z W_head + b``). The loop stops as soon as every sample of the
batch has halted, so its trip count depends on the data: that is the point of the workload.
A fixed-point iteration (rather than a residual block applied blindly) makes the halting
meaningful: the update shrinks geometrically as z approaches the block's equilibrium, and a
sample far from it needs more iterations.

Halting is per sample with an *active mask* (``where``), so every tensor keeps its static batch
shape: what graph compilers need, and what lets one batch carry samples at different depths.

FLOPs: with a data-dependent trip count there is no exact analytic count. ``layers`` counts
the block ``max_steps`` times, the upper bound (all iterations run whenever one sample needs
them all, and each iteration multiplies the whole batch, halted samples included); the mean
iterations actually taken is a measured result (``halting``, and ``fwstudy parity --modes``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from fwstudy.errors import BadInput
from fwstudy.measure import data
from fwstudy.workloads.spec import Layer, WorkloadSpec

# Synthetic inputs: per-sample scales drawn log-uniformly from this range. A sample's scale sets
# how far its equilibrium lies from z0, hence how many iterations it needs: without it every
# Gaussian sample would halt within one iteration of the others.
SCALE_RANGE = (0.1, 3.0)


def validate(params: Mapping[str, Any]) -> None:
    if not 0 < params["rate"] <= 1:
        raise BadInput(f"adaptive needs 0 < rate <= 1, got {params['rate']}")
    if params["threshold"] < 0:
        raise BadInput(f"adaptive needs threshold >= 0, got {params['threshold']}")


def layers(params: Mapping[str, Any]) -> list[Layer]:
    """The block at ``max_steps`` iterations: an upper bound (module docstring)."""
    d, h, c = params["input_dim"], params["hidden"], params["classes"]
    return [
        Layer("encode", d * h, input_grad=False),
        Layer("block", params["max_steps"] * h * h),
        Layer("head", h * c),
    ]


def param_count(params: Mapping[str, Any]) -> int:
    """The block has no bias of its own: ``inj`` already adds one inside the same tanh, and a
    second would be a redundant parameter that Adam moves twice as fast."""
    d, h, c = params["input_dim"], params["hidden"], params["classes"]
    return d * h + h + h * h + h * c + c


def shape_text(params: Mapping[str, Any]) -> str:
    return (
        f"{params['input_dim']} → dense {params['hidden']} → fixed-point block "
        f"(rate {params['rate']:g}) per sample until rms(update) <= {params['threshold']:g}, "
        f"at most {params['max_steps']}× → {params['classes']}"
    )


def synthetic_batch(params: Mapping[str, Any], batch_size: int, gen: np.random.Generator):
    """Gaussian features at per-sample scales (``SCALE_RANGE``): samples of different depths."""
    x = gen.standard_normal((batch_size, params["input_dim"]), dtype=np.float32)
    low, high = np.log(SCALE_RANGE[0]), np.log(SCALE_RANGE[1])
    scale = np.exp(gen.uniform(low, high, size=(batch_size, 1))).astype(np.float32)
    y = gen.integers(0, params["classes"], size=(batch_size,), dtype=np.int64)
    return x * scale, y


def dataset(params: Mapping[str, Any]) -> data.Dataset:
    """The digits, flattened to 64 features (the default input width)."""
    if params["input_dim"] != 64 or params["classes"] != 10:
        raise BadInput("adaptive on digits needs input_dim=64 and classes=10")
    return data.digits("flat")


def reference(
    weights: Mapping[str, np.ndarray], params: Mapping[str, Any], x: np.ndarray
) -> dict[str, Any]:
    """The model in float64 NumPy from PyTorch-layout weights: a third, framework-free opinion.

    Besides the logits it returns each sample's iterations and the *halting margin*, the
    smallest ``|rms(u) - threshold| / threshold`` over every decision taken. Halting is a
    discontinuous function of the inputs: two implementations (or an XLA rewrite) that round
    differently may halt a sample one iteration apart only where that margin is within round-off
    (~1e-6 in fp32); with a larger margin, the same logits imply the same decisions. The margin
    is None when no sample ever halted early (threshold 0).
    """
    x = np.asarray(x, dtype=np.float64)
    w = {n: np.asarray(a, dtype=np.float64) for n, a in weights.items()}
    inj = x @ w["encode.weight"].T + w["encode.bias"]
    z = np.tanh(inj)
    active = np.ones(len(x), dtype=bool)
    iterations = np.zeros(len(x), dtype=np.int64)
    threshold = float(params["threshold"])
    margin = np.inf
    step = 0
    while active.any() and step < params["max_steps"]:
        update = params["rate"] * (np.tanh(z @ w["block.weight"].T + inj) - z)
        z = np.where(active[:, None], z + update, z)
        iterations += active
        rms = np.sqrt(np.mean(update**2, axis=1))
        if threshold > 0:
            margin = min(margin, float(np.min(np.abs(rms[active] - threshold)) / threshold))
        active &= rms > threshold
        step += 1
    logits = z @ w["head.weight"].T + w["head.bias"]
    margin = margin if np.isfinite(margin) else None  # threshold 0: no decision was close
    return {"logits": logits, "iterations": iterations, "trip_count": step, "margin": margin}


def halting(iterations: np.ndarray, max_steps: int) -> dict[str, Any]:
    """How many samples took 1..max_steps iterations, their mean, and the loop's trip count."""
    iterations = np.asarray(iterations, dtype=np.int64).reshape(-1)
    counts = np.bincount(iterations, minlength=max_steps + 1)[1:]
    return {
        "histogram": {str(k + 1): int(n) for k, n in enumerate(counts)},
        "mean_iterations": float(iterations.mean()),
        "min_iterations": int(iterations.min()),
        "trip_count": int(iterations.max()),
        "max_steps": int(max_steps),
        "distinct_depths": int(np.count_nonzero(counts)),
    }


SPEC = WorkloadSpec(
    name="adaptive",
    description="adaptive-depth network (data-dependent control flow)",
    defaults={
        "input_dim": 64,
        "hidden": 256,
        "classes": 10,
        "max_steps": 8,
        "threshold": 0.01,
        "rate": 0.5,
    },
    default_batch_size=128,
    package="fwstudy.workloads.adaptive",
    shape_text=shape_text,
    layers=layers,
    param_count=param_count,
    synthetic_batch=synthetic_batch,
    num_classes=lambda params: params["classes"],
    validate=validate,
    dataset=dataset,
)
