"""F7's second kind of interoperability: one Keras model, the TensorFlow twin's, run on the
backend its process was started with (``KERAS_BACKEND=tensorflow`` or ``torch``).

This module imports Keras only, never TensorFlow or PyTorch directly: Keras loads the backend
the environment names, so a ``torch`` run holds PyTorch and not TensorFlow (the result lists
what was loaded, to show it), one framework per process (rule 1). Export on the torch backend
is left out: its LiteRT path pulls in JAX.

The weights are the shared ones, moved by the workload's weight map; the forward pass is timed
over ``steps`` calls after one untimed first call (rule 2), ``training=False``, the result
converted to NumPy inside the timed call on both backends (the host sync).
"""

from __future__ import annotations

import sys
import time
from typing import Any

import keras
import numpy as np

from fwstudy.workloads import get_workload


def run(job: dict[str, Any], keep: bool = False) -> Any:
    """The logits and forward time; with ``keep``, (that, the model) for the exporter."""
    spec = get_workload(job["workload"])
    params = spec.resolve_params({})
    backend = keras.backend.backend()
    if backend == "torch":
        import torch

        torch.set_num_threads(int(job["threads"]))
    model = spec.implementation("tensorflow").build_model(params)
    weights = spec.weight_map().to_keras(dict(np.load(job["weights"])), params)
    prefix = f"{model.name}/"
    for variable in model.weights:
        variable.assign(weights[variable.path.removeprefix(prefix)])
    x = np.load(job["inputs"])["x"]
    logits = keras.ops.convert_to_numpy(model(x, training=False))
    times = []
    for _ in range(int(job["steps"])):
        start = time.perf_counter()
        keras.ops.convert_to_numpy(model(x, training=False))
        times.append(time.perf_counter() - start)
    result = {"backend": backend, "logits": np.asarray(logits).tolist(),
            "step_time_ms_median": float(np.median(times) * 1e3), "steps": len(times),
            "frameworks_loaded": [m for m in ("tensorflow", "torch", "jax") if m in sys.modules],
            "keras_version": keras.__version__}
    return (result, model) if keep else result
