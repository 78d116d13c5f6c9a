"""The child side of F9 and F12: ``python -m fwstudy.harness.child JOB`` with ``kind: usability``.

One job, one framework, one fresh process (rule 1): a planted bug in one mode (``debug``), the
custom-gradient twin in one mode (``custom_gradient``), or a cold start to the first training
step or first prediction at one API level (``cold_start``). The framework is imported by the
module that does the work, never here, so a cold start times the framework's own import.
Whatever goes wrong outside the planted bug is written as a failed result with its reason
(rule 9); only a crash leaves no result, and the parent records that instead.
"""

from __future__ import annotations

import importlib
import json
import os
import time
from pathlib import Path
from typing import Any

from fwstudy.errors import error_text
from fwstudy.results.atomic import atomic_write_text
from fwstudy.usability.catalog import API_LEVELS, CUSTOM_GRADIENT_MODULES, DEBUGGING_MODULES

TASKS = ("debug", "custom_gradient", "cold_start")


def rss_mb() -> float | None:
    """Resident set size of this process now (VmRSS), in MiB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def cold_start(job: dict[str, Any]) -> dict[str, Any]:
    """Seconds from the parent's spawn (``spawn_time``, wall clock) to: this code running, the
    API level's module imported (its framework with it), the workload's twin built, and the
    first training step (one batch, one epoch) or first prediction returned."""
    spawn = job["spawn_time"]
    marks = {"child_start_s": time.time() - spawn}
    begin = time.perf_counter()
    level = API_LEVELS[job["level"]]
    module = importlib.import_module(level["module"])
    marks["import_s"] = time.perf_counter() - begin
    marks["imported_s"] = time.time() - spawn
    marks["rss_after_import_mb"] = rss_mb()
    import numpy as np

    from fwstudy import frameworks
    from fwstudy.workloads import get_workload

    spec = get_workload(job["workload"])
    params = spec.resolve_params({})
    twin = importlib.import_module(f"{spec.package}.{frameworks.TWIN_MODULES[level['framework']]}")
    model = twin.build_model(params)
    marks["built_s"] = time.time() - spawn
    x, y = spec.synthetic_batch(params, spec.default_batch_size, np.random.default_rng(0))
    if job["target"] == "train":
        losses = module.train(model, x, y, epochs=1, batch_size=len(x))
        marks["first_loss"] = float(losses[0])
    else:
        out = module.predict(model, x)
        marks["output_shape"] = list(np.shape(out))
    marks["first_result_s"] = time.time() - spawn
    marks["rss_end_mb"] = rss_mb()
    return marks


def run_job(job: dict[str, Any]) -> int:
    task = job.get("task")
    try:
        if task == "debug":
            result = importlib.import_module(DEBUGGING_MODULES[job["framework"]]).run(job)
        elif task == "custom_gradient":
            result = importlib.import_module(CUSTOM_GRADIENT_MODULES[job["framework"]]).run(job)
        elif task == "cold_start":
            result = cold_start(job)
        else:
            raise ValueError(f"unknown usability task {task!r}; valid tasks: {', '.join(TASKS)}")
        result = {"status": "ok", "error": None, **result}
    except Exception as exc:  # not the planted bug (run_planted keeps that): the run failed
        result = {"status": "failed", "error": error_text(exc)}
    result["pid"] = os.getpid()
    atomic_write_text(Path(job["out"]), json.dumps(result, default=str))
    return 0
