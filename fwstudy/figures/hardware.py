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
    """The one denominator of MFU (the best fp32 GEMM measured on this machine, by TensorFlow,
    PyTorch or NumPy's BLAS, at the trials' threads) and each framework's own GEMM beside it."""
    machine = metric(table, "gemm_peak_gflops")["value"].median()
    own = metric(table, "gemm_peak_own_gflops").groupby("framework")["value"].median()
    text = (f"MFU denominator: the machine's best measured fp32 GEMM, {machine:.1f} GFLOP/s · each framework's own: "
            + ", ".join(f"{fw} {v:.1f}" for fw, v in own.items()))
    if theoretical and theoretical.get("theoretical_gflops"):
        text += (f" · theoretical ≈ {theoretical['theoretical_gflops']:.0f} GFLOP/s "
                 f"({theoretical['assumptions']})")
    return text


def draw(table: pd.DataFrame, theoretical: dict | None = None, confidence: float = 0.95) -> plt.Figure:
    """F11: achieved FLOP/s and MFU against the machine's best measured fp32 GEMM (one
    denominator per device), each framework's own GEMM in the caption."""
    return per_workload_figure(
        table,
        [("variants", "mfu", "MFU (achieved / the machine's\nbest measured GEMM)"),
         ("variants", "achieved_gflops", "achieved GFLOP/s")],
        "F11 · hardware efficiency of training, higher is better",
        caption=peaks_caption(table, theoretical),
        confidence=confidence,
    )
