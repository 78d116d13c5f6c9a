"""F11 · hardware (paper section III): achieved FLOP/s of training as a fraction of the
machine's measured GEMM peak (MFU), per device.

Drawn from F1's trials (``training_speed.configs``): measured once for both figures."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from fwstudy.config.profile import Profile
from fwstudy.config.trial import TrialConfig
from fwstudy.figures import trials
from fwstudy.figures.common import metric, per_workload_figure
from fwstudy.results import stats

NAME = "hardware"


def configs(profile: Profile) -> list[TrialConfig]:
    return trials.training_configs(profile)


def analyse(table: pd.DataFrame, confidence: float = 0.95) -> dict[str, pd.DataFrame]:
    return {"mfu": stats.summarize_configurations(table, metric="mfu", confidence=confidence)}


def peaks_caption(table: pd.DataFrame, theoretical: dict | None = None) -> str:
    rows = metric(table, "gemm_peak_gflops")
    peaks = rows.groupby("framework")["value"].median()
    text = "measured fp32 GEMM peak: " + ", ".join(f"{fw} {v:.1f} GFLOP/s" for fw, v in peaks.items())
    if theoretical and theoretical.get("theoretical_gflops"):
        text += (f" · theoretical ≈ {theoretical['theoretical_gflops']:.0f} GFLOP/s "
                 f"({theoretical['assumptions']})")
    return text


def draw(table: pd.DataFrame, theoretical: dict | None = None, confidence: float = 0.95) -> plt.Figure:
    """F11: achieved FLOP/s and MFU against each framework's measured GEMM peak."""
    return per_workload_figure(
        table,
        [("variants", "mfu", "MFU (achieved / measured GEMM peak)"),
         ("variants", "achieved_gflops", "achieved GFLOP/s")],
        "F11 · hardware efficiency of training, higher is better",
        caption=peaks_caption(table, theoretical),
        confidence=confidence,
    )
