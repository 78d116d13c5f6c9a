"""F2 · resource utilization (paper section III): memory the training adds above the
post-import baseline, the import footprint, CPU utilization, and GPU memory on a GPU.

Drawn from F1's trials (``training_speed.configs``): measured once for both figures."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from fwstudy.config.profile import Profile
from fwstudy.config.trial import TrialConfig
from fwstudy.figures import trials
from fwstudy.figures.common import per_workload_figure
from fwstudy.results import stats

NAME = "resource_usage"
METRICS = ("peak_rss_above_import_mb", "rss_after_import_mb", "cpu_utilization", "gpu_peak_memory_mb")


def configs(profile: Profile) -> list[TrialConfig]:
    return trials.training_configs(profile)


def analyse(table: pd.DataFrame, confidence: float = 0.95) -> dict[str, pd.DataFrame]:
    """One summary per metric that some trial has (no GPU memory on a CPU run)."""
    summaries = {name: stats.summarize_configurations(table, metric=name, confidence=confidence) for name in METRICS}
    return {name: summary for name, summary in summaries.items() if len(summary)}


def draw(table: pd.DataFrame, confidence: float = 0.95) -> plt.Figure:
    """F2: memory the training adds above the post-import baseline, the import footprint
    itself, CPU utilization of the granted threads, and GPU memory where there is a GPU."""
    return per_workload_figure(
        table,
        [("variants", "peak_rss_above_import_mb", "peak RSS above import (MiB)"),
         ("variants", "rss_after_import_mb", "RSS after import (MiB)"),
         ("variants", "cpu_utilization", "CPU utilization of threads"),
         ("variants", "gpu_peak_memory_mb", "GPU memory peak (MiB)")],
        "F2 · resource utilization during training, lower memory is better",
        confidence=confidence,
    )
