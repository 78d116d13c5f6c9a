"""F5 · inference and deployment (paper section I): batch-1 latency percentiles and
large-batch throughput, in every mode of each framework."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from fwstudy.config.profile import Profile
from fwstudy.config.trial import TrialConfig
from fwstudy.figures import trials
from fwstudy.figures.common import metric, per_workload_figure
from fwstudy.results import stats

NAME = "inference"
METRICS = ("latency_ms_p50", "latency_ms_p90", "latency_ms_p99", "throughput_samples_per_s")
P99_INTERVAL = ("latency_ms_p99_ci_low", "latency_ms_p99_ci_high", "latency_ms_p99_ci_confidence", "latency_calls")


def configs(profile: Profile) -> list[TrialConfig]:
    """F5: batch-1 latency over ``latency_calls`` calls and throughput at the large batch."""
    threads = trials.threads_of(profile)
    grid = trials.narrowed(profile, workloads=profile.inference_workloads or profile.workloads)
    return [
        TrialConfig(
            workload=workload, framework=framework, mode=mode, task="inference",
            batch_size=profile.inference_batch_size, latency_calls=profile.latency_calls,
            steps=profile.steps, warmup=profile.warmup, threads=threads, device=profile.device,
            repeat=repeat, replica=replica, timeout_s=profile.trial_timeout_s,
        )
        for repeat, workload, mode, framework, replica in trials.grid(grid)
    ]



def analyse(table: pd.DataFrame, confidence: float = 0.95) -> dict[str, pd.DataFrame]:
    """Each latency percentile and the throughput per configuration, and the TF/PT ratio of p50."""
    out = {name: stats.summarize_configurations(table, metric=name, confidence=confidence) for name in METRICS}
    out["comparison_p50"] = stats.compare_frameworks(table, metric="latency_ms_p50", confidence=confidence)
    out["p99_per_trial"] = p99_intervals(table)
    return out


def p99_intervals(table: pd.DataFrame) -> pd.DataFrame:
    """Each trial's measured p99 with its order-statistic interval, the confidence it reaches
    and the number of calls it rests on (computed in the child from every call's time)."""
    rows = table[table["status"] == "ok"]
    wide = rows[rows["metric"].isin(("latency_ms_p99", *P99_INTERVAL))].pivot_table(
        index=["workload", "framework", "mode", "repeat", "replica", "trial_id"], columns="metric", values="value")
    return wide.reset_index()


def draw(table: pd.DataFrame, confidence: float = 0.95) -> plt.Figure:
    """F5: batch-1 latency percentiles and large-batch throughput."""
    batch = metric(table, "throughput_samples_per_s")["batch_size"]
    large = f"batch {int(batch.iloc[0])}" if len(batch) else "large batch"
    return per_workload_figure(
        table,
        [("variants", "latency_ms_p50", "batch-1 latency p50 (ms)"),
         ("variants", "latency_ms_p99", "batch-1 latency p99 (ms)"),
         ("ratio", "latency_ms_p50", "TF / PyTorch p50"),
         ("variants", "throughput_samples_per_s", f"throughput, {large} (samples/s)")],
        "F5 · inference: latency (lower is better) and throughput (higher is better)",
        confidence=confidence,
    )
