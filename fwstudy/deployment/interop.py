"""F7, the interoperability matrix: does the "standardized format" compute the same function?

From one set of shared weights (PyTorch's seeded initialization moved to Keras by the
workload's weight map, as in the parity gate), at the workload's default shape:

* PyTorch eager and TensorFlow eager logits, each twin in its own process;
* each twin exported to ONNX by its own exporter, both files run by onnxruntime in a process
  with no framework;
* the TensorFlow twin's Keras model on ``KERAS_BACKEND=torch`` (beside the TensorFlow backend),
  each in its own process: parity and forward time.

``run_side`` is the child's half (one side per process); ``matrix`` is the parent's: pairwise
max abs differences between every pair of logits, and ``within_tolerance`` applies the parity
gate's forward tolerance (1e-4, rule 6) to each.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from fwstudy.deployment import catalog

# Rule 6's forward tolerance: the pairwise differences are judged by the parity gate's bound.
FORWARD_TOLERANCE = 1e-4


def run_side(job: dict[str, Any]) -> dict[str, Any]:
    side = job["side"]
    if side in catalog.EXPORT_MODULES:
        return importlib.import_module(catalog.EXPORT_MODULES[side]).interop(job)
    if side == "keras":
        return importlib.import_module("fwstudy.frameworks.tensorflow.keras_multibackend").run(job)
    from fwstudy.deployment import runtime_onnx, serve

    x = np.load(job["inputs"])["x"]
    result: dict[str, Any] = {}
    for name, path in job["onnx"].items():
        predict = runtime_onnx.load("onnxruntime", path, int(job["threads"]))
        result[f"{name}_logits"] = np.asarray(predict(x)).tolist()
        result[f"{name}_graph"] = runtime_onnx.graph_stats(path)
    result["frameworks_loaded"] = serve.frameworks_loaded()
    return result


def matrix(logits: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """Pairwise max abs difference (float64) between every two named logit arrays."""
    names = list(logits)
    return {a: {b: float(np.max(np.abs(np.asarray(logits[a], np.float64) - np.asarray(logits[b], np.float64))))
                for b in names} for a in names}
