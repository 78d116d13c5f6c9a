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
    """``mfu``: per configuration (precisions apart); ``precision``: the precision axis."""
    return {
        "mfu": stats.summarize_configurations(table, metric="mfu", confidence=confidence),
        "precision": precision_table(table),
    }


PRECISION_METRICS = ("step_time_ms_median", "achieved_gflops", "gemm_peak_gflops", "mfu",
                     "precision_error_norm_rel", "precision_tolerance")


def precision_table(table: pd.DataFrame) -> pd.DataFrame:
    """Per workload, mode and framework, each precision's median step time, achieved GFLOP/s,
    its own GEMM peak (bf16 MFU divides by the bf16 GEMM, TF32's by the TF32 GEMM) and MFU,
    the speed-up over the same configuration in fp32, and the reduced precision's error
    against fp32 from the same weights with its tolerance (``fwstudy.measure.precision``)."""
    keys = ["workload", "mode", "framework", "device", "precision"]
    ok = table[(table["status"] == "ok") & table["metric"].isin(PRECISION_METRICS)]
    if ok.empty or "precision" not in ok:
        return pd.DataFrame(columns=[*keys, *PRECISION_METRICS, "speedup_vs_fp32"])
    wide = ok.pivot_table(index=keys, columns="metric", values="value", aggfunc="median").reset_index()
    for name in PRECISION_METRICS:
        if name not in wide:
            wide[name] = float("nan")
    fp32 = wide[wide["precision"] == "fp32"].set_index(keys[:-1])["step_time_ms_median"]
    base = [fp32.get(tuple(row), float("nan")) for row in wide[keys[:-1]].itertuples(index=False)]
    wide["speedup_vs_fp32"] = pd.Series(base, index=wide.index) / wide["step_time_ms_median"]
    wide["within_tolerance"] = wide["precision_error_norm_rel"] <= wide["precision_tolerance"]
    return wide[[*keys, *PRECISION_METRICS, "speedup_vs_fp32", "within_tolerance"]]


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
