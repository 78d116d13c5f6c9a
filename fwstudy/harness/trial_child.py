"""Inside the child of one trial (job kind ``trial``): import one framework, measure, write
the record.

The record is written atomically before exit, so a parent that finds no record knows the
child died (crash, signal, timeout). Nothing here imports pandas or matplotlib: the import
footprint F2 reports is the framework's and the measuring code's alone.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from fwstudy import frameworks
from fwstudy.config.trial import TrialConfig
from fwstudy.errors import error_text
from fwstudy.harness.environment import base_environment, frameworks_loaded
from fwstudy.harness.process import thread_variables
from fwstudy.harness.record import make_record
from fwstudy.measure import collectors
from fwstudy.measure.timing import cpu_metrics, latency_metrics, summarize
from fwstudy.results.atomic import atomic_write_text


def lifetime_peak_rss_mb() -> float:
    # ru_maxrss is in KiB on Linux: the high-water mark of the whole child, imports included.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def train_metrics(config: TrialConfig, spec, result) -> tuple[dict[str, Any], dict[str, list]]:
    flops = spec.train_flops(config.workload_params, config.batch_size)
    metrics = summarize(result.samples, config.batch_size, flops)
    metrics.update(cpu_metrics(result.samples, config.threads, samples_per_step=config.batch_size))
    metrics["flops_per_step"] = flops
    samples = {"step_time_ms": [t * 1e3 for t in result.samples.step_times_s]}
    return metrics, samples


def inference_metrics(config: TrialConfig, spec, result) -> tuple[dict[str, Any], dict[str, list]]:
    """Contract metrics for an inference trial: step time = batch-1 latency (p50), throughput
    and achieved FLOP/s at the large batch, compile = both first calls (two input shapes)."""
    params = config.workload_params
    large = summarize(result.throughput, config.batch_size, spec.forward_flops(params, config.batch_size))
    metrics = latency_metrics(result.latency.step_times_s)
    metrics.update(
        step_time_ms_median=metrics["latency_ms_p50"],
        throughput_samples_per_s=large["throughput_samples_per_s"],
        batch_time_ms_median=large["step_time_ms_median"],
        achieved_gflops=large["achieved_gflops"],
        compile_s=result.latency.compile_s + result.throughput.compile_s,
        flops_per_step=spec.forward_flops(params, 1),
    )
    metrics.update(cpu_metrics(result.throughput, config.threads, samples_per_step=config.batch_size))
    if result.latency.cpu_s is not None and result.latency.step_times_s:
        metrics["latency_cpu_ms_per_call"] = result.latency.cpu_s / len(result.latency.step_times_s) * 1e3
    metrics["latency_quiet"] = int(result.latency.quiet)
    samples = {
        "latency_ms": [t * 1e3 for t in result.latency.step_times_s],
        "batch_time_ms": [t * 1e3 for t in result.throughput.step_times_s],
    }
    return metrics, samples


def retrace_metrics(config: TrialConfig, spec, result) -> tuple[dict[str, Any], dict[str, list]]:
    """The whole changing-shape sequence: its total time, the first call (the first trace),
    and how often the framework traced or compiled again."""
    times = np.asarray(result.shape_times_s)
    samples_total = sum(config.batch_sequence)
    metrics: dict[str, Any] = {
        "sequence_total_s": float(times.sum()),
        "compile_s": float(times[0]),
        "step_time_ms_median": float(np.median(times)) * 1e3,
        "throughput_samples_per_s": samples_total / float(times.sum()),
        "traces": result.traces,
        "shapes": len(times),
        "distinct_shapes": len(set(zip(config.batch_sequence, config.length_sequence or [0] * len(times), strict=True))),
        "flops_per_step": spec.train_flops(config.workload_params, config.batch_sequence[0]),
    }
    if result.graph_breaks is not None:
        metrics.update(graph_breaks=result.graph_breaks, graphs=result.graphs)
    return metrics, {"shape_time_ms": [t * 1e3 for t in result.shape_times_s]}


TASK_FUNCTIONS = {"train": "train", "compile": "train", "inference": "infer", "retrace": "retrace"}
TASK_METRICS = {
    "train": train_metrics, "compile": train_metrics, "inference": inference_metrics,
    "retrace": retrace_metrics,
}


# Heavy packages whose presence before the framework import would distort the import footprint.
WATCHED_MODULES = ("pandas", "matplotlib", "scipy", "sklearn", "torch", "tensorflow", "keras")


def modules_before_framework_import() -> list[str]:
    """The watched packages already imported when the child is about to import its framework.

    F2 reports the framework's import footprint (``import_s``, ``rss_after_import_mb``,
    ``import_peak_rss_mb``), measured around that one import; it must be the framework's alone.
    A package the harness loaded first (pandas, matplotlib) would inflate the RSS baseline, and
    one the framework shares (scipy, the other framework) would make its import look cheaper.
    The record keeps the list (``env["modules_before_framework_import"]``) so every footprint
    can be checked: pandas and matplotlib must never be in it (tests/test_layout.py,
    tests/test_trials.py).
    """
    return [name for name in WATCHED_MODULES if name in sys.modules]

# Numeric compile evidence a framework's trial reports (framework_env["compile_evidence"])
# that becomes metrics, so it lands in the tidy table (every other numeric entry comes too).
COMPILE_EVIDENCE_METRICS = ("compiles", "graphs", "graph_breaks", "xla_compilations", "traces")


def count_files(folder: str | None) -> int | None:
    """Files under the compile cache folder (None: no folder configured)."""
    if not folder:
        return None
    root = Path(folder)
    return sum(1 for p in root.rglob("*") if p.is_file()) if root.exists() else 0


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def compile_metrics(framework_env: dict[str, Any], metrics: dict[str, Any]) -> dict[str, Any]:
    """Numbers from the framework's compile evidence and compiler import time; a metric the
    task computed itself (a retrace trial's ``traces``) is kept."""
    found: dict[str, Any] = {}
    evidence = framework_env.get("compile_evidence") or {}
    for name, value in evidence.items():
        if is_number(value) and name not in metrics:
            found[name] = value
    if is_number(framework_env.get("compiler_import_s")):
        found["compiler_import_s"] = framework_env["compiler_import_s"]
    return found


def memory_metrics(sampler: collectors.RssSampler, anon_after_import: float | None) -> tuple[dict[str, float], str]:
    """F2 on anonymous memory (RssAnon): the steady-state peak (samples after the first call)
    and the compile peak (samples during a first call), both above the post-import baseline.
    A task without a first-call boundary (retrace: every new shape may compile) reports its
    whole-trial peak as the steady one, and says so."""
    if anon_after_import is None:
        return {}, "RssAnon not readable: no anonymous-memory metrics"
    metrics = {"anon_after_import_mb": anon_after_import}
    steady = sampler.anon_peak_mb(collectors.STEADY)
    compile_peak = sampler.anon_peak_mb(collectors.FIRST_CALL)
    scope = "steady: samples after the first call; compile: samples during each first call"
    if steady is None:
        steady = sampler.anon_peak_mb()
        scope = "whole trial (no first-call boundary in this task)"
    if steady is not None:
        metrics["peak_anon_above_import_mb"] = steady - anon_after_import
        metrics["peak_anon_mb"] = steady
    if compile_peak is not None:
        metrics["compile_peak_anon_above_import_mb"] = compile_peak - anon_after_import
    return metrics, "RssAnon (/proc/self/status) sampled at 20 Hz and at phase edges; " + scope


def import_framework(framework: str) -> tuple[Any, dict[str, Any]]:
    """The framework's trial module, and what its import cost this process: time and the RSS
    high-water mark so far. A fork server (``harness/forkserver.py``) measures this once and
    hands it to every trial it forks."""
    start = time.perf_counter()
    backend = frameworks.load(framework, "trial")
    return backend, {"import_s": time.perf_counter() - start, "import_peak_rss_mb": lifetime_peak_rss_mb()}


def run(config: TrialConfig, trial_id: str, preloaded: dict[str, Any] | None = None) -> dict:
    """Measure ``config`` in this process. ``preloaded``: this process was forked from a server
    that imported the framework (``import_framework``'s numbers plus ``isolation``, what the
    server says of itself, and the watched packages it had loaded before the import); the
    import numbers are the server's, stated as such in
    ``env["isolation"]``; the post-import baselines are measured here, in the trial's process."""
    # before the framework import (rule 1)
    os.environ.update(thread_variables(config.threads, config.interop_threads))
    from fwstudy.workloads import get_workload

    spec = get_workload(config.workload)
    env = base_environment()
    env.update(device=config.device, threads=config.threads, interop_threads=config.interop_threads)
    metrics: dict[str, Any] = {}
    env["modules_before_framework_import"] = (
        preloaded["modules_before_framework_import"] if preloaded else modules_before_framework_import())
    env["isolation"] = preloaded["isolation"] if preloaded else {"level": "process"}
    env["precision"] = config.precision
    if config.device == "gpu":
        from fwstudy.harness.gpu import gpu_environment

        env.update(gpu_environment())
    cache_folder = os.environ.get("FWSTUDY_COMPILE_CACHE")
    files_before = count_files(cache_folder)
    try:
        backend, imported = (frameworks.load(config.framework, "trial"), preloaded) if preloaded \
            else import_framework(config.framework)
        metrics["import_s"] = imported["import_s"]
        metrics["rss_after_import_mb"] = collectors.rss_mb()
        anon_after_import = collectors.anon_mb()
        metrics["import_peak_rss_mb"] = imported["import_peak_rss_mb"]
        reset = collectors.reset_high_water()
        with collectors.RssSampler() as sampler:
            result = getattr(backend, TASK_FUNCTIONS[config.task])(config, spec)
    except Exception as exc:  # a failing trial is a result (rule 9)
        env["frameworks_loaded"] = frameworks_loaded()
        metrics["peak_rss_mb"] = lifetime_peak_rss_mb()
        return make_record(
            config, trial_id=trial_id, status="failed", error=error_text(exc), metrics=metrics, env=env
        )
    try:
        task_metrics, samples = TASK_METRICS[config.task](config, spec, result)
        metrics.update(task_metrics)
        metrics.update(compile_metrics(result.framework_env, metrics))
        files_after = count_files(cache_folder)
        if files_before is not None:
            env["compile_cache"] = {
                "folder": cache_folder, "files_before": files_before, "files_after": files_after,
                "state": "warm" if files_before else "cold",
            }
        memory, env["peak_anon_method"] = memory_metrics(sampler, anon_after_import)
        metrics.update(memory)
        metrics["params"] = result.params
        metrics["params_analytic"] = spec.param_count(config.workload_params)
        # Peak of the trial proper: the kernel's high-water mark since the post-import reset
        # (catches spikes between samples), or the sampled curve where the reset isn't possible.
        hwm = collectors.high_water_mb() if reset else None
        trial_peak = max(hwm or 0.0, sampler.peak_mb)
        metrics["peak_rss_mb"] = max(trial_peak, metrics["import_peak_rss_mb"])
        metrics["peak_rss_above_import_mb"] = trial_peak - metrics["rss_after_import_mb"]
        metrics["rss_sampler_cpu_s"] = sampler.sampler_cpu_s
        if result.gpu_peak_mb is not None:
            metrics["gpu_peak_memory_mb"] = result.gpu_peak_mb
        check = getattr(result, "precision_check", None)
        if check is not None:
            env["precision_check"] = check
            metrics["precision_error_norm_rel"] = check["norm_rel_error"]
            metrics["precision_tolerance"] = check["tolerance"]
            metrics["precision_parity_ok"] = float(check["passed"])
        samples["rss_curve"] = sampler.curve()
        env["framework"] = result.framework_env
        env["frameworks_loaded"] = frameworks_loaded()
        env["threadpools"] = collectors.threadpool_info()
        env["cpu_frequency"] = collectors.cpu_frequency_info()
        env["peak_rss_method"] = "VmHWM after clear_refs reset" if reset else "sampled RSS curve"
    except Exception as exc:  # the steps ran; summarizing them failed: keep what is known (rule 9)
        env["frameworks_loaded"] = frameworks_loaded()
        return make_record(
            config, trial_id=trial_id, status="failed", metrics=metrics, env=env,
            error=f"summarizing the measurement failed: {error_text(exc)}",
        )
    return make_record(
        config, trial_id=trial_id, status="ok", error=None, metrics=metrics, env=env, samples=samples
    )


def run_job(job: dict[str, Any]) -> int:
    """Job keys: ``config`` (a TrialConfig as a dict), ``trial_id``, ``out``."""
    config = TrialConfig.from_dict(job["config"])
    record = run(config, job["trial_id"])
    atomic_write_text(Path(job["out"]), json.dumps(record))
    return 0 if record["status"] == "ok" else 1
