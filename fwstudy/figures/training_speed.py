"""F1 · training speed (paper section III): steady-state step time per workload, framework
and mode, with the TF/PT ratio.

The same trials feed F2 (memory, CPU) and F11 (FLOP/s, MFU): they are measured once."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from fwstudy.config.profile import Profile
from fwstudy.config.trial import TrialConfig
from fwstudy.figures import trials
from fwstudy.figures.common import per_workload_figure, ratio_table
from fwstudy.results import stats

NAME = "training_speed"
# Rule 10: what "compiled" means on each side, on the figure itself.
COMPILED_SCOPE = (
    "compiled: TensorFlow = XLA of the whole train step (loss, gradients, Adam); PyTorch = "
    "torch.compile of the model (forward + backward) and of Adam's step, the loss eager; "
    "hatched = dynamo captured nothing (nn.LSTM): that bar is eager"
)


def configs(profile: Profile) -> list[TrialConfig]:
    return trials.training_configs(profile)


def analyse(table: pd.DataFrame, confidence: float = 0.95) -> dict[str, pd.DataFrame]:
    """Per configuration and framework: median step time with its interval; per configuration
    and for each framework's best mode: the TF/PT ratio over paired blocks, its interval, the
    confidence reached, the noise floor and the verdict."""
    return {
        "summary": stats.summarize_configurations(table, confidence=confidence),
        "comparison": ratio_table(table, confidence=confidence, best=True),
    }


def draw(table: pd.DataFrame, confidence: float = 0.95) -> plt.Figure:
    """F1: steady-state step time per workload, framework and mode, and the TF/PT ratio."""
    return per_workload_figure(
        table,
        [("variants", "step_time_ms_median", "step time, median (ms)"),
         ("ratio", "step_time_ms_median", "TF / PyTorch time")],
        "F1 · training speed, lower is faster",
        caption=COMPILED_SCOPE,
        confidence=confidence,
    )
