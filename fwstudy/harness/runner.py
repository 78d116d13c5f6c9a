"""Parent side of a trial: launch the child, turn whatever happens into a record."""

from __future__ import annotations

import contextlib
import dataclasses
import sys
from pathlib import Path
from typing import Any

from fwstudy.config.trial import TrialConfig
from fwstudy.harness.environment import base_environment, code_version
from fwstudy.harness.forkserver import ForkServers
from fwstudy.harness.lifeline import owned_tempdir
from fwstudy.harness.peak import DEFAULT_GEMM_SIZE, machine_peak
from fwstudy.harness.process import (
    ChildOutcome,
    child_environment,
    compile_cache_variables,
    run_job,
)
from fwstudy.harness.record import make_record


def failure_record(config: TrialConfig, trial_id: str, outcome: ChildOutcome) -> dict[str, Any]:
    env = base_environment()
    env.update(device=config.device, threads=config.threads, interop_threads=config.interop_threads)
    return make_record(config, trial_id=trial_id, status=outcome.status,
                       error=outcome.error(timeout_s=config.timeout_s), metrics={}, env=env)


def add_mfu(record: dict[str, Any], gemm_size: int, python: str) -> None:
    """MFU = achieved FLOP/s / the machine's fp32 GEMM peak: the best of torch, TensorFlow and
    NumPy measured on this machine with the same threads and device (one denominator for both
    frameworks); ``mfu_own`` divides by the trial's own framework's peak. Peaks are measured
    once per environment, then cached (see fwstudy.harness.peak)."""
    metrics = record["metrics"]
    if record["status"] != "ok" or not metrics.get("achieved_gflops"):
        return
    precision = record["env"].get("precision", "fp32")
    peak = machine_peak(record["threads"], record["device"], gemm_size, python=python, precision=precision)
    record["env"]["gemm_peak"] = peak
    if peak["gemm_peak_gflops"]:
        metrics["gemm_peak_gflops"] = peak["gemm_peak_gflops"]
        metrics["mfu"] = metrics["achieved_gflops"] / peak["gemm_peak_gflops"]
    own = peak["peaks"].get(record["framework"])
    if own:
        metrics["gemm_peak_own_gflops"] = own
        metrics["mfu_own"] = metrics["achieved_gflops"] / own


def run_single(
    config: TrialConfig, trial_id: str, python: str, cache_dir: str | None = None,
    servers: ForkServers | None = None,
) -> dict[str, Any]:
    """One child process; its compile caches are fresh unless ``cache_dir`` is given. Under
    ``fork`` isolation the child is forked from a server of ``servers`` (one started for this
    trial alone when none is given: correct, but it saves no import)."""
    with owned_tempdir("trial") as tmp, contextlib.ExitStack() as stack:
        env = child_environment(config)
        env.update(compile_cache_variables(cache_dir or str(Path(tmp, "cache"))))
        if config.isolation == "fork":
            servers = servers or stack.enter_context(ForkServers(python))
            outcome, record = servers.run(config, trial_id, env=env, workdir=Path(tmp))
        else:
            job = {"kind": "trial", "config": config.to_dict(), "trial_id": trial_id}
            outcome, record = run_job(job, timeout_s=config.timeout_s, env=env, workdir=Path(tmp), python=python)
        if record is None:
            record = failure_record(config, trial_id, outcome)
    record["wall_s"] = outcome.wall_s
    return record


def run_compile_trial(config: TrialConfig, trial_id: str, python: str) -> dict[str, Any]:
    """Cold compile (fresh process, empty caches) with its full measurement, then a warm
    compile: a second fresh process whose first call finds the caches the first one filled."""
    with owned_tempdir("cache") as cache:
        record = run_single(config, trial_id, python, cache_dir=str(cache))
        if record["status"] != "ok":
            return record
        probe = dataclasses.replace(config, steps=1, warmup=0, task="train")
        warm = run_single(probe, trial_id, python, cache_dir=str(cache))
    metrics = record["metrics"]
    metrics["compile_cold_s"] = metrics["compile_s"]
    if warm["status"] == "ok":
        metrics["compile_warm_s"] = warm["metrics"]["compile_s"]
    record["env"]["compile_warm_probe"] = {"status": warm["status"], "error": warm["error"]}
    return record


def run_trial(
    config: TrialConfig,
    *,
    python: str = sys.executable,
    gemm_size: int = DEFAULT_GEMM_SIZE,
    cache_dir: str | None = None,
    servers: ForkServers | None = None,
) -> dict[str, Any]:
    """Measure one trial in fresh processes; always returns a record, never raises for a child.

    ``gemm_size`` sizes the GEMM whose measured peak MFU is relative to. ``cache_dir`` shares
    compile caches between the trials of a batch (a steady-state figure need not pay a cold
    compile per repeat); by default, and always for ``compile`` and ``retrace`` trials (whose
    point is the first-call cost), caches start empty.
    The record's env says which (variables.FWSTUDY_COMPILE_CACHE). ``servers``: the fork
    servers of a batch, for trials whose ``isolation`` is ``fork`` (``harness/forkserver.py``)."""
    trial_id = config.identity(code_version())
    if config.workers > 1:
        from fwstudy.harness.distributed import run_distributed_trial

        record = run_distributed_trial(config, trial_id, python=python)
    elif config.task == "compile":
        record = run_compile_trial(config, trial_id, python)
    else:
        # A retrace trial compares first-call costs between variants: never a warm cache.
        shared = cache_dir if config.task in ("train", "inference") else None
        record = run_single(config, trial_id, python, cache_dir=shared, servers=servers)
    add_mfu(record, gemm_size, python)
    return record
