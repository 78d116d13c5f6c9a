"""Serving one artifact in a fresh process, in its own runtime: cold start, latency, drift and
accuracy (F6). Framework-free: the runtime module named by ``catalog.RUNTIME_MODULES`` does the
loading, and only it imports a runtime or a framework, so what the process holds is the
artifact's runtime alone (the record lists the frameworks it loaded, to show it).

Cold start is split where a user waits: from the parent's spawn to this code running, the
runtime's import, loading the artifact, and the first prediction (batch 1; a lazily compiled
runtime, PT2E's ``torch.compile``, compiles here). Steady state then follows the trials' rules:
the batch-1 calls timed one by one with the collector off (``timing.measure_steps`` with
``quiet``), ``latency_metrics`` for p50/p99 and the p99's interval, and the large batch timed
after its own first call (rule 2). Drift and accuracy use the held-out split saved by the
training child, against the logits the exporting framework's eager model gave on it.
"""

from __future__ import annotations

import importlib
import sys
import time
from typing import Any

import numpy as np

from fwstudy.deployment.catalog import RUNTIME_MODULES
from fwstudy.measure import timing

WATCHED = ("tensorflow", "torch", "keras", "jax")


def frameworks_loaded() -> list[str]:
    return [name for name in WATCHED if name in sys.modules]


def in_chunks(predict, x: np.ndarray, size: int) -> np.ndarray:
    """``predict`` over ``x`` in batches of at most ``size`` (an artifact's largest batch)."""
    return np.concatenate([np.asarray(predict(x[i:i + size])) for i in range(0, len(x), size)])


def serve(job: dict[str, Any]) -> dict[str, Any]:
    spawn = job["spawn_time"]
    marks: dict[str, Any] = {"child_start_s": time.time() - spawn}
    clock = time.perf_counter
    start = clock()
    module = importlib.import_module(RUNTIME_MODULES[job["runtime"]])
    module.prepare(job["runtime"])
    marks["runtime_import_s"] = clock() - start
    start = clock()
    predict = module.load(job["runtime"], job["artifact"], int(job["threads"]))
    marks["load_s"] = clock() - start
    data = np.load(job["inputs"])
    one = data["x_one"]
    start = clock()
    first = np.asarray(predict(one))
    marks["first_prediction_s"] = clock() - start
    marks["cold_start_s"] = time.time() - spawn
    marks["frameworks_loaded"] = frameworks_loaded()
    marks["output_shape"] = list(first.shape)

    def call(batch: np.ndarray):
        def step(_: int) -> float:
            np.asarray(predict(batch))
            return 0.0
        return step

    samples = timing.measure_steps(call(one), int(job["warmup"]), int(job["latency_calls"]), quiet=True)
    marks.update(timing.latency_metrics(samples.step_times_s))
    large = data["x_large"]
    bulk = timing.measure_steps(call(large), 1, int(job["throughput_calls"]))
    median = float(np.median(bulk.step_times_s))
    marks["large_batch"] = int(len(large))
    marks["batch_time_ms_median"] = median * 1e3
    marks["throughput_samples_per_s"] = len(large) / median
    logits = in_chunks(predict, data["x_test"], len(large))
    reference = np.load(job["reference"])
    marks["drift_max_abs"] = float(np.max(np.abs(logits.astype(np.float64) - reference["logits"])))
    marks["reference_max_abs"] = float(np.max(np.abs(reference["logits"])))
    marks["accuracy"] = float(np.mean(np.argmax(logits, axis=1) == data["y_test"]))
    marks["eager_accuracy"] = float(reference["accuracy"])
    marks["top1_agreement"] = float(np.mean(np.argmax(logits, axis=1) == np.argmax(reference["logits"], axis=1)))
    return marks
