"""The results store: one raw JSON record and one tidy Parquet file per trial, under
``results/<profile>/``.

One file per trial, each written atomically the moment its trial ends, means an interrupted
batch loses nothing already measured and a rerun finds exactly what is done.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from fwstudy.results.atomic import atomic_write_bytes, atomic_write_text

# The unit of every metric a record may carry; a metric missing here is stored with unit "".
UNITS: dict[str, str] = {
    "step_time_ms_median": "ms",
    "step_time_ms_mean": "ms",
    "step_time_ms_min": "ms",
    "step_time_ms_p90": "ms",
    "step_time_ms_iqr": "ms",
    "throughput_samples_per_s": "samples/s",
    "achieved_gflops": "GFLOP/s",
    "compile_s": "s",
    "import_s": "s",
    "peak_rss_mb": "MiB",
    "rss_after_import_mb": "MiB",
    "peak_rss_above_import_mb": "MiB",
    "params": "count",
    "params_analytic": "count",
    "flops_per_step": "FLOP",
    "loss_first": "nats",
    "loss_last": "nats",
    "import_peak_rss_mb": "MiB",
    "gpu_peak_memory_mb": "MiB",
    "rss_sampler_cpu_s": "s",
    "cpu_cores_busy": "cores",
    "cpu_utilization": "fraction",
    "latency_ms_p50": "ms",
    "latency_ms_p90": "ms",
    "latency_ms_p99": "ms",
    "latency_ms_mean": "ms",
    "batch_time_ms_median": "ms",
    "gemm_peak_gflops": "GFLOP/s",
    "mfu": "fraction",
    "compile_cold_s": "s",
    "compile_warm_s": "s",
    "sequence_total_s": "s",
    "traces": "count",
    "graphs": "count",
    "graph_breaks": "count",
    "shapes": "count",
    "distinct_shapes": "count",
    "world_size": "count",
    "threads_per_worker": "count",
    "global_batch_size": "samples",
    "per_worker_batch_size": "samples",
    "dist_setup_s": "s",
    "peak_rss_sum_mb": "MiB",
    "allreduce_ms_median": "ms",
    "allreduce_isolated_ms_median": "ms",
    "allreduce_fraction": "fraction",
    # issue 10: measurement validity
    "timed_total_s": "s",
    "latency_ms_p99_ci_low": "ms",
    "latency_ms_p99_ci_high": "ms",
    "latency_ms_p99_ci_confidence": "probability",
    "latency_calls": "count",
    "latency_cpu_ms_per_call": "ms",
    "latency_quiet": "flag",
    "cpu_s_per_sample": "s/sample",
    "anon_after_import_mb": "MiB",
    "peak_anon_mb": "MiB",
    "peak_anon_above_import_mb": "MiB",
    "compile_peak_anon_above_import_mb": "MiB",
    "gemm_peak_own_gflops": "GFLOP/s",
    "mfu_own": "fraction",
    "compiles": "count",
    "xla_compilations": "count",
    "compiler_import_s": "s",
}
# Compile-cache counters (inductor fxgraph_cache_hit, AOTAutograd autograd_cache_miss, ...)
# copied from a trial's compile evidence: counts, whatever their prefix.
COUNT_SUFFIXES = ("_cache_hit", "_cache_miss", "_cache_bypass", "_cache_saved", "_cache_guard_miss")


def unit_of(metric: str) -> str:
    """The metric's unit; "" for a metric nobody has given one."""
    if metric in UNITS:
        return UNITS[metric]
    return "count" if metric.endswith(COUNT_SUFFIXES) else ""

# Trial columns repeated on every tidy row (the record's identity and settings).
TRIAL_COLUMNS = (
    "trial_id",
    "task",
    "workload",
    "framework",
    "mode",
    "device",
    "batch_size",
    "threads",
    "repeat",
    "replica",
    "status",
    "error",
)


def tidy_rows(record: dict[str, Any]) -> pd.DataFrame:
    """One row per numeric metric; a trial without metrics still gets one row (metric None)."""
    base = {column: record.get(column) for column in TRIAL_COLUMNS}
    base["task"] = record["config"].get("task", "train")
    base["replica"] = record.get("replica") or 0  # records from before replicas existed
    env = record.get("env", {})
    base.update(
        steps=record["config"]["steps"],
        warmup=record["config"]["warmup"],
        interop_threads=record["config"]["interop_threads"],
        variant=record["config"].get("variant"),
        workload_params=json.dumps(record["config"]["workload_params"], sort_keys=True),
        code_version=env.get("code_version"),
        git_commit=env.get("git_commit"),
        timestamp=env.get("timestamp"),
        cpu_model=env.get("cpu_model"),
        # The environment (fingerprint): statistics never pool records whose environments differ.
        host=env.get("hostname"),
        torch_version=env.get("torch_version"),
        tensorflow_version=env.get("tensorflow_version"),
        keras_version=env.get("keras_version"),
        numpy_version=env.get("numpy_version"),
        fingerprint=env.get("fingerprint_digest"),
        env=json.dumps(env, sort_keys=True, default=str),
    )
    rows = [
        {**base, "metric": name, "value": float(value), "unit": unit_of(name)}
        for name, value in record.get("metrics", {}).items()
        if isinstance(value, (int, float)) and not isinstance(value, bool)
    ]
    if not rows:
        rows = [{**base, "metric": None, "value": float("nan"), "unit": ""}]
    return pd.DataFrame(rows)


class ResultStore:
    """Per-profile folder of trials: ``trials/<id>.parquet`` (tidy) and ``records/<id>.json``."""

    def __init__(self, root: Path | str):
        self.root = Path(root)

    def _parquet(self, trial_id: str) -> Path:
        return self.root / "trials" / f"{trial_id}.parquet"

    def _json(self, trial_id: str) -> Path:
        return self.root / "records" / f"{trial_id}.json"

    def has(self, trial_id: str) -> bool:
        return self._parquet(trial_id).exists()

    def save(self, record: dict[str, Any]) -> None:
        trial_id = record["trial_id"]
        atomic_write_text(self._json(trial_id), json.dumps(record, indent=1, default=str))
        frame = tidy_rows(record)
        atomic_write_bytes(self._parquet(trial_id), frame.to_parquet(index=False))

    def record(self, trial_id: str) -> dict[str, Any]:
        return json.loads(self._json(trial_id).read_text())

    def table(self, trial_ids: Iterable[str] | None = None) -> pd.DataFrame:
        """The tidy long table of the given trials (all when None)."""
        if trial_ids is None:
            paths = sorted((self.root / "trials").glob("*.parquet"))
        else:
            paths = [self._parquet(t) for t in trial_ids if self.has(t)]
        if not paths:
            return pd.DataFrame(columns=[*TRIAL_COLUMNS, "metric", "value", "unit"])
        return pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True)


def failures(table: pd.DataFrame) -> pd.DataFrame:
    """One row per trial that did not succeed, with its reason."""
    columns = ["trial_id", "framework", "workload", "mode", "batch_size", "status", "error"]
    return table.loc[table["status"] != "ok", columns].drop_duplicates("trial_id")


def require_ok(table: pd.DataFrame) -> None:
    """A figure of nothing is a failed notebook, not an empty picture."""
    if not (table["status"] == "ok").any():
        reasons = "; ".join(
            f"{r.framework} {r.workload} {r.mode}: {str(r.error).splitlines()[0]}"
            for r in failures(table).itertuples()
        )
        raise RuntimeError(f"no trial succeeded ({reasons or 'no trials'})")
