"""F2 · resource utilization (paper section III): memory the training adds above the
post-import baseline, the import footprint, CPU use, and GPU memory on a GPU.

Memory is anonymous memory (RssAnon: heap, tensors, arenas), not RSS: RSS also counts
file-backed library pages a framework happens to touch after the baseline, which says more
about its shared libraries than about its training. The steady-state peak (after the first
call) is drawn apart from the peak of the first call (trace, XLA or inductor compile): a
compiler's transient memory is not the training's. Inductor compiles in worker processes,
which a process's own memory would miss; the trials pin ``TORCHINDUCTOR_COMPILE_THREADS=1``
so that it compiles in the trial's process, as XLA does (``env.variables`` records it).

CPU: ``cpu_s_per_sample`` (process CPU seconds per trained sample) is the comparable cost.
``cpu_utilization`` (busy cores / granted threads) counts OpenMP's and Eigen's spin-waiting
as busy (``OMP_WAIT_POLICY`` and ``KMP_BLOCKTIME`` are recorded): it shows how many cores a
framework holds, not how much useful work they do.

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
METRICS = (
    "peak_anon_above_import_mb", "compile_peak_anon_above_import_mb", "anon_after_import_mb",
    "cpu_s_per_sample", "cpu_utilization", "gpu_peak_memory_mb",
    "peak_rss_above_import_mb", "rss_after_import_mb",  # the former definition, for comparison
)


def configs(profile: Profile) -> list[TrialConfig]:
    return trials.training_configs(profile)


def analyse(table: pd.DataFrame, confidence: float = 0.95) -> dict[str, pd.DataFrame]:
    """One summary per metric that some trial has (no GPU memory on a CPU run)."""
    summaries = {name: stats.summarize_configurations(table, metric=name, confidence=confidence) for name in METRICS}
    return {name: summary for name, summary in summaries.items() if len(summary)}


def draw(table: pd.DataFrame, confidence: float = 0.95) -> plt.Figure:
    """F2: anonymous memory the training adds above the post-import baseline (steady state,
    and the first call's peak apart), the import footprint itself, CPU seconds per sample and
    utilization of the granted threads, and GPU memory where there is a GPU."""
    return per_workload_figure(
        table,
        [("variants", "peak_anon_above_import_mb", "steady-state peak, anon\nabove import (MiB)"),
         ("variants", "compile_peak_anon_above_import_mb", "first-call peak, anon\nabove import (MiB)"),
         ("variants", "anon_after_import_mb", "anon memory after\nimport (MiB)"),
         ("variants", "cpu_s_per_sample", "CPU seconds per sample"),
         ("variants", "cpu_utilization", "CPU utilization of threads\n(spin-waits count as busy)"),
         ("variants", "gpu_peak_memory_mb", "GPU memory peak (MiB)")],
        "F2 · resource utilization during training, lower is better",
        caption="memory: anonymous (RssAnon), steady state after the first call apart from the first call's "
        "(compile) peak; inductor compiles in-process (TORCHINDUCTOR_COMPILE_THREADS=1)",
        confidence=confidence,
    )
