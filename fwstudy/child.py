"""Entry point of the child process that runs one trial and imports one framework.

The parent passes a config file and a path for the record; the record is written atomically
before exit, so a parent that finds no record knows the child died (crash, signal, timeout).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
import traceback
from pathlib import Path

from fwstudy.config import TrialConfig
from fwstudy.environment import base_environment, frameworks_loaded
from fwstudy.record import make_record
from fwstudy.results import atomic_write_text
from fwstudy.threads import thread_variables


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def peak_rss_mb() -> float:
    # ru_maxrss is in KiB on Linux: the high-water mark of the whole child, imports included.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def error_text(exc: BaseException) -> str:
    """The exception and where it came from, on a few lines: enough to act on in a table."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    message = str(exc).strip().splitlines()
    head = message[0] if message else ""
    return f"{type(exc).__name__}: {head}{where}"


def run(config: TrialConfig, trial_id: str) -> dict:
    os.environ.update(thread_variables(config))  # before the framework import (rule 1)
    from fwstudy.backends import load_backend
    from fwstudy.workloads import get_workload

    spec = get_workload(config.workload)
    env = base_environment()
    env.update(device=config.device, threads=config.threads, interop_threads=config.interop_threads)
    metrics: dict = {}
    try:
        start = time.perf_counter()
        backend = load_backend(config.framework)
        metrics["import_s"] = time.perf_counter() - start
        metrics["rss_after_import_mb"] = rss_mb()
        result = backend.train(config, spec)
    except Exception as exc:  # a failing trial is a result (rule 9)
        env["frameworks_loaded"] = frameworks_loaded()
        metrics["peak_rss_mb"] = peak_rss_mb()
        return make_record(
            config, trial_id=trial_id, status="failed", error=error_text(exc), metrics=metrics, env=env
        )
    from fwstudy.timing import summarize

    flops = spec.train_flops(config.workload_params, config.batch_size)
    metrics.update(summarize(result.samples, config.batch_size, flops))
    metrics["params"] = result.params
    metrics["params_analytic"] = spec.param_count(config.workload_params)
    metrics["flops_per_step"] = flops
    metrics["peak_rss_mb"] = peak_rss_mb()
    metrics["peak_rss_above_import_mb"] = metrics["peak_rss_mb"] - metrics["rss_after_import_mb"]
    env["framework"] = result.framework_env
    env["frameworks_loaded"] = frameworks_loaded()
    samples = {"step_time_ms": [t * 1e3 for t in result.samples.step_times_s]}
    return make_record(
        config, trial_id=trial_id, status="ok", error=None, metrics=metrics, env=env, samples=samples
    )


def main(argv: list[str]) -> int:
    config_path, trial_id, out_path = argv
    config = TrialConfig.from_dict(json.loads(Path(config_path).read_text()))
    record = run(config, trial_id)
    atomic_write_text(Path(out_path), json.dumps(record))
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter teardown: framework thread pools can take seconds (or hang) to unwind,
    # and the record is already safe on disk.
    os._exit(0 if record["status"] == "ok" else 1)
